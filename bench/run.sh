#!/usr/bin/env bash
# Side-by-side HTTP benchmark on 127.0.0.1: wasmhost (reuse, fresh) against
# `wasmtime serve` 48 (default and with instance reuse) on the same Python
# hello component, and native Granian (WSGI hello, 2 workers) as the
# ceiling. One load generator (wrk) drives every server with the same
# settings; every server runs alone, for a bounded time, then is stopped.
#
#   bench/run.sh                 # all servers, 10 s each
#   DURATION=20s CONNECTIONS=32 bench/run.sh
#   ONLY="wasmhost-reuse wasmhost-fresh" bench/run.sh
#
# bench/cpu_per_request.sh measures server CPU per request for one configuration.
# Installs what is missing: wrk (Debian package), wasmtime-cli 48.0.8
# (`cargo install`, ~15 min once), granian (into .venv-bench). Prints a
# markdown table and saves it under bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-16}
WASMTIME_VERSION=48.0.8
ONLY=${ONLY:-}
PORT=18700

log() { echo "bench: $*" >&2; }

# --- prerequisites --------------------------------------------------------
command -v wrk >/dev/null || { log "installing wrk"; apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }; }
WASMTIME=$(command -v wasmtime || true)
if [[ -z "$WASMTIME" ]] || ! "$WASMTIME" --version | grep -q " $WASMTIME_VERSION"; then
    log "installing wasmtime-cli $WASMTIME_VERSION (cargo install, one-time)"
    cargo install --quiet --locked wasmtime-cli --version "$WASMTIME_VERSION"
    WASMTIME=$HOME/.cargo/bin/wasmtime
fi
[[ -x .venv-bench/bin/granian ]] || { log "installing granian"; python3 -m venv .venv-bench; .venv-bench/bin/pip install -q granian; }
[[ -x .venv/bin/componentize-py ]] || make -s venv
cargo build --release --locked -q
HELLO=$(.venv/bin/python scripts/build_guest.py tests/guests/hello | tail -n1)
CACHE=$ROOT/target/wasmhost-cache
mkdir -p bench/results

# --- one run ---------------------------------------------------------------
# run NAME CMD...: start the server, wait until it answers, warm up, measure.
ROWS=()
run() {
    local name=$1; shift
    if [[ -n "$ONLY" && " $ONLY " != *" $name "* ]]; then return; fi
    PORT=$((PORT + 1))
    local cmd=("${@//PORT/$PORT}")
    log "$name: ${cmd[*]}"
    "${cmd[@]}" >"bench/results/$name.log" 2>&1 &
    local pid=$!
    local up=
    for _ in $(seq 1 600); do
        if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/"; then up=1; break; fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$up" ]]; then
        log "$name did not start; see bench/results/$name.log"
        kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
        ROWS+=("| $name | failed to start | | | |")
        return
    fi
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "http://127.0.0.1:$PORT/" >/dev/null
    local out
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$PORT/")
    # Peak RSS over the server's whole process tree (Granian forks workers).
    local rss=0 p
    for p in $pid $(pgrep -P "$pid" || true); do
        rss=$((rss + $(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
    done
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    local rps p50 p99 errors
    rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
    p50=$(awk '$1=="50%" {print $2}' <<<"$out")
    p99=$(awk '$1=="99%" {print $2}' <<<"$out")
    errors=$(awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$out")
    ROWS+=("| $name | $rps | $p50 | $p99 | $((rss / 1024)) MiB | ${errors:-none} |")
}

run wasmhost-reuse target/release/wasmhost serve "$HELLO" --addr 127.0.0.1:PORT --cache-dir "$CACHE"
run wasmhost-fresh target/release/wasmhost serve "$HELLO" --addr 127.0.0.1:PORT --cache-dir "$CACHE" --isolation fresh
run wasmtime-serve "$WASMTIME" serve -S cli --addr 127.0.0.1:PORT "$HELLO"
run wasmtime-serve-reuse "$WASMTIME" serve -S cli --max-instance-reuse-count 10000 --addr 127.0.0.1:PORT "$HELLO"
run granian-wsgi .venv-bench/bin/granian --interface wsgi --workers 2 --host 127.0.0.1 --port PORT --working-dir bench/native hello_wsgi:app

{
    echo "wrk -t1 -c$CONNECTIONS -d$DURATION (after a $WARMUP warm-up), $(nproc) cores, $(date -u +%Y-%m-%d)"
    echo
    echo "| server | req/s | p50 | p99 | peak RSS | errors |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
} | tee "bench/results/hello-$(date -u +%Y%m%dT%H%M%S).md"
