#!/usr/bin/env bash
# Memory per tenant: N apps serving the same hello component in one config,
# each by its own Host, with min_instances=1. Starts wasmhost, waits until
# every app answers, prints the time to ready and the server's RSS, stops it.
# 127.0.0.1 only, bounded (at most 120 s of waiting).
#
#   bench/tenants_rss.sh 10              # target/release/wasmhost
#   WASMHOST=/path/to/wasmhost bench/tenants_rss.sh 10
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-10}
PORT=${PORT:-18795}
WASMHOST=${WASMHOST:-target/release/wasmhost}
HELLO=$(.venv/bin/python scripts/build_guest.py tests/guests/hello | tail -n1)
dir=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
{
    printf '[server]\naddr = "127.0.0.1:%s"\n' "$PORT"
    for i in $(seq 1 "$N"); do
        printf '\n[[app]]\nname = "t%s"\nmodule = "%s"\nhosts = ["t%s.test"]\nmin_instances = 1\n' "$i" "$HELLO" "$i"
    done
} >"$dir/wasmhost.toml"
started=$(date +%s.%N)
"$WASMHOST" serve --config "$dir/wasmhost.toml" --no-admin --cache-dir target/wasmhost-cache >"$dir/log" 2>&1 &
pid=$!
for i in $(seq 1 "$N"); do
    for _ in $(seq 1 1200); do
        curl -fsS -o /dev/null -H "Host: t$i.test" "http://127.0.0.1:$PORT/" && break
        kill -0 $pid 2>/dev/null || { cat "$dir/log" >&2; exit 1; }
        sleep 0.1
    done
done
ready=$(date +%s.%N)
rss_kib=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status")
awk -v n="$N" -v s="$started" -v r="$ready" -v k="$rss_kib" \
    'BEGIN { printf "tenants=%d ready_s=%.1f rss_mib=%.0f rss_mib_per_tenant=%.1f\n", n, r - s, k / 1024, k / 1024 / n }'
