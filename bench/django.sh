#!/usr/bin/env bash
# Django on the host database (issue 18), one run, side by side, 127.0.0.1 only:
# examples/django-blog's list view (GET /, 20 posts with comment counts,
# rendered by a template) and create view (POST /api/posts, a JSON post
# validated by a ModelForm and inserted) under
#
#   wasmhost-list / wasmhost-create   wasmhost serve, ENGINE wasmhost.django
#                                     (the host's SQLite, WAL, IMMEDIATE)
#   granian-list / granian-create     native Granian, 2 workers, the same
#                                     project on Django's own sqlite3 backend
#                                     (bench/native/django_blog_settings.py:
#                                     WAL, IMMEDIATE, as the host has)
#
# Each database is migrated and seeded with 100 posts first. Each server
# runs alone: start, wait until it answers, a WARMUP wrk run, then
# `wrk -t1 -cCONNECTIONS -dDURATION`. Prints a markdown table (req/s, p50,
# p99, server CPU per request, peak RSS, errors) and the list-view ratio
# the issue sets a target for (≥ 0.5×), and saves it under bench/results/.
#
#   bench/django.sh
#   DURATION=20s CONNECTIONS=32 bench/django.sh
#
# Needs target/release/wasmhost and .venv/bin/componentize-py (make venv);
# installs wrk (apt) and granian plus the blog's requirements into
# .venv-bench when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH_PORT=18900
START_TIMEOUT=${START_TIMEOUT:-300}
source bench/lib.sh

BLOG=examples/django-blog
WASMHOST=${WASMHOST:-$ROOT/target/release/wasmhost}
export COMPONENTIZE_PY=${COMPONENTIZE_PY:-$ROOT/.venv/bin/componentize-py}
export WASMHOST_CACHE_DIR=${WASMHOST_CACHE_DIR:-$ROOT/target/wasmhost-cache}
[[ -x $WASMHOST ]] || die "$WASMHOST is missing: cargo build --release --locked"
[[ -x $COMPONENTIZE_PY ]] || die "$COMPONENTIZE_PY is missing: make venv"
ensure_wrk
ensure_bench_venv granian -r "$BLOG/requirements.txt"

DATA=$(mktemp -d /tmp/wasmhost-bench-django.XXXXXX)
trap 'bench_exit; rm -rf "$DATA"' EXIT
export DJANGO_BENCH_DB=$DATA/native.sqlite3
APP=(--interface wsgi --database default --data-dir "$DATA" mysite.wsgi:application)
NATIVE_ENV=(env -C "$BLOG" PYTHONPATH="$ROOT/bench/native" DJANGO_SETTINGS_MODULE=django_blog_settings
            DJANGO_BENCH_DB="$DJANGO_BENCH_DB")

log "migrating both databases"
(cd "$BLOG" && "$WASMHOST" run "${APP[@]}" -- manage.py migrate --no-input) >"$BENCH_RESULTS/django-migrate.log" 2>&1 \
    || die "wasmhost run ... manage.py migrate failed; see $BENCH_RESULTS/django-migrate.log"
"${NATIVE_ENV[@]}" "$ROOT/.venv-bench/bin/python" manage.py migrate --no-input >>"$BENCH_RESULTS/django-migrate.log" 2>&1 \
    || die "native manage.py migrate failed; see $BENCH_RESULTS/django-migrate.log"
SEED="from blog.models import Post; Post.objects.bulk_create([Post(title=f'Seeded post {i}', body='text ' * 40) for i in range(100)])"
(cd "$BLOG" && "$WASMHOST" run "${APP[@]}" -- -c "$SEED") >>"$BENCH_RESULTS/django-migrate.log" 2>&1 \
    || die "seeding the wasmhost database failed"
"${NATIVE_ENV[@]}" "$ROOT/.venv-bench/bin/python" -c "import django; django.setup(); $SEED" \
    >>"$BENCH_RESULTS/django-migrate.log" 2>&1 || die "seeding the native database failed"

probe_list() { curl -fsS -o /dev/null --max-time 5 "http://127.0.0.1:$1/" 2>/dev/null; }

ROWS=()
declare -A RPS=()

# measure NAME PATH [WRK ARGS] -- CMD...: one server, one wrk run.
measure() {
    local name=$1 path=$2; shift 2
    local wrk_args=()
    while [[ $1 != -- ]]; do wrk_args+=("$1"); shift; done
    shift
    if ! bench_start "$name" probe_list "$@"; then
        ROWS+=("| $name | failed to start | | | | | see $SERVER_LOG |"); return
    fi
    local out rss errors
    bench_wrk out "http://127.0.0.1:$SERVER_PORT$path" "${wrk_args[@]}"
    rss=$(bench_peak_rss_kib)
    bench_stop
    echo "$out" >"$BENCH_RESULTS/$name.wrk"
    errors=$(wrk_errors "$out")
    RPS[$name]=$(wrk_rps "$out")
    ROWS+=("| $name | ${RPS[$name]} | $(wrk_p50 "$out") | $(wrk_p99 "$out") | $WRK_CPU_US_PER_REQ µs | $((rss / 1024)) MiB | ${errors:+**}${errors:-none}${errors:+**} |")
}

WASMHOST_SERVE=(env -C "$BLOG" "$WASMHOST" serve "${APP[@]}" --addr 127.0.0.1:PORT --no-admin)
GRANIAN=("${NATIVE_ENV[@]}" "$ROOT/.venv-bench/bin/granian" --interface wsgi --workers 2 --host 127.0.0.1 --port PORT
         mysite.wsgi:application)
measure wasmhost-list / -- "${WASMHOST_SERVE[@]}"
measure granian-list / -- "${GRANIAN[@]}"
measure wasmhost-create /api/posts -s bench/django_create.lua -- "${WASMHOST_SERVE[@]}"
measure granian-create /api/posts -s bench/django_create.lua -- "${GRANIAN[@]}"

ratio() {
    local a=${RPS[$1]:-} b=${RPS[$2]:-}
    [[ -n $a && -n $b && $b != 0 ]] && awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f×", a / b }' || echo "n/a"
}

{
    echo "## Django on the host database, $(date -u +%Y-%m-%d)"
    echo
    echo "\`wrk -t1 -c$CONNECTIONS -d$DURATION\` per target after a $WARMUP warm-up; the load generator shares the machine:"
    echo "$(machine_line)."
    echo "$("$WASMHOST" --version 2>/dev/null || echo wasmhost ?); $(.venv-bench/bin/granian --version 2>/dev/null || echo granian ?);" \
        "native $(.venv-bench/bin/python --version); Django $(.venv-bench/bin/python -c 'import django; print(django.__version__)')"
    echo
    echo "examples/django-blog: GET / (list: 20 of the posts with comment counts, a template) and POST /api/posts"
    echo "(create: a ModelForm and an INSERT). CPU/req = server CPU time (all its processes) ÷ requests."
    echo
    echo "| target | req/s | p50 | p99 | CPU/req | peak RSS | errors |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "| ratio | measured | target |"
    echo "|---|---|---|"
    echo "| wasmhost-list / granian-list | $(ratio wasmhost-list granian-list) | ≥ 0.5× |"
    echo "| wasmhost-create / granian-create | $(ratio wasmhost-create granian-create) | (reference) |"
} | tee "$BENCH_RESULTS/django-$(date -u +%Y%m%dT%H%M%S).md"
