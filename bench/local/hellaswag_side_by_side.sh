#!/usr/bin/env bash
# HellaSwag on the first N tasks of the bundled llama.cpp-format file, Podium vs
# llama.cpp's `llama-perplexity --hellaswag`, on the same GGUF and thread count, one
# after the other in one run. llama.cpp gets a file holding exactly those N tasks (with
# --hellaswag-tasks equal to the file's count it scores every one of them, though in a shuffled order).
# Both report acc_norm by tokens: the mean log-prob of each ending's tokens after the
# prefix the four sequences share.
# usage: bench/local/hellaswag_side_by_side.sh MODEL.gguf N THREADS [LLAMA_BUILD_DIR [PODIUM ARGS...]]
# (e.g. `... 400 2 "" --batch-weights f32` to try Podium's f32 batch weights)
# (LLAMA_BUILD_DIR defaults to ~/.cache/podium/llama.cpp-build, made by build_llamacpp.sh;
# bench/local/hellaswag_llamacpp.py is the same comparison through llama-cpp-python.)
set -euo pipefail
cd "$(dirname "$0")/../.."
model=$1; n=$2; threads=$3
llama=${4:-$HOME/.cache/podium/llama.cpp-build}
shift $(( $# < 4 ? $# : 4 ))
data=tasks/hellaswag/data/hellaswag_val_full.txt
subset=$(mktemp)
trap 'rm -f "$subset"' EXIT
head -n $((6 * n)) "$data" > "$subset"
cargo build --release -p podium-local --example hellaswag >&2
bin="${CARGO_TARGET_DIR:-target}/release/examples/hellaswag"
echo "== $(nproc) cores visible, $threads threads, $(basename "$model"), first $n tasks"
echo "== Podium"
/usr/bin/time -f "peak RSS %M KB, wall %e s" "$bin" "$model" "$subset" --tasks "$n" --threads "$threads" "$@"
echo "== llama.cpp llama-perplexity"
/usr/bin/time -f "peak RSS %M KB, wall %e s" "$llama/bin/llama-perplexity" -m "$model" -f "$subset" \
  --hellaswag --hellaswag-tasks "$n" -t "$threads" -c 512 -b 512 2>&1 \
  | grep -E "^[0-9]+\s|Final|peak RSS|error" | tail -3
