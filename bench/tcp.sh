#!/usr/bin/env bash
# Outbound TCP from a guest (issue 13): µs per redis-py call (PING, GET,
# SET, INCR; and raw-ping, a PING on a plain socket) on one pooled
# connection to a redis-server on 127.0.0.1, timed inside the guest
# (bench/tcp/app.py) and, for comparison, by the same loop (bench/tcp/loop.py)
# and the same redis-py on the host's CPython. The median of ROUNDS rounds of
# N calls. Everything is stopped on exit.
#
#   bench/tcp.sh                 # N=5000 ROUNDS=5 SIZE=100
#
# Needs target/release/wasmhost (cargo build --release),
# .venv/bin/componentize-py (make venv) and redis-server (apt-get install
# redis-server); installs redis-py into .venv-bench for the native column.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
source bench/lib.sh
N=${N:-5000}
ROUNDS=${ROUNDS:-5}
SIZE=${SIZE:-100}
REDIS_PORT=${REDIS_PORT:-18698}
WASMHOST=${WASMHOST:-$ROOT/target/release/wasmhost}
export COMPONENTIZE_PY=${COMPONENTIZE_PY:-$ROOT/.venv/bin/componentize-py}
export WASMHOST_CACHE_DIR=${WASMHOST_CACHE_DIR:-$ROOT/target/wasmhost-cache}
[[ -x $WASMHOST ]] || die "$WASMHOST is missing: cargo build --release --locked"
ensure_bench_venv -r bench/tcp/requirements.txt
bench_redis "$REDIS_PORT"
probe_tcp() { curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$1/bench?op=ping&n=1&port=$REDIS_PORT" 2>/dev/null; }
START_TIMEOUT=600 bench_start tcp probe_tcp \
    "$WASMHOST" serve bench/tcp/app.py --addr 127.0.0.1:PORT --no-admin \
    --allow-outbound "tcp://127.0.0.1:$REDIS_PORT" --max-instances 1 --min-instances 1
median() { sort -g | python3 -c '
import sys
v = [float(x) for x in sys.stdin]
print(f"{v[len(v)//2]:.1f} ({v[0]:.1f}-{v[-1]:.1f})")'; }
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')
echo "redis-py over TCP to 127.0.0.1: $N calls x $ROUNDS rounds, ${SIZE}-byte values, $cpu, $(nproc) cores"
echo "µs per call, median (min-max of the rounds)"
echo
echo "| operation | guest (wasmhost) | native CPython | guest / native |"
echo "|---|---|---|---|"
for op in raw-ping ping get set incr; do
    guest=() native=()
    for _ in $(seq "$ROUNDS"); do
        guest+=("$(curl -fsS "http://127.0.0.1:$SERVER_PORT/bench?op=$op&n=$N&size=$SIZE&port=$REDIS_PORT" \
            | python3 -c 'import json,sys; print(json.load(sys.stdin)["us_per_call"])')")
        native+=("$(cd bench/tcp && "$ROOT/.venv-bench/bin/python" -c "
import redis, loop
print(loop.run(redis.Redis(host='127.0.0.1', port=$REDIS_PORT), '$op', $N, $SIZE))")")
    done
    g=$(printf '%s\n' "${guest[@]}" | median)
    n=$(printf '%s\n' "${native[@]}" | median)
    echo "| $op | $g | $n | $(awk -v g="${g%% *}" -v n="${n%% *}" 'BEGIN { printf "%.2fx", g / n }') |"
done
