#!/usr/bin/env bash
# JSON costs inside a Python guest: stdlib json against the host's
# wasmhost.json helpers (check, minify, extract, Schema.validate), at about
# 400 B, 10 KB and 1 MB. Serves bench/json_surface/app.py with wasmhost on
# 127.0.0.1, asks it for one size at a time (the guest times every call
# with time.perf_counter_ns and reports the median of REPS repetitions),
# stops it, and prints a markdown table (saved under bench/results/).
#
#   bench/json_surface.sh
#   REPS=51 bench/json_surface.sh        # same repetitions for every size
#
# Needs target/release/wasmhost with `build` and .venv/bin/componentize-py.
# The first run builds and compiles the app (a minute or more).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_PORT=18900
START_TIMEOUT=${START_TIMEOUT:-600}
REPS=${REPS:-}
source bench/lib.sh

WASMHOST=${WASMHOST:-$ROOT/target/release/wasmhost}
export COMPONENTIZE_PY=${COMPONENTIZE_PY:-$ROOT/.venv/bin/componentize-py}
export WASMHOST_CACHE_DIR=${WASMHOST_CACHE_DIR:-$ROOT/target/wasmhost-cache}
[[ -x $WASMHOST ]] || die "$WASMHOST is missing: cargo build --release --locked"
"$WASMHOST" build --help >/dev/null 2>&1 \
    || die "$WASMHOST has no 'build' subcommand (an older binary): cargo build --release --locked"
[[ -x $COMPONENTIZE_PY ]] || die "$COMPONENTIZE_PY is missing: make venv"

probe_json_surface() {
    curl -fsS -o /dev/null --max-time 60 "http://127.0.0.1:$1/?size=400B&reps=1" 2>/dev/null
}

log "building bench/json_surface/app.py"
"$WASMHOST" build bench/json_surface/app.py >"$BENCH_RESULTS/build-json-surface.log" 2>&1 \
    || die "wasmhost build bench/json_surface/app.py failed; see $BENCH_RESULTS/build-json-surface.log"
bench_start json-surface probe_json_surface \
    "$WASMHOST" serve bench/json_surface/app.py --addr 127.0.0.1:PORT --no-admin \
    || die "the json_surface app did not start; see $SERVER_LOG"

RAW=$BENCH_RESULTS/json-surface-$(date -u +%Y%m%dT%H%M%S).json
{
    echo "["
    sep=
    for size in 400B 10KB 1MB; do
        log "measuring $size"
        echo "$sep"
        curl -fsS --max-time 120 "http://127.0.0.1:$SERVER_PORT/?size=$size${REPS:+&reps=$REPS}" \
            || die "GET /?size=$size failed; see $SERVER_LOG"
        sep=,
    done
    echo "]"
} >"$RAW"
bench_stop

python3 - "$RAW" "$("$WASMHOST" --version)" "$(machine_line)" <<'EOF' | tee "${RAW%.json}.md"
import json, sys

raw, version, machine = sys.argv[1:4]
answers = json.load(open(raw))
if not all(a["host"] for a in answers):
    sys.exit("bench: the guest did not use the host's JSON functions (wasmhost.json.HOST is false)")
print(f"{version}, measured inside the guest (time.perf_counter_ns, median of N calls); {machine}")
print()
print("| size | operation | host µs | guest µs | guest/host | same answer |")
print("|---|---|---|---|---|---|")
fmt = lambda v: "–" if v is None else f"{v:,.1f}"
for answer in answers:
    for s in answer["sizes"]:
        label = f'{s["size"]} ({s["bytes"]:,} B, N={s["reps"]})'
        for r in s["rows"]:
            ratio = "–" if r["ratio"] is None else f'{r["ratio"]:.2f}×'
            same = {True: "yes", False: "**no**", None: ""}[r["same"]]
            print(f'| {label} | {r["op"]} | {fmt(r["host_us"])} | {fmt(r["guest_us"])} | {ratio} | {same} |')
            label = ""
EOF
