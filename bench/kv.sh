#!/usr/bin/env bash
# Key-value calls from a guest (issue 13): µs per call of each `wasmhost.kv`
# operation, timed inside the guest (bench/kv/app.py) over N calls, the
# median of ROUNDS rounds, for the embedded SQLite backend (a fresh data
# directory) and for Redis (a redis-server started on 127.0.0.1, nothing
# saved). Everything is stopped on exit.
#
#   bench/kv.sh                 # N=2000 ROUNDS=5 SIZE=100
#   N=5000 SIZE=1024 bench/kv.sh
#   BACKENDS=embedded bench/kv.sh
#
# Needs target/release/wasmhost (cargo build --release),
# .venv/bin/componentize-py (make venv) and redis-server (apt-get install
# redis-server) for the Redis column.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source bench/lib.sh
N=${N:-2000}
ROUNDS=${ROUNDS:-5}
SIZE=${SIZE:-100}
BACKENDS=${BACKENDS:-embedded redis}
REDIS_PORT=${REDIS_PORT:-18699}
WASMHOST=${WASMHOST:-$ROOT/target/release/wasmhost}
export COMPONENTIZE_PY=${COMPONENTIZE_PY:-$ROOT/.venv/bin/componentize-py}
export WASMHOST_CACHE_DIR=${WASMHOST_CACHE_DIR:-$ROOT/target/wasmhost-cache}
[[ -x $WASMHOST ]] || die "$WASMHOST is missing: cargo build --release --locked"
DATA=$(mktemp -d)
trap 'bench_exit; rm -rf "$DATA"' EXIT
probe_kv() { curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$1/bench?op=dict-get&n=1" 2>/dev/null; }
OPS="dict-get get get-miss exists set increment get-many-10 set-many-10"
declare -A RESULT
for backend in $BACKENDS; do
    bucket=default
    if [[ $backend == redis ]]; then
        bench_redis "$REDIS_PORT"
        bucket="default=redis://127.0.0.1:$REDIS_PORT/0"
    fi
    START_TIMEOUT=600 bench_start "kv-$backend" probe_kv \
        "$WASMHOST" serve bench/kv/app.py --addr 127.0.0.1:PORT --no-admin --data-dir "$DATA" \
        --key-value "$bucket" --max-instances 1 --min-instances 1
    for op in $OPS; do
        values=()
        for _ in $(seq "$ROUNDS"); do
            values+=("$(curl -fsS "http://127.0.0.1:$SERVER_PORT/bench?op=$op&n=$N&size=$SIZE" \
                | python3 -c 'import json,sys; print(json.load(sys.stdin)["us_per_call"])')")
        done
        RESULT[$backend,$op]=$(printf '%s\n' "${values[@]}" | sort -g | python3 -c '
import sys
v = [float(x) for x in sys.stdin]
print(f"{v[len(v)//2]:.1f} ({v[0]:.1f}-{v[-1]:.1f})")')
    done
    bench_stop
done
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
echo "kv from a guest: $N calls x $ROUNDS rounds, ${SIZE}-byte values, $cpu, $(nproc) cores"
echo "µs per call, median (min-max of the rounds)"
echo
header="| operation |"; rule="|---|"
for backend in $BACKENDS; do header+=" $backend |"; rule+="---|"; done
echo "$header"; echo "$rule"
for op in $OPS; do
    row="| $op |"
    for backend in $BACKENDS; do row+=" ${RESULT[$backend,$op]} |"; done
    echo "$row"
done
