#!/usr/bin/env bash
# pp512 / tg128, Podium vs llama.cpp's llama-bench, on the same GGUF and thread count,
# one after the other in one run.
# usage: bench/local/speed_side_by_side.sh MODEL.gguf THREADS [LLAMA_BUILD_DIR]
# (LLAMA_BUILD_DIR defaults to ~/.cache/podium/llama.cpp-build, made by build_llamacpp.sh)
set -euo pipefail
cd "$(dirname "$0")/../.."
model=$1; threads=$2
llama=${3:-$HOME/.cache/podium/llama.cpp-build}
cargo build --release -p podium-local --example speed >&2
bin="${CARGO_TARGET_DIR:-target}/release/examples/speed"
echo "== $(nproc) cores visible, $threads threads, $(basename "$model")"
"$bin" "$model" --threads "$threads" --prompt 512 --generate 128 --reps 3
"$llama/bin/llama-bench" -m "$model" -t "$threads" -p 512 -n 128 -r 3 -o md
