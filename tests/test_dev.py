"""`wasmhost dev app.py`: edits to the Python sources are served within
seconds without a component build, and a broken edit is refused with file
and line while the last good version keeps serving.

The dev loader component is built once per session by the first test
(componentize-py, ~20 s) into the shared cache directory.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, Server

EDIT_DEADLINE = 5.0
"""Seconds from saving an edit to the new response (the issue's target)."""

GREETING = "Hello from wasmhost!"


def body_of(server: Server) -> str:
    status, _, body = server.request("GET", "/")
    assert status == 200, body
    return body.decode()


def served_within(server: Server, text: str, seconds: float) -> float:
    """Seconds until a response contains `text`; fails after `seconds`."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if text in body_of(server):
            return time.monotonic() - started
        time.sleep(0.02)
    pytest.fail(f"{text!r} not served within {seconds} s; log:\n{server.log()[-3000:]}")


def save(path: Path, text: str) -> None:
    """Write-then-rename, as editors save."""
    tmp = path.with_name(path.name + ".swp")
    tmp.write_text(text)
    tmp.replace(path)


@pytest.fixture
def dev_server(wasmhost_bin, tmp_path):
    """`wasmhost dev` on a copy of examples/hello/app.py; yields (server, app.py)."""
    app = tmp_path / "app.py"
    shutil.copy(ROOT / "examples" / "hello" / "app.py", app)
    with Server(wasmhost_bin, app, subcommand="dev", start_timeout=300) as server:
        yield server, app


@pytest.mark.time_limit(400)
def test_edit_is_served_within_seconds(dev_server):
    server, app = dev_server
    assert GREETING in body_of(server)
    source = app.read_text()
    for n in range(3):
        save(app, source.replace(GREETING, f"Hello, edit {n}!"))
        elapsed = served_within(server, f"Hello, edit {n}!", EDIT_DEADLINE)
        assert elapsed < EDIT_DEADLINE


@pytest.mark.time_limit(400)
@pytest.mark.parametrize(
    "breakage, error",
    [
        pytest.param("\ndef broken(:\n", "SyntaxError", id="syntax-error"),
        pytest.param("\nimport no_such_module_here\n", "ModuleNotFoundError", id="import-error"),
    ],
)
def test_broken_edit_is_refused_until_fixed(dev_server, breakage, error):
    server, app = dev_server
    source = app.read_text()
    save(app, source.replace(GREETING, "Hello, broken!") + breakage)
    match = server.wait_for_log(r"source change refused", timeout=EDIT_DEADLINE)
    assert match
    log = server.log()
    assert error in log
    assert f'File "{app}", line' in log, "the error names the host file and line"
    assert GREETING in body_of(server), "the last good version keeps serving"
    save(app, source.replace(GREETING, "Hello, fixed!"))
    served_within(server, "Hello, fixed!", EDIT_DEADLINE)
