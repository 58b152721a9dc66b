"""`wasmhost build`: componentize-py with the platform WIT and the SDK that
ship inside the binary, cached by a digest of every input, with Python
errors shown at their host file and line."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, SHARED_CACHE_DIR

BUILD_TIMEOUT = 300


def build(wasmhost_bin: Path, app: str, cwd: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(wasmhost_bin), "build", app, "--cache-dir", str(SHARED_CACHE_DIR), *args],
        cwd=cwd, capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=env,
    )


@pytest.mark.time_limit(2 * BUILD_TIMEOUT)
def test_build_is_cached_by_its_inputs(wasmhost_bin, tmp_path):
    app = tmp_path / "app.py"
    app.write_text((ROOT / "examples" / "hello" / "app.py").read_text())
    first = build(wasmhost_bin, "app.py", tmp_path)
    assert first.returncode == 0, first.stderr
    component = Path(first.stdout.strip().splitlines()[-1])
    assert component.read_bytes()[:4] == b"\0asm"

    started = time.monotonic()
    again = build(wasmhost_bin, "app.py", tmp_path, "-o", str(tmp_path / "out.wasm"))
    assert again.returncode == 0, again.stderr
    assert "cached=true" in again.stderr and time.monotonic() - started < 10
    assert (tmp_path / "out.wasm").read_bytes() == component.read_bytes()

    app.write_text(app.read_text() + "\n# a change\n")
    changed = build(wasmhost_bin, "app.py", tmp_path)
    assert changed.returncode == 0, changed.stderr
    assert Path(changed.stdout.strip().splitlines()[-1]) != component, "a changed input is a new build"


@pytest.mark.time_limit(2 * BUILD_TIMEOUT)
@pytest.mark.parametrize(
    "source, error, line",
    [
        pytest.param("import wasmhost\napp = wasmhost.App()\n\ndef broken(:\n    pass\n", "SyntaxError", 4, id="syntax-error"),
        pytest.param("import wasmhost\nimport no_such_module_here\napp = wasmhost.App()\n", "ModuleNotFoundError", 2, id="import-error"),
        pytest.param("import wasmhost\napp = wasmhost.App()\nraise RuntimeError('setup failed')\n", "RuntimeError: setup failed", 3, id="exception-at-import"),
    ],
)
def test_python_errors_name_the_file_and_line(wasmhost_bin, tmp_path, source, error, line):
    (tmp_path / "app.py").write_text(source)
    result = build(wasmhost_bin, "app.py", tmp_path)
    assert result.returncode != 0
    assert error in result.stderr, result.stderr
    assert f'File "{tmp_path}/app.py", line {line}' in result.stderr, result.stderr
    assert "Stack backtrace" not in result.stderr


def test_missing_target_is_a_clear_error(wasmhost_bin, tmp_path):
    (tmp_path / "shop.py").write_text("import wasmhost\nnot_an_app = 1\n")
    result = build(wasmhost_bin, "shop:app", tmp_path, "--interface", "sdk")
    assert result.returncode != 0
    assert "app" in result.stderr and "shop" in result.stderr, result.stderr


def test_missing_componentize_py_says_how_to_install_it(wasmhost_bin, tmp_path):
    (tmp_path / "app.py").write_text("import wasmhost\napp = wasmhost.App()\n")
    env = {key: value for key, value in os.environ.items() if key != "COMPONENTIZE_PY"}
    env["PATH"] = "/usr/bin:/bin"
    result = build(wasmhost_bin, "app.py", tmp_path, env=env)
    assert result.returncode != 0
    assert "pip install componentize-py==0.25.1" in result.stderr, result.stderr


@pytest.mark.time_limit(2 * BUILD_TIMEOUT)
def test_native_only_dependency_is_named(wasmhost_bin, tmp_path):
    """orjson is native code with no pure-Python fallback: the build fails and
    says which package it is."""
    (tmp_path / "requirements.txt").write_text("orjson\n")
    (tmp_path / "app.py").write_text("import wasmhost\nimport orjson\napp = wasmhost.App()\n")
    result = build(wasmhost_bin, "app.py", tmp_path)
    assert result.returncode != 0
    assert "orjson" in result.stderr and "native code" in result.stderr, result.stderr
