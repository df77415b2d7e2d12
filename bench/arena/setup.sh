#!/usr/bin/env bash
# The Python side of the arena benchmark: a venv at bench/arena/.venv (gitignored) with pinned
# numpy, scipy, pandas (FastChat's method, fastchat_bt.py) and evalica (evalica_bt.py).
#   bench/arena/setup.sh            # once; again after changing the pins
# VENV=/elsewhere bench/arena/setup.sh puts it elsewhere (run.sh reads the same VENV).
set -euo pipefail
cd "$(dirname "$0")"
VENV="${VENV:-$PWD/.venv}"
PINS=(numpy==2.4.6 scipy==1.17.1 pandas==3.1.1 evalica==0.4.2)
if "$VENV/bin/python" - "${PINS[@]}" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
sys.exit(any(version(p.split("==")[0]) != p.split("==")[1] for p in sys.argv[1:]))
PY
then
  echo "venv $VENV already has ${PINS[*]}" >&2
  exit 0
fi
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "${PINS[@]}"
"$VENV/bin/python" -c 'import sys, numpy, scipy, pandas, evalica; print("venv", sys.prefix, "python", sys.version.split()[0], "numpy", numpy.__version__, "scipy", scipy.__version__, "pandas", pandas.__version__, "evalica", evalica.__version__)' >&2
