#!/usr/bin/env bash
# HellaSwag (first N tasks of the bundled llama.cpp-format file), Podium vs
# llama.cpp on the same GGUF and thread count, one after the other in one run.
# usage: bench/local/hellaswag_side_by_side.sh MODEL.gguf N THREADS PYTHON_WITH_LLAMA_CPP
set -euo pipefail
cd "$(dirname "$0")/../.."
model=$1; n=$2; threads=$3; py=${4:-python3}
data=tasks/hellaswag/data/hellaswag_val_full.txt
cargo build --release -p podium-local --example hellaswag >&2
bin="${CARGO_TARGET_DIR:-target}/release/examples/hellaswag"
echo "== Podium ($(nproc) cores visible, $threads threads)"
/usr/bin/time -f "peak RSS %M KB, wall %e s" "$bin" "$model" "$data" --tasks "$n" --threads "$threads" --weights q8
echo "== llama.cpp via llama-cpp-python"
/usr/bin/time -f "peak RSS %M KB, wall %e s" "$py" bench/local/hellaswag_llamacpp.py "$model" "$data" "$n" "$threads"
