"""The wheel (`make wheel`, pyproject.toml) as a new user installs it: one
`pip install` into a fresh venv outside the repository, then `wasmhost serve
app.py` from an unrelated directory, with no componentize-py on PATH, no
$COMPONENTIZE_PY and no ./.venv. wasmhost must find the componentize-py the
wheel pulled in beside its own executable, and build the app with it.

The wheel is target/wheels/wasmhost_server-VERSION-*.whl (`$WASMHOST_WHEEL`
overrides it) and must hold the binary under test (`$WASMHOST_BIN`).
Installing it downloads componentize-py from PyPI (or pip's cache).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, Server

PIP_TIMEOUT = 600
"""Seconds a venv and a `pip install` of the wheel (and componentize-py) may take."""

SERVE_TIMEOUT = 600.0
"""Seconds `wasmhost serve` may take to listen: a build from scratch (~20 s)
and a cold compile (~8 s), on a machine that may be busy."""

CLEAN_PATH = os.defpath
"""PATH for wasmhost: the system directories, none of them a venv."""

APP = '''\
import itsdangerous
import wasmhost

app = wasmhost.App()


@app.get("/hello/{name}")
def hello(request, name):
    signer = itsdangerous.URLSafeSerializer("secret")
    return {"message": f"Hello, {name}!", "signed": signer.loads(signer.dumps(name)),
            "package": itsdangerous.__file__}
'''
"""An SDK app with a requirement, which the venv's pip installs for the guest."""


def workspace_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (ROOT / "Cargo.toml").read_text(), re.M)
    assert match, "no version in Cargo.toml's [workspace.package]"
    return match.group(1)


def componentize_py_version() -> str:
    source = (ROOT / "crates" / "wasmhost-build" / "src" / "lib.rs").read_text()
    match = re.search(r'COMPONENTIZE_PY_VERSION: &str = "([^"]+)"', source)
    assert match, "no COMPONENTIZE_PY_VERSION in wasmhost-build"
    return match.group(1)


@pytest.fixture(scope="module")
def wheel() -> Path:
    """The wheel under test."""
    if os.environ.get("WASMHOST_WHEEL"):
        return Path(os.environ["WASMHOST_WHEEL"])
    found = sorted((ROOT / "target" / "wheels").glob(f"wasmhost_server-{workspace_version()}-*.whl"))
    if len(found) != 1:
        pytest.fail(f"expected one wheel for version {workspace_version()} in target/wheels, found {found}: "
                    "run `make wheel` (or set WASMHOST_WHEEL)")
    return found[0]


def clean_env(**extra: str) -> dict[str, str]:
    """The test's environment without any trace of the repository's venv or
    a componentize-py: what a new user's shell has."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("COMPONENTIZE_PY", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = CLEAN_PATH
    env.update(extra)
    return env


def make_venv(where: Path, *args: str) -> Path:
    """A venv made by the base Python (not the repository's venv)."""
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", *args, str(where)], check=True, timeout=PIP_TIMEOUT, env=clean_env())
    return where


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory) -> Path:
    """A fresh venv outside the repository with the wheel installed: its bin/."""
    venv = make_venv(tmp_path_factory.mktemp("wheel-venv") / "venv")
    assert ROOT not in venv.parents, "the venv must live outside the repository"
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=PIP_TIMEOUT, env=clean_env(),
    )
    assert result.returncode == 0, f"pip install {wheel.name} failed:\n{result.stderr}"
    return venv / "bin"


def test_wheel_holds_the_binary_under_test_and_pins_componentize_py(wheel: Path, wasmhost_bin: Path):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        binary = next((name for name in names if name.endswith(".data/scripts/wasmhost")), None)
        assert binary, f"no wasmhost executable in {wheel.name}: {names}"
        assert archive.read(binary) == wasmhost_bin.read_bytes(), (
            f"{wheel.name} holds another wasmhost than {wasmhost_bin}: run `make wheel`")
        metadata = archive.read(next(name for name in names if name.endswith(".dist-info/METADATA"))).decode()
    requires = re.findall(r"^Requires-Dist: (.+)$", metadata, re.M)
    assert requires == [f"componentize-py=={componentize_py_version()}"], requires
    makefile_pin = re.search(r"^CPY_VER\s*:= (\S+)", (ROOT / "Makefile").read_text(), re.M)
    assert makefile_pin and makefile_pin.group(1) == componentize_py_version(), "Makefile's CPY_VER differs"
    # pyproject.toml's platform tag (maturin checks the binary against it).
    assert "-manylinux_2_34_" in wheel.name or not sys.platform.startswith("linux"), wheel.name


@pytest.mark.time_limit(SERVE_TIMEOUT + 60)
def test_wheel_serves_an_app_with_no_other_setup(installed: Path, tmp_path_factory):
    assert shutil.which("componentize-py", path=CLEAN_PATH) is None, f"componentize-py on {CLEAN_PATH}"
    app_dir = tmp_path_factory.mktemp("somewhere-else")
    (app_dir / "app.py").write_text(APP)
    (app_dir / "requirements.txt").write_text("itsdangerous==2.*\n")
    cache = tmp_path_factory.mktemp("fresh-cache")
    server = Server(installed / "wasmhost", "app.py", cwd=app_dir, cache_dir=cache, env=clean_env(),
                    start_timeout=SERVE_TIMEOUT)
    with server:
        status, _, body = server.request("GET", "/hello/wheel")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["message"] == "Hello, wheel!" and answer["signed"] == "wheel", answer
    # The requirement was installed for the guest by the venv's pip...
    assert answer["package"].startswith("/1/itsdangerous/"), answer
    # ...and the component was built now, by the wheel's componentize-py.
    assert "building with componentize-py" in server.log(), server.log()
    assert any((cache / "builds").glob("app-*.wasm")), "no build in the fresh cache"


def test_venv_without_pip_gets_a_clear_error(installed: Path, wheel: Path, tmp_path_factory):
    """A venv made without pip (as `uv venv` makes them) has componentize-py
    but no pip to install requirements with: wasmhost says so and how to fix
    it, before building anything."""
    venv = make_venv(tmp_path_factory.mktemp("nopip-venv") / "venv", "--without-pip")
    # The first venv's pip installs into this one, as `uv pip install` would.
    result = subprocess.run(
        [str(installed / "python"), "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
         "--quiet", "--disable-pip-version-check", str(wheel)],
        capture_output=True, text=True, timeout=PIP_TIMEOUT, env=clean_env(),
    )
    assert result.returncode == 0, result.stderr
    assert not list(venv.glob("lib/python*/site-packages/pip")), "this venv should have no pip"
    app_dir = tmp_path_factory.mktemp("nopip-app")
    (app_dir / "app.py").write_text(APP)
    (app_dir / "requirements.txt").write_text("itsdangerous==2.*\n")
    build = subprocess.run(
        [str(venv / "bin" / "wasmhost"), "build", "app.py", "--cache-dir", str(tmp_path_factory.mktemp("cache"))],
        cwd=app_dir, capture_output=True, text=True, timeout=120, env=clean_env(),
    )
    assert build.returncode != 0
    python = venv / "bin" / "python3"
    assert f"{python} has no pip" in build.stderr, build.stderr
    assert f"{python} -m ensurepip" in build.stderr, build.stderr
