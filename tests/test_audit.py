"""`make audit` (scripts/audit.sh) against a local RustSec advisory database
that is not a git repository, as ../shared/advisory-db is: it must print the
snapshot's commit and date, pass when no advisory matches Cargo.lock, and
fail (exit 1) when one does.

The database is a copy of the real snapshot ($ADVISORY_DB, else
../shared/advisory-db beside the repository) when there is one, else a
one-advisory database made here. The script installs the pinned cargo-deny
into target/tools on first use (minutes, once; .ci/run's `make audit` has
done it before the tests run).
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from wasmhost_testing import ROOT

AUDIT_TIMEOUT = 1200
"""Seconds the script may take, installing cargo-deny included."""

COMMIT = "0123456789abcdef0123456789abcdef01234567"
DATE = "2026-08-21T08:28:40+02:00"

HARMLESS = """\
```toml
[advisory]
id = "RUSTSEC-2099-0002"
package = "h2"
date = "2099-01-02"
url = "https://example.invalid/RUSTSEC-2099-0002"
categories = ["denial-of-service"]
keywords = []

[versions]
patched = [">= 0.1.0"]
```

# Made up for wasmhost's audit test: fixed long before the locked h2
"""


def snapshot_source() -> Path | None:
    """The real snapshot, if this checkout has one to hand."""
    for candidate in (os.environ.get("ADVISORY_DB"), ROOT.parent / "shared" / "advisory-db"):
        if candidate and (Path(candidate) / "crates").is_dir():
            return Path(candidate)
    return None


def locked_version(crate: str) -> str:
    lock = (ROOT / "Cargo.lock").read_text()
    versions = re.findall(rf'^name = "{re.escape(crate)}"\nversion = "([^"]+)"', lock, re.M)
    assert len(versions) == 1, f"expected one locked {crate}, found {versions}"
    return versions[0]


@pytest.fixture
def advisory_db(tmp_path: Path) -> tuple[Path, str, str]:
    """A writable database without .git: (path, its commit, its date)."""
    db = tmp_path / "advisory-db"
    source = snapshot_source()
    if source is not None:
        shutil.copytree(source, db, ignore=shutil.ignore_patterns(".git"))
        for path in [db, *db.rglob("*")]:
            path.chmod(path.stat().st_mode | stat.S_IWUSR)
        text = (db / "SNAPSHOT").read_text()
        commit = re.search(r"^commit: (\S+)", text, re.M).group(1)
        date = re.search(r"^date: (\S+)", text, re.M).group(1)
        return db, commit, date
    (db / "crates" / "h2").mkdir(parents=True)
    (db / "crates" / "h2" / "RUSTSEC-2099-0002.md").write_text(HARMLESS)
    (db / "SNAPSHOT").write_text(f"test database\ncommit: {COMMIT}\ndate: {DATE}\n")
    return db, COMMIT, DATE


def audit(db: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "AUDIT_REQUIRE_ADVISORIES"}
    env["ADVISORY_DB"] = str(db)
    return subprocess.run(
        [str(ROOT / "scripts" / "audit.sh")], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=AUDIT_TIMEOUT,
    )


@pytest.mark.time_limit(AUDIT_TIMEOUT + 60)
def test_snapshot_without_git_is_checked_and_dated(advisory_db):
    db, commit, date = advisory_db
    result = audit(db)
    assert result.returncode == 0, result.stderr
    assert f"commit {commit}, dated {date}" in result.stderr, result.stderr
    assert "OK: licenses, bans, sources, advisories" in result.stderr, result.stderr


@pytest.mark.time_limit(AUDIT_TIMEOUT + 60)
def test_advisory_for_a_locked_version_fails_the_audit(advisory_db):
    db, _, _ = advisory_db
    major, minor, patch = locked_version("h2").split(".")
    fixed = f"{major}.{minor}.{int(patch) + 1}"
    advisory = HARMLESS.replace("RUSTSEC-2099-0002", "RUSTSEC-2099-0001").replace(
        'patched = [">= 0.1.0"]', f'patched = [">= {fixed}"]'
    ).replace("fixed long before the locked h2", f"fixed in h2 {fixed}, one after the locked version")
    (db / "crates" / "h2" / "RUSTSEC-2099-0001.md").write_text(advisory)
    result = audit(db)
    assert result.returncode == 1, result.stderr
    assert "error[vulnerability]" in result.stderr and "RUSTSEC-2099-0001" in result.stderr, result.stderr
    assert "FAILED: advisories" in result.stderr, result.stderr
