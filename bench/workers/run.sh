#!/usr/bin/env bash
# Issue 16's figures: throughput of 1, 2, 4 and 8 `podium worker`s against a
# fake endpoint with fixed latency (mock:…?delay_ms=), and the time from a
# worker's death to its job being taken over elsewhere, on a throwaway
# PostgreSQL cluster (Debian's postgresql binaries, run as the postgres user
# when we are root) on a free 127.0.0.1 port.
#
#   bench/workers/run.sh [PODIUM_BINARY]      (default target/release/podium)
#
# Prints one line per measurement; docs/BENCHMARKS.md records them.
set -euo pipefail
PODIUM=${1:-target/release/podium}
PODIUM=$(realpath "$PODIUM")
BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
WORK=$(mktemp -d /tmp/podium-bench-workers.XXXXXX)
chmod 755 "$WORK"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
mkdir "$WORK/data"; [ "$(id -u)" = 0 ] && chown postgres "$WORK" "$WORK/data"
as_pg "$BIN/initdb" -D "$WORK/data" -U podium --auth=trust >/dev/null
as_pg "$BIN/pg_ctl" -D "$WORK/data" -l "$WORK/pg.log" -o "-p $PORT -k $WORK -c listen_addresses=127.0.0.1 -c fsync=off" -w start >/dev/null
trap 'as_pg "$BIN/pg_ctl" -D "$WORK/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
fresh_db() {  # NAME
  as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U podium "$1"
  echo "postgres://podium@127.0.0.1:$PORT/$1"
}
jobs_json() { env -u PODIUM_DB "$PODIUM" jobs --db "$1" --format json --quiet; }

DELAY_MS=${DELAY_MS:-50}
DOCS=${DOCS:-1600}
MODEL="mock:bench?delay_ms=$DELAY_MS"
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); mock latency ${DELAY_MS} ms per doc; $DOCS docs in jobs of 50"
PART=${PART:-all}
base=""
for n in 1 2 4 8; do
  [ "$PART" = death ] && break
  db=$(fresh_db "throughput_$n")
  "$PODIUM" eval -m "$MODEL" -t hellaswag --limit "$DOCS" --db "$db" --queue --job-docs 50 --quiet >/dev/null
  start=$(date +%s.%N)
  pids=()
  for i in $(seq 1 "$n"); do
    "$PODIUM" worker --db "$db" --name "w$i" --exit-when-idle --poll-s 0.05 --quiet & pids+=($!)
  done
  wait "${pids[@]}"
  end=$(date +%s.%N)
  rate=$(python3 -c "print(f'{$DOCS/($end-$start):.1f}')")
  [ -z "$base" ] && base=$rate
  echo "workers=$n  docs/s=$rate  speed-up=$(python3 -c "print(f'{$rate/$base:.2f}')")x  (ideal ${n}x; one worker alone: $(python3 -c "print(f'{1000/$DELAY_MS:.0f}')") docs/s)"
done

# Death to resume: a worker holding all four jobs (--concurrency 4, 5 s each) is
# killed (SIGKILL) a second in, while a second worker waits idle; the time until
# the second worker holds one of the dead one's jobs. Then the same with SIGTERM,
# which gives the jobs back at once.
[ "$PART" = throughput ] && exit 0
for lease in 2 10 30; do
  for signal in KILL TERM; do
    for rep in 1 2 3; do
      [ "$signal" = TERM ] && [ "$lease" != 30 ] && continue
      db=$(fresh_db "death_${lease}_${signal}_$rep")
      "$PODIUM" eval -m "mock:bench?delay_ms=50" -t hellaswag --limit 400 --db "$db" --queue --job-docs 100 --quiet >/dev/null
      "$PODIUM" worker --db "$db" --name victim --concurrency 4 --lease-s "$lease" --poll-s 0.05 --quiet & victim=$!
      sleep 0.5
      "$PODIUM" worker --db "$db" --name other --lease-s "$lease" --poll-s 0.05 --exit-when-idle --quiet & other=$!
      sleep 0.5
      job=$(jobs_json "$db" | python3 -c 'import json,sys; print([j["id"] for j in json.load(sys.stdin) if j["worker"]=="victim" and j["state"]=="running"][0])')
      killed=$(date +%s.%N)
      kill -s "$signal" "$victim"; wait "$victim" 2>/dev/null || true
      while :; do
        holder=$(jobs_json "$db" | python3 -c "import json,sys; print(any(j['worker']=='other' and j['state']=='running' for j in json.load(sys.stdin)))")
        [ "$holder" = True ] && break
        sleep 0.02
      done
      resumed=$(date +%s.%N)
      echo "lease=${lease}s signal=$signal run=$rep death-to-resume=$(python3 -c "print(f'{$resumed-$killed:.2f}')") s"
      kill "$other"; wait "$other" 2>/dev/null || true
    done
  done
done
