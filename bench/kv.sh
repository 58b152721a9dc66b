#!/usr/bin/env bash
# Key-value calls from a guest (issue 13): µs per call of each `wasmhost.kv`
# operation, timed inside the guest (bench/kv/app.py) over N calls, the
# median of ROUNDS rounds, with the embedded SQLite backend in a fresh data
# directory. 127.0.0.1 only; the server is stopped on exit.
#
#   bench/kv.sh                 # N=2000 ROUNDS=5 SIZE=100
#   N=5000 SIZE=1024 bench/kv.sh
#
# Needs target/release/wasmhost (cargo build --release) and
# .venv/bin/componentize-py (make venv).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source bench/lib.sh
N=${N:-2000}
ROUNDS=${ROUNDS:-5}
SIZE=${SIZE:-100}
WASMHOST=${WASMHOST:-$ROOT/target/release/wasmhost}
export COMPONENTIZE_PY=${COMPONENTIZE_PY:-$ROOT/.venv/bin/componentize-py}
export WASMHOST_CACHE_DIR=${WASMHOST_CACHE_DIR:-$ROOT/target/wasmhost-cache}
[[ -x $WASMHOST ]] || die "$WASMHOST is missing: cargo build --release --locked"
DATA=$(mktemp -d)
trap 'bench_stop; rm -rf "$DATA"' EXIT
probe_kv() { curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$1/bench?op=dict-get&n=1" 2>/dev/null; }
START_TIMEOUT=600 bench_start kv probe_kv \
    "$WASMHOST" serve bench/kv/app.py --addr 127.0.0.1:PORT --no-admin --data-dir "$DATA" \
    --key-value default --max-instances 1 --min-instances 1
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
echo "kv from a guest: $N calls x $ROUNDS rounds, ${SIZE}-byte values, $cpu, $(nproc) cores"
echo
echo "| operation | µs per call (median) | min | max |"
echo "|---|---|---|---|"
for op in dict-get get get-miss exists set increment get-many-10 set-many-10; do
    values=()
    for _ in $(seq "$ROUNDS"); do
        values+=("$(curl -fsS "http://127.0.0.1:$SERVER_PORT/bench?op=$op&n=$N&size=$SIZE" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["us_per_call"])')")
    done
    printf '%s\n' "${values[@]}" | sort -g | python3 -c '
import sys
v = [float(x) for x in sys.stdin]
print(f"| '"$op"' | {v[len(v)//2]:.2f} | {v[0]:.2f} | {v[-1]:.2f} |")'
done
