#!/usr/bin/env bash
# Runs each fuzz target for a bounded time (`make fuzz`); see the "Fuzzing"
# section of docs/reliability.md.
#
#   FUZZ_SECONDS    time per target (default 60)
#   FUZZ_TARGETS    targets to run (default: all, in the order below)
#   FUZZ_TIMEOUT    seconds one input may take before it counts as a hang (default 10)
#   FUZZ_RSS_MB     memory limit of the fuzzing process (default 2048)
#   FUZZ_SANITIZER  none (default: the code under test is safe Rust) or address
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz
# --locked`). The corpus grows in fuzz/corpus/<target>/ (only seed-* files
# are committed), crashes and hangs land in fuzz/artifacts/<target>/, and
# each run's output in fuzz/logs/<target>.log. Exits non-zero if any
# target found a crash or hang.
set -euo pipefail

cd "$(dirname "$0")/.."
fuzz_dir=$PWD/fuzz
seconds=${FUZZ_SECONDS:-60}
targets=${FUZZ_TARGETS:-json_check json_minify json_extract schema_compile_validate config_parse}
timeout=${FUZZ_TIMEOUT:-10}
rss_mb=${FUZZ_RSS_MB:-2048}
sanitizer=${FUZZ_SANITIZER:-none}

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "run.sh: needs the nightly toolchain and cargo-fuzz: cargo install cargo-fuzz --locked" >&2
    exit 1
fi

# Release build with debug assertions and overflow checks.
build_flags=(-O -a -s "$sanitizer")
cargo +nightly fuzz build "${build_flags[@]}"

dict_of() {
    case $1 in
        json_*) echo "$fuzz_dir/dicts/json.dict" ;;
        schema_*) echo "$fuzz_dir/dicts/schema.dict" ;;
        config_*) echo "$fuzz_dir/dicts/toml.dict" ;;
    esac
}

mkdir -p "$fuzz_dir/logs"
failed=()
printf '%-24s %8s %12s %10s %8s %8s %8s\n' target seconds executions exec/s cov ft corpus
for target in $targets; do
    log=$fuzz_dir/logs/$target.log
    status=0
    cargo +nightly fuzz run "${build_flags[@]}" "$target" -- \
        -max_total_time="$seconds" -timeout="$timeout" -rss_limit_mb="$rss_mb" \
        -dict="$(dict_of "$target")" -print_final_stats=1 >"$log" 2>&1 || status=$?
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -n 1; }
    # The last status line, e.g. "#123 DONE cov: 1234 ft: 5678 corp: 90/12Kb ...".
    last=$(grep -E '^#[0-9]+[[:space:]].*cov: ' "$log" | tail -n 1 || true)
    field() { sed -nE "s/.* $1: ([0-9]+).*/\1/p" <<<"$last"; }
    printf '%-24s %8s %12s %10s %8s %8s %8s\n' "$target" "$seconds" "$(stat number_of_executed_units)" \
        "$(stat average_exec_per_sec)" "$(field cov)" "$(field ft)" "$(field corp)"
    if [ "$status" -ne 0 ]; then
        failed+=("$target")
        echo "  $target FAILED (exit $status); see $log and fuzz/artifacts/$target/" >&2
        grep -E '^(==[0-9]+== ERROR|SUMMARY|artifact_prefix|Test unit written|thread .* panicked)' "$log" | head -n 5 >&2 || true
    fi
done

if [ ${#failed[@]} -ne 0 ]; then
    echo "run.sh: ${#failed[@]} target(s) found a crash or hang: ${failed[*]}" >&2
    echo "reproduce: cargo +nightly fuzz run ${build_flags[*]} <target> fuzz/artifacts/<target>/<file>" >&2
    exit 1
fi
