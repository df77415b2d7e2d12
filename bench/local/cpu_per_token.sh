#!/usr/bin/env bash
# CPU time (user + sys, all threads) per token of decoding (tg) and prompt processing
# (pp), by difference of runs of each Podium `examples/speed` build, builds in turn.
# On a loaded machine wall-clock t/s measures the scheduler as much as the work (see
# docs/BENCHMARKS.md, "KV cache appended in place"); CPU time does not (at 1 thread: at
# 2 it also counts the helper thread's spinning).
#   tg = (CPU(--prompt 0 --generate 128) - CPU(--prompt 0 --generate 0)) / (3*128 + 4)
#   pp = (CPU(--prompt 512 --generate 0) - CPU(--prompt 0 --generate 0)) / (3*512 + 32)
# (3 repetitions plus the warm-up's 4 decoded / 32 prompt tokens.)
# usage: bench/local/cpu_per_token.sh MODEL.gguf THREADS ROUNDS PODIUM_SPEED_BIN...
set -euo pipefail
model=$1; threads=$2; rounds=$3; shift 3
cpu() { /usr/bin/time -f "%U %S" "$@" --threads "$threads" --reps 3 2>&1 >/dev/null | tail -1 | awk '{print $1 + $2}'; }
echo "== $(basename "$model"), $threads threads; $(uptime)"
for round in $(seq "$rounds"); do
  for bin in "$@"; do
    none=$(cpu "$bin" "$model" --prompt 0 --generate 0)
    tg=$(cpu "$bin" "$model" --prompt 0 --generate 128)
    pp=$(cpu "$bin" "$model" --prompt 512 --generate 0)
    echo "$round $bin $none $tg $pp" | awk '{printf "round %s %s: tg %.2f ms CPU/token, pp %.3f ms CPU/token (runs %.2f / %.2f / %.2f s)\n", $1, $2, ($4-$3)*1000/388, ($5-$3)*1000/1568, $3, $4, $5}'
  done
done
echo "== done; $(uptime)"
