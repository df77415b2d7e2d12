#!/usr/bin/env bash
# Cross-check Podium's reference metrics and similarity against sacrebleu, rouge-score,
# Levenshtein and rapidfuzz on seeded pairs (docs/CROSSCHECK.md, "Reference metrics").
#
#   bench/refmetrics/run.sh [--pairs N] [--seed S] [--update-fixture]
#
# VENV (default /root/.cache/venv-refmetrics) is made with the pinned packages if needed.
# --update-fixture rewrites crates/podium-tasks/tests/data/refmetrics.jsonl, which the
# Rust test `refmetrics` checks without Python.
set -euo pipefail
cd "$(dirname "$0")/../.."
PAIRS=300 SEED=14 UPDATE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --pairs) PAIRS="$2"; shift ;;
    --seed) SEED="$2"; shift ;;
    --update-fixture) UPDATE=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
VENV="${VENV:-/root/.cache/venv-refmetrics}"
PINS=(sacrebleu==2.6.0 rouge-score==0.1.2 rapidfuzz==3.14.6 Levenshtein==0.27.5)
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"
fi
OUT="$(mktemp -d)"
"$VENV/bin/python" bench/refmetrics/python_values.py --pairs "$PAIRS" --seed "$SEED" --out "$OUT/python.jsonl"
cargo run -q -p podium-tasks --example refmetrics -- "$OUT/python.jsonl" > "$OUT/podium.jsonl"
python3 bench/refmetrics/compare.py "$OUT/python.jsonl" "$OUT/podium.jsonl"
if [ "$UPDATE" = 1 ]; then
  cp "$OUT/python.jsonl" crates/podium-tasks/tests/data/refmetrics.jsonl
  echo "fixture updated" >&2
fi
