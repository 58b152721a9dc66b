#!/usr/bin/env bash
# Supply-chain check: cargo-deny against deny.toml (`make audit`; .ci/run).
#
#   licenses, bans, sources   always checked; any error fails (exit 1)
#   advisories (RustSec)      checked against the advisory database; a known
#                             vulnerable/unsound crate in Cargo.lock fails (exit 1)
#
# The advisory database is a git repository on github.com. This script uses:
#   1. ADVISORY_DB=/path/to/advisory-db   a local database, used instead of
#      fetching: a clone (git clone https://github.com/rustsec/advisory-db,
#      copied over however you can), or a snapshot of one without .git whose
#      SNAPSHOT file names its commit and date (.ci/run sets ADVISORY_DB to
#      ../shared/advisory-db, such a snapshot, when that directory exists).
#      Its commit and date are printed, and a loud warning when it is older
#      than 90 days (cargo-deny's own limit for a database it may not fetch);
#   2. otherwise the live database, fetched now;
#   3. where that fails (no GitHub access), a clone cargo-deny fetched earlier
#      into $CARGO_HOME/advisory-dbs (its age is printed);
#   4. nothing: advisories are NOT checked, a loud warning says so, and the
#      script still exits 0, unless AUDIT_REQUIRE_ADVISORIES=1 (then exit 2).
# Why 4 is not a failure by default: docs/reliability.md, "Supply chain".
#
# cargo-deny is installed (pinned, from crates.io source) into target/tools
# (override: WASMHOST_TOOLS_DIR) and reused while the version matches; a
# cargo-deny of the same version already on PATH is used as is.
set -euo pipefail
cd "$(dirname "$0")/.."

DENY_VERSION=0.20.2
# cargo-deny's directory name for https://github.com/rustsec/advisory-db
# inside db-path (stable since cargo-deny 0.18; check on upgrade).
DB_DIRNAME=advisory-db-3157b0e258782691
TOOLS_DIR=${WASMHOST_TOOLS_DIR:-target/tools}
CARGO_HOME_DIR=${CARGO_HOME:-$HOME/.cargo}

say() { printf 'audit: %s\n' "$*" >&2; }

# --- cargo-deny ---------------------------------------------------------------
DENY=
if command -v cargo-deny >/dev/null 2>&1 &&
   [ "$(cargo-deny --version 2>/dev/null)" = "cargo-deny $DENY_VERSION" ]; then
    DENY=$(command -v cargo-deny)
elif [ -x "$TOOLS_DIR/bin/cargo-deny" ] &&
     [ "$("$TOOLS_DIR/bin/cargo-deny" --version 2>/dev/null)" = "cargo-deny $DENY_VERSION" ]; then
    DENY=$TOOLS_DIR/bin/cargo-deny
else
    say "installing cargo-deny $DENY_VERSION into $TOOLS_DIR (builds from source: 3.5 to 9 min on 2 cores, once per target/)"
    start=$SECONDS
    cargo install cargo-deny --version "=$DENY_VERSION" --locked --root "$TOOLS_DIR" --force --quiet
    say "cargo-deny installed in $((SECONDS - start)) s"
    DENY=$TOOLS_DIR/bin/cargo-deny
fi

# --- licenses, bans, sources (needs crates.io for `cargo metadata` on a cold cache,
# never github.com)
say "cargo deny check licenses bans sources"
"$DENY" --locked check --hide-inclusion-graph licenses bans sources || {
    say "FAILED: licenses/bans/sources (see above; deny.toml says what is allowed and why)"
    exit 1
}

# --- advisories -----------------------------------------------------------------
banner() {
    local line='!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!'
    printf '\n%s\n' "$line" >&2
    printf '!!! %s\n' "$@" >&2
    printf '%s\n\n' "$line" >&2
}

db_age() { # commit date of a database clone
    git -C "$1" show -s --format=%cs HEAD 2>/dev/null || echo "unknown date"
}

run_advisories() { # $1: extra config (empty = deny.toml as is); rest: cargo-deny flags
    local config=$1; shift
    if [ -n "$config" ]; then
        "$DENY" --locked "$@" --config "$config" check --hide-inclusion-graph advisories
    else
        "$DENY" --locked "$@" check --hide-inclusion-graph advisories
    fi
}

advisories_done() {
    say "advisories checked against the RustSec database ($1)"
    say "OK: licenses, bans, sources, advisories"
    exit 0
}

advisories_failed() {
    say "FAILED: advisories (see above). Upgrade the crate (cargo update -p NAME), or, if"
    say "the advisory does not apply to wasmhost, add it to [advisories].ignore in deny.toml"
    say "with a reason and a date."
    exit 1
}

snapshot_field() { # $1: field of a snapshot's SNAPSHOT file ("commit", "date"); $2: the snapshot
    sed -n "s/^$1: *//p" "$2/SNAPSHOT" 2>/dev/null | head -n1
}

days_since() { # whole days from an ISO 8601 date to now; nothing if there is none (or no GNU date)
    local then
    [ -n "$1" ] && then=$(date -d "$1" +%s 2>/dev/null) || return 0
    echo $(( ($(date +%s) - then) / 86400 ))
}

# cargo-deny reads a database only from a git repository (it dates it by the
# repository's HEAD), so a snapshot is copied into one, at $2, whose single
# commit carries the snapshot's date. The copy is remade on every run (1.2k
# small files: 2 s of CPU, 4.6 s on a busy machine).
snapshot_repo() { # $1: the snapshot; $2: the repository to create
    local date
    date=$(snapshot_field date "$1")
    mkdir -p "$2"
    cp -R "$1/." "$2/"
    chmod -R u+w "$2" # shared/ may be read-only; the copy must be removable
    git -C "$2" init -q
    git -C "$2" add -A
    # Without a SNAPSHOT date the commit is dated now.
    GIT_AUTHOR_DATE=$date GIT_COMMITTER_DATE=$date \
        git -C "$2" -c user.name=wasmhost-audit -c user.email=audit@localhost -c commit.gpgsign=false \
        -c core.hooksPath=/dev/null commit -q -m "advisory-db snapshot $(snapshot_field commit "$1")"
}

if [ -n "${ADVISORY_DB:-}" ]; then
    # A local database: give cargo-deny a db-path whose only database is it.
    [ -d "$ADVISORY_DB/crates" ] || {
        say "ADVISORY_DB=$ADVISORY_DB is not a copy of rustsec/advisory-db (no crates/ directory)"
        exit 1
    }
    db=$(cd "$ADVISORY_DB" && pwd)
    root=$PWD/target/audit/advisory-dbs
    mkdir -p "$root"
    rm -rf "${root:?}/$DB_DIRNAME"
    if [ -e "$db/.git" ]; then
        ln -s "$db" "$root/$DB_DIRNAME"
        date=$(git -C "$db" show -s --format=%cI HEAD 2>/dev/null || true)
        described="local clone $db, last commit $(db_age "$db")"
    else
        snapshot_repo "$db" "$root/$DB_DIRNAME"
        date=$(snapshot_field date "$db")
        commit=$(snapshot_field commit "$db")
        described="snapshot $db, commit ${commit:-unknown (no SNAPSHOT file)}, dated ${date:-unknown}"
    fi
    age=$(days_since "$date")
    if [ -n "$age" ]; then
        described="$described, $age days old"
    fi
    if [ -n "$age" ] && [ "$age" -gt 90 ]; then
        banner "The local RustSec advisory database is $age days old (${date%%T*}): advisories" \
               "published since then are NOT checked. Refresh it (ADVISORY_DB=$ADVISORY_DB)," \
               "or run make audit without ADVISORY_DB where github.com is reachable."
    fi
    config=target/audit/deny.toml
    # deny.toml with db-path added to [advisories].
    awk -v p="$root" '{ print } /^\[advisories\]/ { print "db-path = \"" p "\"" }' deny.toml >"$config"
    say "cargo deny check advisories ($described)"
    run_advisories "$config" --offline || advisories_failed
    advisories_done "$described"
fi

say "fetching the RustSec advisory database"
fetch_log=$(mktemp)
trap 'rm -f "$fetch_log"' EXIT
if timeout 120 "$DENY" fetch db >"$fetch_log" 2>&1; then
    cached=$CARGO_HOME_DIR/advisory-dbs/$DB_DIRNAME
    say "cargo deny check advisories"
    run_advisories "" --offline || advisories_failed
    advisories_done "fetched now, $(db_age "$cached")"
fi

reason=$(grep -m1 -iE 'could not resolve|unable to access|timed out|connection refused' "$fetch_log" ||
         grep -m1 -i 'error' "$fetch_log" || tail -n1 "$fetch_log" || true)
reason=${reason:-cargo deny fetch db failed}
cached=$CARGO_HOME_DIR/advisory-dbs/$DB_DIRNAME
if git -C "$cached" rev-parse --verify -q HEAD >/dev/null 2>&1; then
    banner "RustSec advisory database could not be fetched: ${reason}" \
           "Using the copy fetched earlier, last commit $(db_age "$cached"): advisories published" \
           "since then are NOT checked."
    say "cargo deny check advisories (cached database)"
    run_advisories "" --offline || advisories_failed
    advisories_done "cached copy, $(db_age "$cached")"
fi

banner "RUSTSEC ADVISORIES WERE NOT CHECKED." \
       "The advisory database (https://github.com/rustsec/advisory-db) could not be fetched:" \
       "  ${reason}" \
       "Licenses, bans and sources WERE checked and passed. Known vulnerabilities in" \
       "wasmtime, h2, hyper, rustls... in Cargo.lock were NOT looked for." \
       "Run where github.com is reachable:   make audit   (or: cargo deny check)" \
       "or point at a local clone:           ADVISORY_DB=/path/to/advisory-db make audit"
if [ "${AUDIT_REQUIRE_ADVISORIES:-0}" = 1 ]; then
    say "AUDIT_REQUIRE_ADVISORIES=1: failing"
    exit 2
fi
say "OK: licenses, bans, sources. SKIPPED: advisories (no database)"
exit 0
