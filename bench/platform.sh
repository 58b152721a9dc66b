#!/usr/bin/env bash
# Platform benchmarks (issue 3), one run, side by side, 127.0.0.1 only:
#
#   1. POST /orders, ~400-byte JSON body, 20% malformed or schema-invalid
#      (bench/orders.lua), validated against the same JSON Schema by
#        wasmhost-orders       wasmhost serve examples/orders-api/app.py
#                              (the host validates before Python runs)
#        granian-jsonschema    native Granian, 2 workers, Flask + `jsonschema`
#        granian-jsonschema-rs native Granian, 2 workers, Flask + `jsonschema-rs`
#      (bench/native/orders_flask.py, bench/native/orders_flask_rs.py).
#   2. GET /api/products of the unmodified Flask app examples/flask-shop:
#        wasmhost-shop         wasmhost serve --interface wsgi shop:app
#        granian-shop          native Granian, 2 workers, same app
#
# Each server runs alone: start, wait until it answers, a WARMUP wrk run,
# then `wrk -t1 -cCONNECTIONS -dDURATION`, then it is stopped (everything
# still running is stopped on exit). Prints a markdown table (req/s, p50,
# p99, server CPU per request, peak RSS, status counts, anomalies) and the
# ratios issue 3 sets targets for, and saves it under bench/results/.
#
#   bench/platform.sh
#   DURATION=20s CONNECTIONS=32 bench/platform.sh
#   ONLY="granian-jsonschema granian-jsonschema-rs" bench/platform.sh
#
# Needs: target/release/wasmhost with `build` (cargo build --release),
# .venv/bin/componentize-py (make venv). Installs wrk (apt) and granian,
# flask, jsonschema, jsonschema-rs and flask-shop's requirements into
# .venv-bench when missing. The first wasmhost run builds both apps with
# componentize-py and compiles them (minutes); later runs use the cache in
# target/wasmhost-cache.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_PORT=18800
START_TIMEOUT=${START_TIMEOUT:-120}
source bench/lib.sh

ORDERS_APP=examples/orders-api/app.py
ORDER_JSON=examples/orders-api/order.json
SHOP_DIR=examples/flask-shop
WASMHOST=${WASMHOST:-$ROOT/target/release/wasmhost}
export COMPONENTIZE_PY=${COMPONENTIZE_PY:-$ROOT/.venv/bin/componentize-py}
export WASMHOST_CACHE_DIR=${WASMHOST_CACHE_DIR:-$ROOT/target/wasmhost-cache}

# --- prerequisites -----------------------------------------------------------
if selected wasmhost-orders || selected granian-jsonschema || selected granian-jsonschema-rs; then
    [[ -f $ORDERS_APP && -f $ORDER_JSON ]] || die "$ORDERS_APP or $ORDER_JSON is missing"
fi
if selected wasmhost-shop || selected granian-shop; then
    [[ -f $SHOP_DIR/shop.py ]] || die "$SHOP_DIR/shop.py is missing"
fi
if selected wasmhost-orders || selected wasmhost-shop; then
    [[ -x $WASMHOST ]] || die "$WASMHOST is missing: cargo build --release --locked"
    "$WASMHOST" build --help >/dev/null 2>&1 \
        || die "$WASMHOST has no 'build' subcommand (an older binary): cargo build --release --locked"
    [[ -x $COMPONENTIZE_PY ]] || die "$COMPONENTIZE_PY is missing: make venv"
fi
ensure_wrk
ensure_bench_venv granian flask jsonschema jsonschema-rs
if [[ -f $SHOP_DIR/requirements.txt ]]; then
    .venv-bench/bin/pip install -q --disable-pip-version-check -r "$SHOP_DIR/requirements.txt" \
        || die "pip install -r $SHOP_DIR/requirements.txt into .venv-bench failed"
fi
GRANIAN=(.venv-bench/bin/granian --interface wsgi --workers 2 --host 127.0.0.1 --port PORT)

# Build both apps up front, so a build failure is reported as such and
# serving starts from the cache.
if selected wasmhost-orders; then
    log "building $ORDERS_APP"
    "$WASMHOST" build "$ORDERS_APP" >"$BENCH_RESULTS/build-orders.log" 2>&1 \
        || die "wasmhost build $ORDERS_APP failed; see $BENCH_RESULTS/build-orders.log"
fi
if selected wasmhost-shop; then
    log "building $SHOP_DIR (shop:app, wsgi)"
    (cd "$SHOP_DIR" && "$WASMHOST" build --interface wsgi shop:app) >"$BENCH_RESULTS/build-shop.log" 2>&1 \
        || die "wasmhost build --interface wsgi shop:app failed; see $BENCH_RESULTS/build-shop.log"
fi

# --- probes --------------------------------------------------------------------
probe_orders() {
    [[ $(curl -sS -o /dev/null -w '%{http_code}' --max-time 5 -H 'content-type: application/json' \
        --data-binary "@$ORDER_JSON" "http://127.0.0.1:$1/orders" 2>/dev/null) == 201 ]]
}
probe_products() { curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$1/api/products" 2>/dev/null; }

# field NAME LINE: the value of NAME=VALUE in LINE.
field() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' <<<"$2"; }

# --- runs ----------------------------------------------------------------------
ROWS=()
declare -A RPS=()

# orders NAME CMD...: POST /orders with bench/orders.lua.
orders() {
    local name=$1; shift
    selected "$name" || return 0
    if ! bench_start "$name" probe_orders "$@"; then
        ROWS+=("| $name | failed to start | | | | | | | see $SERVER_LOG |"); return
    fi
    local out rss
    bench_wrk out "http://127.0.0.1:$SERVER_PORT/orders" -s bench/orders.lua -- "$ORDER_JSON"
    rss=$(bench_peak_rss_kib)
    bench_stop
    echo "$out" >"$BENCH_RESULTS/$name.wrk"
    # The "orders:" lines that bench/orders.lua's done() prints.
    local answered summary c2 c4 anomalies detail
    answered=$(grep '^orders: answered=' <<<"$out" || true)
    summary=$(grep '^orders: anomalies=' <<<"$out" || true)
    c2=$(field 2xx "$answered"); c4=$(field 4xx "$answered"); anomalies=$(field anomalies "$summary")
    if [[ -z $summary ]]; then
        detail="**no summary from bench/orders.lua; see $BENCH_RESULTS/$name.wrk**"
    elif [[ $anomalies == 0 ]]; then
        detail=none
    else
        detail="**$anomalies**: ${summary#orders: anomalies=$anomalies } $(grep -o '(.*)' <<<"$answered" || true)"
    fi
    RPS[$name]=$(wrk_rps "$out")
    ROWS+=("| $name | ${RPS[$name]} | $(wrk_p50 "$out") | $(wrk_p99 "$out") | $WRK_CPU_US_PER_REQ µs | $((rss / 1024)) MiB | ${c2:-?} | ${c4:-?} | $detail |")
}

# products NAME CMD...: GET /api/products.
products() {
    local name=$1; shift
    selected "$name" || return 0
    if ! bench_start "$name" probe_products "$@"; then
        ROWS+=("| $name | failed to start | | | | | | | see $SERVER_LOG |"); return
    fi
    local out rss
    bench_wrk out "http://127.0.0.1:$SERVER_PORT/api/products"
    rss=$(bench_peak_rss_kib)
    bench_stop
    echo "$out" >"$BENCH_RESULTS/$name.wrk"
    local total non2xx errors
    total=$(wrk_requests "$out")
    non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
    errors=$(wrk_errors "$out")
    RPS[$name]=$(wrk_rps "$out")
    ROWS+=("| $name | ${RPS[$name]} | $(wrk_p50 "$out") | $(wrk_p99 "$out") | $WRK_CPU_US_PER_REQ µs | $((rss / 1024)) MiB | $((total - ${non2xx:-0})) | | ${errors:+**}${errors:-none}${errors:+**} |")
}

orders wasmhost-orders "$WASMHOST" serve "$ORDERS_APP" --addr 127.0.0.1:PORT --no-admin
orders granian-jsonschema "${GRANIAN[@]}" --working-dir bench/native orders_flask:app
orders granian-jsonschema-rs "${GRANIAN[@]}" --working-dir bench/native orders_flask_rs:app
products wasmhost-shop env -C "$SHOP_DIR" "$WASMHOST" serve --interface wsgi shop:app --addr 127.0.0.1:PORT --no-admin
products granian-shop "${GRANIAN[@]}" --working-dir "$SHOP_DIR" shop:app

# ratio A B: A's req/s over B's, or n/a.
ratio() {
    local a=${RPS[$1]:-} b=${RPS[$2]:-}
    [[ -n $a && -n $b && $b != 0 ]] && awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f×", a / b }' || echo "n/a"
}

{
    echo "## Platform benchmarks, $(date -u +%Y-%m-%d)"
    echo
    echo "\`wrk -t1 -c$CONNECTIONS -d$DURATION\` per target after a $WARMUP warm-up; the load generator shares the machine:"
    echo "$(machine_line)."
    echo "$("$WASMHOST" --version 2>/dev/null || echo wasmhost ?); $(.venv-bench/bin/granian --version 2>/dev/null || echo granian ?);" \
        "native $(.venv-bench/bin/python --version);" \
        "$(.venv-bench/bin/pip list 2>/dev/null | awk 'tolower($1) ~ /^(flask|jsonschema|jsonschema.rs)$/ {printf "%s%s %s", sep, $1, $2; sep="; "}')"
    echo
    echo "POST /orders: 80% valid (201), 10% malformed JSON (400), 10% schema violations (422) (bench/orders.lua)."
    echo "GET /api/products: examples/flask-shop. CPU/req = server CPU time (all its processes) ÷ requests."
    echo
    echo "| target | req/s | p50 | p99 | CPU/req | peak RSS | 2xx | 4xx | anomalies |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "| ratio | measured | target |"
    echo "|---|---|---|"
    echo "| wasmhost-orders / granian-jsonschema | $(ratio wasmhost-orders granian-jsonschema) | ≥ 3× |"
    echo "| wasmhost-orders / granian-jsonschema-rs | $(ratio wasmhost-orders granian-jsonschema-rs) | (reference) |"
    echo "| wasmhost-shop / granian-shop | $(ratio wasmhost-shop granian-shop) | ≥ 0.75× |"
} | tee "$BENCH_RESULTS/platform-$(date -u +%Y%m%dT%H%M%S).md"
