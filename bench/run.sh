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

WASMTIME_VERSION=48.0.8
BENCH_PORT=18700
source bench/lib.sh

# --- prerequisites --------------------------------------------------------
ensure_wrk
WASMTIME=$(command -v wasmtime || true)
if [[ -z "$WASMTIME" ]] || ! "$WASMTIME" --version | grep -q " $WASMTIME_VERSION"; then
    log "installing wasmtime-cli $WASMTIME_VERSION (cargo install, one-time)"
    cargo install --quiet --locked wasmtime-cli --version "$WASMTIME_VERSION"
    WASMTIME=$HOME/.cargo/bin/wasmtime
fi
ensure_bench_venv granian
ensure_wasmhost
HELLO=$(.venv/bin/python scripts/build_guest.py tests/guests/hello | tail -n1)
CACHE=$ROOT/target/wasmhost-cache

# --- one run ---------------------------------------------------------------
# run NAME CMD...: start the server, wait until it answers, warm up, measure.
ROWS=()
run() {
    local name=$1; shift
    selected "$name" || return 0
    if ! bench_start "$name" probe_get_root "$@"; then
        ROWS+=("| $name | failed to start | | | | |")
        return
    fi
    local out
    bench_wrk out "http://127.0.0.1:$SERVER_PORT/"
    local rss
    rss=$(bench_peak_rss_kib)
    bench_stop
    local errors
    errors=$(wrk_errors "$out")
    ROWS+=("| $name | $(wrk_rps "$out") | $(wrk_p50 "$out") | $(wrk_p99 "$out") | $((rss / 1024)) MiB | ${errors:-none} |")
}

run wasmhost-reuse "$WASMHOST" serve "$HELLO" --addr 127.0.0.1:PORT --cache-dir "$CACHE"
run wasmhost-fresh "$WASMHOST" serve "$HELLO" --addr 127.0.0.1:PORT --cache-dir "$CACHE" --isolation fresh
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
