# Helpers shared by the benchmark scripts (bench/run.sh, bench/platform.sh,
# bench/json_surface.sh). Source it from a script that has `cd`ed to the
# repository root and runs with `set -euo pipefail`:
#
#   source bench/lib.sh
#   ensure_wrk; ensure_bench_venv granian flask
#   bench_start NAME PROBE CMD...   # CMD may contain the word PORT
#   bench_wrk OUT_VAR URL [wrk args...]
#   bench_stop
#   bench_redis PORT                # a redis-server on 127.0.0.1, stopped on exit
#
# Every server is started in its own process group on 127.0.0.1 and stopped
# (group, then KILL after a grace period) by bench_stop or, at the latest,
# by the EXIT trap that sourcing this file installs.

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-16}
# How long a server may take to answer its first request (seconds). Apps
# that wasmhost builds with componentize-py before serving need minutes.
START_TIMEOUT=${START_TIMEOUT:-60}
ONLY=${ONLY:-}
BENCH_RESULTS=${BENCH_RESULTS:-bench/results}
mkdir -p "$BENCH_RESULTS"

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

# --- prerequisites ---------------------------------------------------------

# wrk from the Debian package.
ensure_wrk() {
    command -v wrk >/dev/null && return
    log "installing wrk"
    apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; } \
        || die "wrk is missing and could not be installed (apt-get install wrk)"
}

# ensure_bench_venv PKG...: a venv in .venv-bench holding the native
# reference servers and libraries. Installs only what `pip show` lacks.
# PKG may be `-r FILE` to install a requirements file.
ensure_bench_venv() {
    [[ -x .venv-bench/bin/python ]] || { log "creating .venv-bench"; python3 -m venv .venv-bench; }
    local missing=() pkg
    while (($#)); do
        if [[ $1 == -r ]]; then
            missing+=(-r "$2"); shift 2; continue
        fi
        .venv-bench/bin/pip show -q "$1" >/dev/null 2>&1 || missing+=("$1")
        shift
    done
    ((${#missing[@]})) || return 0
    log "installing into .venv-bench: ${missing[*]}"
    .venv-bench/bin/pip install -q --disable-pip-version-check "${missing[@]}" \
        || die "pip install ${missing[*]} into .venv-bench failed"
}

# The wasmhost binary, built if needed.
ensure_wasmhost() {
    [[ -x .venv/bin/componentize-py ]] || make -s venv
    cargo build --release --locked -q || die "cargo build --release failed"
    WASMHOST=$PWD/target/release/wasmhost
}

# --- servers ---------------------------------------------------------------

BENCH_PORT=${BENCH_PORT:-18700}
SERVER_PID=
SERVER_PORT=
SERVER_LOG=

# selected NAME: whether NAME passes the ONLY filter.
selected() { [[ -z "$ONLY" || " $ONLY " == *" $1 "* ]]; }

# Readiness probes take the port; the default wants a 2xx/3xx on GET /.
probe_get_root() { curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$1/" 2>/dev/null; }

# bench_start NAME PROBE CMD...: starts CMD (every word PORT replaced by a
# fresh port) in its own process group, logging to $BENCH_RESULTS/NAME.log,
# and waits until `PROBE port` succeeds. Sets SERVER_PID and SERVER_PORT.
# Returns 1 (server stopped) when it exits or does not answer within
# START_TIMEOUT seconds.
bench_start() {
    local name=$1 probe=$2; shift 2
    BENCH_PORT=$((BENCH_PORT + 1))
    SERVER_PORT=$BENCH_PORT
    local cmd=("${@//PORT/$SERVER_PORT}")
    SERVER_LOG=$BENCH_RESULTS/$name.log
    if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$SERVER_PORT/"; then
        log "$name: port $SERVER_PORT is already in use"; return 1
    fi
    log "$name: ${cmd[*]}"
    setsid "${cmd[@]}" >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if "$probe" "$SERVER_PORT"; then return 0; fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "$name exited before answering; see $SERVER_LOG"; bench_stop; return 1
        fi
        sleep 0.2
    done
    log "$name did not answer within ${START_TIMEOUT}s; see $SERVER_LOG"
    bench_stop
    return 1
}

# bench_proc_sum FILE AWK: the sum, over the server and its live children
# (Granian forks workers), of what AWK prints for /proc/PID/FILE.
bench_proc_sum() {
    local file=$1 program=$2 total=0 p
    for p in $SERVER_PID $(pgrep -P "$SERVER_PID" || true); do
        total=$((total + $(awk "$program" "/proc/$p/$file" 2>/dev/null || echo 0)))
    done
    echo "$total"
}

# Peak RSS (KiB) of the server and its children.
bench_peak_rss_kib() { bench_proc_sum status '/VmHWM/ {print $2}'; }

# Server CPU time in clock ticks: user + system of the server and its children.
bench_cpu_ticks() { bench_proc_sum stat '{print $14 + $15}'; }

# bench_stop: TERM to the server's process group, KILL after 5 s.
bench_stop() {
    [[ -n "$SERVER_PID" ]] || return 0
    kill -TERM -- "-$SERVER_PID" 2>/dev/null || kill -TERM "$SERVER_PID" 2>/dev/null || true
    local i
    for i in $(seq 1 50); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
}
# bench_redis PORT: a redis-server (Debian's package) on 127.0.0.1:PORT that
# saves nothing, stopped by bench_exit.
BENCH_REDIS_PID=
bench_redis() {
    command -v redis-server >/dev/null || die "redis-server is missing: apt-get install redis-server"
    redis-server --port "$1" --bind 127.0.0.1 --save "" --appendonly no --dir "${TMPDIR:-/tmp}" >/dev/null &
    BENCH_REDIS_PID=$!
    sleep 0.5
}

# bench_exit: stops the server and the Redis (the EXIT trap; a script with
# its own trap calls it).
bench_exit() {
    bench_stop
    [[ -z $BENCH_REDIS_PID ]] || kill "$BENCH_REDIS_PID" 2>/dev/null || true
}

trap bench_exit EXIT
trap 'exit 130' INT TERM

# --- load ------------------------------------------------------------------

# bench_wrk OUT_VAR URL [wrk options...] [-- script args...]: a WARMUP run,
# then a DURATION run with --latency, CONNECTIONS connections on one
# thread; the measured run's output goes into OUT_VAR. Also sets
# WRK_CPU_US_PER_REQ: the server's CPU time (all its processes) per request
# during the measured run, in microseconds.
bench_wrk() {
    local -n _out=$1
    local url=$2; shift 2
    local opts=() rest=()
    while (($#)); do
        if [[ $1 == -- ]]; then rest=("$@"); break; fi
        opts+=("$1"); shift
    done
    # A failing wrk (server gone, script error) leaves its message in the
    # output and empty figures in the table instead of ending the run.
    wrk -t1 -c"$CONNECTIONS" -d"$WARMUP" "${opts[@]}" "$url" "${rest[@]}" >/dev/null 2>&1 || log "warm-up of $url failed"
    local before after
    before=$(bench_cpu_ticks)
    _out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency "${opts[@]}" "$url" "${rest[@]}" 2>&1) || log "wrk $url failed: $_out"
    after=$(bench_cpu_ticks)
    WRK_CPU_US_PER_REQ=$(awk -v b="$before" -v a="$after" -v n="$(wrk_requests "$_out")" -v t="$(getconf CLK_TCK)" \
        'BEGIN { if (n > 0) printf "%.0f", (a - b) * 1e6 / t / n; else print "?" }')
}

# Parsers for wrk's output.
wrk_rps() { awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$1"; }
wrk_p50() { awk '$1=="50%" {print $2}' <<<"$1"; }
wrk_p99() { awk '$1=="99%" {print $2}' <<<"$1"; }
wrk_requests() { awk '/requests in/ {print $1}' <<<"$1"; }
# Socket errors and non-2xx/3xx counts, or empty.
wrk_errors() { awk '/Non-2xx|Socket errors/ {printf "%s ", $0}' <<<"$1"; }

# machine_line: what the numbers were measured on.
machine_line() {
    local cpu
    cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
    echo "$(nproc) cores ($cpu), $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%Y-%m-%dT%H:%MZ)"
}
