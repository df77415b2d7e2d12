#!/usr/bin/env bash
# Several rounds of pp/tg, Podium build(s) and llama.cpp's llama-bench taking turns, so
# that the VM's drift and other load hit each engine alike.
# usage: bench/local/speed_interleaved.sh MODEL.gguf THREADS ROUNDS PODIUM_SPEED_BIN...
# (each PODIUM_SPEED_BIN is a build of `examples/speed`, e.g. a copy of the baseline
# build and the current one; LLAMA_BUILD_DIR defaults to ~/.cache/podium/llama.cpp-build)
set -euo pipefail
model=$1; threads=$2; rounds=$3; shift 3
llama=${LLAMA_BUILD_DIR:-$HOME/.cache/podium/llama.cpp-build}
echo "== $(nproc) cores visible, $threads threads, $(basename "$model"), $rounds rounds; $(uptime)"
for round in $(seq "$rounds"); do
  for bin in "$@"; do
    echo "-- round $round: $bin"
    "$bin" "$model" --threads "$threads" --prompt 512 --generate 128 --reps 3
  done
  echo "-- round $round: llama-bench"
  "$llama/bin/llama-bench" -m "$model" -t "$threads" -p 512 -n 128 -r 3 -o md 2>/dev/null \
    | grep -E 'pp512|tg128'
done
echo "== done; $(uptime)"
