#!/usr/bin/env bash
# Server CPU time per request: starts wasmhost on the hello guest with the
# given extra flags, drives it with wrk for 5 s (after 2 s of warm-up), and
# divides the server's user+system CPU time by the requests served. Less
# noisy than req/s on a machine shared with the load generator.
#
#   bench/cpu_per_request.sh --isolation fresh
#   CONNECTIONS=16 bench/cpu_per_request.sh --max-instances 4
set -euo pipefail
cd "$(dirname "$0")/.."
CONNECTIONS=${CONNECTIONS:-8}
PORT=${PORT:-18790}
HELLO=$(.venv/bin/python scripts/build_guest.py tests/guests/hello | tail -n1)
target/release/wasmhost serve "$HELLO" --addr 127.0.0.1:$PORT --no-admin --no-watch \
    --cache-dir target/wasmhost-cache "$@" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 600); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/" && break; sleep 0.1; done
wrk -t1 -c"$CONNECTIONS" -d2s "http://127.0.0.1:$PORT/" >/dev/null
cpu() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
before=$(cpu)
out=$(wrk -t1 -c"$CONNECTIONS" -d5s "http://127.0.0.1:$PORT/")
after=$(cpu)
requests=$(awk '/requests in/ {print $1}' <<<"$out")
rps=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")
ticks=$(getconf CLK_TCK)
awk -v b="$before" -v a="$after" -v n="$requests" -v t="$ticks" -v r="$rps" -v flags="$*" \
    'BEGIN { printf "req/s=%s cpu_ms_per_request=%.3f flags=%s\n", r, (a - b) * 1000 / t / n, flags }'
