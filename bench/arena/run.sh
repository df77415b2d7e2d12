#!/usr/bin/env bash
# Reproduce docs/BENCHMARKS.md "Arena ratings (issue 12)": Podium's `arena ratings` against
# FastChat's method (fastchat_bt.py) and evalica (evalica_bt.py) on the same battle file, in one
# invocation, each under /usr/bin/time -v; then the comparison table (compare.py).
#
#   bench/arena/run.sh                 # 1,000,000 battles, 50 models, 100 bootstrap rounds, 3 repeats
#   bench/arena/run.sh --quick         # 100,000 battles
#   options: --n N  --seed S  --bootstrap B  --repeats R  --no-podium
#            --evalica-api-repeats K (default 1: at 1M battles one run takes minutes and ~10 GB)
#            --no-evalica-api (= --evalica-api-repeats 0)
#
# The battle file is generated once into $PODIUM_ARENA_CACHE (default ~/.cache/podium-arena-bench),
# never into the repository; each run's outputs go to a fresh folder under it (printed).
# Env: PODIUM (the binary; default $CARGO_TARGET_DIR/release/podium or target/release/podium,
# built if absent), PODIUM_ARGS (more flags for `podium arena ratings`), VENV (the Python venv,
# default bench/arena/.venv, made by setup.sh if needed).
# The repeats are interleaved (podium, fastchat, evalica, evalica-api, podium, ...), so a change in
# the machine's load falls on all tools alike.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
N=1000000 SEED=1 BOOT=100 REPEATS=3 WITH_PODIUM=1 API_REPEATS=1 MODELS=50
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) N=100000 ;;
    --n) N="$2"; shift ;;
    --seed) SEED="$2"; shift ;;
    --bootstrap) BOOT="$2"; shift ;;
    --repeats) REPEATS="$2"; shift ;;
    --no-podium) WITH_PODIUM=0 ;;
    --no-evalica-api) API_REPEATS=0 ;;
    --evalica-api-repeats) API_REPEATS="$2"; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

CACHE="${PODIUM_ARENA_CACHE:-$HOME/.cache/podium-arena-bench}"
FILE="$CACHE/battles-n$N-m$MODELS-s$SEED.jsonl"
mkdir -p "$CACHE"
if [ ! -s "$FILE" ] || [ ! -s "$FILE.truth.json" ]; then
  python3 bench/arena/generate.py --n "$N" --models "$MODELS" --seed "$SEED" --out "$FILE"
fi

export VENV="${VENV:-$ROOT/bench/arena/.venv}"
bench/arena/setup.sh
PY="$VENV/bin/python"
# The Python fits work on 50×50 problems; OpenBLAS's own threads only fight over the cores
# (on a busy 2-core machine they made FastChat's fit and bootstrap 8-15x slower). One BLAS
# thread per process is the Python side's best case.
PYENV=(env OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1)

if [ "$WITH_PODIUM" = 1 ]; then
  PODIUM="${PODIUM:-${CARGO_TARGET_DIR:-$ROOT/target}/release/podium}"
  if [ ! -x "$PODIUM" ]; then
    cargo build --release -p podium-cli
    PODIUM="${CARGO_TARGET_DIR:-$ROOT/target}/release/podium"
  fi
fi

OUT="$CACHE/run-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
{
  echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(free -g | awk '/^Mem:/{print $2}') GB;" \
    "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "podium: ${PODIUM:-not run} (repository at $(git rev-parse --short HEAD))"
  "$PY" -c 'import sys, numpy, scipy, pandas, evalica; print("python", sys.version.split()[0], "numpy", numpy.__version__, "scipy", scipy.__version__, "pandas", pandas.__version__, "evalica", evalica.__version__)'
  echo "battles: $FILE ($(stat -c %s "$FILE") bytes, sha256 $(sha256sum "$FILE" | cut -c1-16)…), bootstrap $BOOT, repeats $REPEATS"
  echo "outputs: $OUT"
} | tee "$OUT/machine.txt" >&2
cat "$FILE" > /dev/null  # every tool reads it from the page cache

TOOLS=() LABELS=()
[ "$WITH_PODIUM" = 1 ] && TOOLS+=(podium) LABELS+=("Podium")
TOOLS+=(fastchat evalica) LABELS+=("FastChat's method (Python)" "evalica, multinomial refits")
[ "$API_REPEATS" -gt 0 ] && TOOLS+=(evalica-api) LABELS+=("evalica, its bootstrap API")

run_one() {  # tool repeat
  local tool=$1 i=$2 cmd
  case "$tool" in
    podium) cmd=("$PODIUM" arena ratings --battles "$FILE" --bootstrap "$BOOT" --format json ${PODIUM_ARGS:-}) ;;
    fastchat) cmd=("${PYENV[@]}" "$PY" bench/arena/fastchat_bt.py "$FILE" --bootstrap "$BOOT") ;;
    evalica) cmd=("${PYENV[@]}" "$PY" bench/arena/evalica_bt.py "$FILE" --bootstrap "$BOOT" --bootstrap-mode multinomial) ;;
    evalica-api) cmd=("${PYENV[@]}" "$PY" bench/arena/evalica_bt.py "$FILE" --bootstrap "$BOOT" --bootstrap-mode api) ;;
  esac
  echo "[$i/$REPEATS] $tool: ${cmd[*]}" >&2
  /usr/bin/time -v -o "$OUT/$tool.$i.time" "${cmd[@]}" > "$OUT/$tool.$i.json" 2> "$OUT/$tool.$i.err" || {
    echo "  $tool failed: $(tail -n 3 "$OUT/$tool.$i.err")" >&2; }
  sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): /  wall /p; s/.*Maximum resident set size (kbytes): /  peak RSS kB /p' "$OUT/$tool.$i.time" | paste -sd' ' >&2
}

for i in $(seq 1 "$REPEATS"); do
  for tool in "${TOOLS[@]}"; do
    [ "$tool" = evalica-api ] && [ "$i" -gt "$API_REPEATS" ] && continue
    run_one "$tool" "$i"
  done
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/machine.txt" >&2

tools=$(IFS=,; echo "${TOOLS[*]}") labels=$(IFS=';'; echo "${LABELS[*]}")
python3 bench/arena/compare.py "$OUT" --tools "$tools" --labels "$labels" --truth "$FILE.truth.json" \
  | tee "$OUT/table.md"
