#!/usr/bin/env bash
# Reproduce docs/BENCHMARKS.md "Remote client (issue 4)": Podium's streaming
# OpenAI-compatible client against a programmable fake server on loopback.
#   bench/remote/run.sh [compare.py options, e.g. --repeats 5 --skip overhead]
# Needs: python3 (stdlib) for the server; aiohttp for the Python client (a venv
# is made under /tmp on first use); /usr/bin/time; target/release/podium.
set -euo pipefail
cd "$(dirname "$0")/../.."
PORT="${PORT:-8765}"
VENV="${VENV:-/tmp/podium-remote-venv}"
PODIUM="${PODIUM:-target/release/podium}"
# podium bench stores every level in its database: keep fake-server results off the user's board.
export PODIUM_DB="${PODIUM_DB:-$(mktemp -d)/remote-bench.db}"
if [ ! -x "$PODIUM" ]; then
  CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" cargo build --release -p podium-cli
  PODIUM="${CARGO_TARGET_DIR:-$PWD/target}/release/podium"
fi
if ! "$VENV/bin/python" -c 'import aiohttp' 2>/dev/null; then
  python3 -m venv "$VENV" && "$VENV/bin/pip" install -q aiohttp
fi
echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); $("$VENV/bin/python" -c 'import aiohttp,sys;print("python",sys.version.split()[0],"aiohttp",aiohttp.__version__)'); podium $(git rev-parse --short HEAD)" >&2
python3 bench/remote/fake_server.py --port "$PORT" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$PORT/stats" >/dev/null && break; sleep 0.1; done
"$VENV/bin/python" bench/remote/compare.py --base "http://127.0.0.1:$PORT/v1" --podium "$PODIUM" \
  --python "$VENV/bin/python" "$@"
