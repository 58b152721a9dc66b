"""Fixtures for the wasmhost integration tests.

Run with ``.venv/bin/pytest tests``. The guests under tests/guests are built
once per session by scripts/build_guest.py (cached in target/guests), and
every server shares the compile cache target/wasmhost-cache, so a guest is
compiled by Cranelift once (~10-20 s) and then loads in milliseconds.

Set WASMHOST_BIN to test another build of the binary.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from wasmhost_testing import ROOT, Server

# `wasmhost build`/`serve app.py` find componentize-py through
# $COMPONENTIZE_PY when a test runs them outside the repository root.
if "COMPONENTIZE_PY" not in os.environ and (ROOT / ".venv" / "bin" / "componentize-py").is_file():
    os.environ["COMPONENTIZE_PY"] = str(ROOT / ".venv" / "bin" / "componentize-py")

TEST_TIME_LIMIT = 120
"""Seconds any single test may run (fixture setup at wider scope excluded)."""

BUILD_TIMEOUT = 1800
"""Seconds the guest builds may take when nothing is cached."""

HELLO_ARGS = [
    "--max-instances", "1",
    "--max-header-size", "8KiB",
]
"""The shared `hello` server: a single instance (so a leaked instance shows
as a stuck server) and a small request head limit."""

FAULTS_ARGS = [
    "--max-instances", "1",
    "--memory-limit", "64MiB",
    "--request-timeout", "1s",
]
"""The shared `faults` server: a single instance (a discarded instance shows
as a counter starting again at 1), a small memory limit and a short request
timeout."""


@pytest.fixture(scope="session")
def guests() -> dict[str, Path]:
    """Builds (or reuses) every guest in tests/guests: name -> component path."""
    command = [sys.executable, str(ROOT / "scripts" / "build_guest.py"), "--all", str(ROOT / "tests" / "guests")]
    try:
        result = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=BUILD_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"building the test guests took over {BUILD_TIMEOUT} s")
    if result.returncode != 0:
        pytest.fail(f"building the test guests failed (exit {result.returncode}):\n{result.stderr}")
    built = {}
    for line in result.stdout.splitlines():
        name, _, path = line.partition(" ")
        built[name] = Path(path)
    missing = {"hello", "faults"} - built.keys()
    if missing:
        pytest.fail(f"build_guest.py did not report guests {sorted(missing)}:\n{result.stdout}")
    return built


@pytest.fixture(scope="session")
def wasmhost_bin(tmp_path_factory) -> Path:
    """The wasmhost binary under test: $WASMHOST_BIN, else
    target/release/wasmhost.

    It is copied once per session, so that a `cargo build` running meanwhile
    cannot swap binaries between (or under) the tests.
    """
    binary = Path(os.environ.get("WASMHOST_BIN") or ROOT / "target" / "release" / "wasmhost")
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(
            f"wasmhost binary not found or not executable: {binary}\n"
            "Build it with `cargo build --release` or point WASMHOST_BIN at one."
        )
    snapshot = tmp_path_factory.mktemp("bin") / "wasmhost"
    shutil.copy2(binary, snapshot)
    return snapshot


@pytest.fixture(scope="session")
def make_server(wasmhost_bin: Path, guests: dict[str, Path]) -> Callable[..., Server]:
    """Factory for unstarted servers: ``make_server("faults", *args)``.

    Use the result as a context manager, so that a server that fails to stop
    cleanly fails the test that ran it.
    """

    def make(guest: str, *args: str, **kwargs) -> Server:
        return Server(wasmhost_bin, guests[guest], args, **kwargs)

    return make


@pytest.fixture(scope="module")
def hello_server(make_server) -> Server:
    """A `hello` server with `HELLO_ARGS`, shared by a test module."""
    with make_server("hello", *HELLO_ARGS) as server:
        yield server


@pytest.fixture(scope="module")
def faults_server(make_server) -> Server:
    """A `faults` server with `FAULTS_ARGS`, shared by a test module."""
    with make_server("faults", *FAULTS_ARGS) as server:
        yield server


@pytest.fixture(autouse=True)
def _time_limit(request):
    """Fails a test that runs longer than `TEST_TIME_LIMIT` seconds.

    Every wait in the tests has its own timeout; this is the backstop. The
    alarm interrupts the main thread wherever it blocks.
    """
    limit = request.node.get_closest_marker("time_limit")
    seconds = limit.args[0] if limit else TEST_TIME_LIMIT

    def expire(signum, frame):
        pytest.fail(f"test exceeded its time limit of {seconds} s", pytrace=True)

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
