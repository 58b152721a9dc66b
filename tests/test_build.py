"""`wasmhost build`: componentize-py with the platform WIT and the SDK that
ship inside the binary, cached by a digest of every input, with Python
errors shown at their host file and line; and the requirements a tenant's
app may bring, which must never run code on the build host.

The requirements tests use real hostile packages: a source tree whose
`setup.py` (or in-tree PEP 517 build backend) writes a marker file when pip
runs it, and package indexes served from 127.0.0.1 by this process (PEP 503
"simple" layout, wheels and sdists made here), so they need no network
except where they install Flask from PyPI."""

from __future__ import annotations

import base64
import functools
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, SHARED_CACHE_DIR, Server

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


# -- requirements a tenant may bring --------------------------------------------

ALLOWED = "may list only packages by name"
"""Part of every refusal: what requirements.txt may contain."""

SOURCE_BUILT = "import pathlib; pathlib.Path({marker!r}).write_text('build code ran on the host')\n"
"""Python that a hostile package runs when pip builds it: writes the marker."""


def setup_py_package(path: Path, marker: Path) -> Path:
    """A local package whose setup.py writes `marker` (before anything else,
    so that it shows even without setuptools)."""
    path.mkdir(parents=True)
    (path / "setup.py").write_text(
        SOURCE_BUILT.format(marker=str(marker)) + "from setuptools import setup\nsetup(name='evilpkg', version='1.0')\n"
    )
    return path


def backend_sources(name: str, marker: Path) -> dict[str, str]:
    """A source tree with an in-tree PEP 517 backend that writes `marker` on
    import: pip runs it with no build dependencies to fetch."""
    return {
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": SOURCE_BUILT.format(marker=str(marker)),
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 2.0\n",
    }


def module_name(name: str) -> str:
    return name.replace("-", "_")


class PackageIndex:
    """A PEP 503 package index on 127.0.0.1 (a thread of this process) that
    records every path asked for. `url` is its `/simple/`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.simple = root / "simple"
        self.simple.mkdir(parents=True)
        self.requests: list[str] = []
        index = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                index.requests.append(self.path)
                super().do_GET()

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _add(self, name: str, filename: str, data: bytes) -> str:
        project = self.simple / name
        project.mkdir(exist_ok=True)
        (project / filename).write_bytes(data)
        links = "".join(f'<a href="{f.name}">{f.name}</a>\n' for f in sorted(project.iterdir()) if f.name != "index.html")
        (project / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
        return hashlib.sha256(data).hexdigest()

    def wheel(self, name: str, version: str, value: str, requires: tuple[str, ...] = ()) -> str:
        """Adds a pure-Python wheel whose module `name` (with `_`) has
        `VALUE = value`; returns its sha256."""
        module, info = module_name(name), f"{module_name(name)}-{version}.dist-info"
        files = {
            f"{module}/__init__.py": f"VALUE = {value!r}\n",
            f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires),
            f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: wasmhost-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        }
        record = []
        data = io.BytesIO()
        with zipfile.ZipFile(data, "w") as archive:
            for path, text in files.items():
                archive.writestr(zipfile.ZipInfo(path, (2020, 1, 1, 0, 0, 0)), text)
                digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
                record.append(f"{path},sha256={digest},{len(text.encode())}\n")
            archive.writestr(zipfile.ZipInfo(f"{info}/RECORD", (2020, 1, 1, 0, 0, 0)), "".join(record) + f"{info}/RECORD,,\n")
        return self._add(name, f"{module}-{version}-py3-none-any.whl", data.getvalue())

    def sdist(self, name: str, marker: Path) -> str:
        """Adds version 2.0 of `name` as an sdist only, whose build writes
        `marker`; returns its sha256."""
        base = f"{module_name(name)}-2.0"
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w:gz") as archive:
            for path, text in backend_sources(name, marker).items():
                info = tarfile.TarInfo(f"{base}/{path}")
                info.size = len(text.encode())
                archive.addfile(info, io.BytesIO(text.encode()))
        return self._add(name, f"{base}.tar.gz", data.getvalue())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def operator_index(tmp_path):
    """The index the operator chose (`WASMHOST_INDEX_URL`)."""
    index = PackageIndex(tmp_path / "operator-index")
    yield index
    index.close()


@pytest.fixture
def hostile_index(tmp_path):
    """An index that pip settings in the environment point at."""
    index = PackageIndex(tmp_path / "hostile-index")
    yield index
    index.close()


def app_with_requirements(path: Path, requirements: str, app: str = "import wasmhost\napp = wasmhost.App()\n") -> Path:
    """An app in `path` whose requirements.txt is a comment naming `path`,
    then `requirements` (from line 2). The comment makes every file unique:
    an older wasmhost cached installs by the file's bytes, and would not
    have run pip again for a file it had installed before."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "requirements.txt").write_text(f"# the dependencies of {path}\n{requirements}")
    (path / "app.py").write_text(app)
    return path


def index_env(index: PackageIndex, **extra: str) -> dict[str, str]:
    """The environment of a build from `index`. `PIP_INDEX_URL` names it as
    well only so that an older wasmhost, which ignored `WASMHOST_INDEX_URL`
    and obeyed pip's variables, asks it (never PyPI) for these made-up names."""
    return {**os.environ, "WASMHOST_INDEX_URL": index.url, "PIP_INDEX_URL": index.url, **extra}


@pytest.mark.time_limit(2 * BUILD_TIMEOUT)
@pytest.mark.parametrize(
    "line",
    ["./evilpkg", "file:./evilpkg", "-e ./evilpkg", "evilpkg @ file://{app}/evilpkg"],
    ids=["path", "file-url", "editable", "direct-reference"],
)
def test_local_package_in_requirements_never_runs_its_setup_py(wasmhost_bin, tmp_path, line):
    """A tenant's package directory next to its app, named in requirements.txt:
    pip would run its setup.py on the build host. The build is refused at that
    line and the setup.py never runs."""
    app = tmp_path / "app"
    marker = tmp_path / "setup-py-ran"
    package = setup_py_package(app / "evilpkg", marker)
    subprocess.run([sys.executable, "setup.py", "--name"], cwd=package, capture_output=True, timeout=60)
    assert marker.exists(), "control: running this setup.py writes the marker"
    marker.unlink()

    line = line.format(app=app)
    app_with_requirements(app, f"{line}\n")
    result = build(wasmhost_bin, "app.py", app)
    assert not marker.exists(), "the tenant's setup.py ran on the build host"
    assert result.returncode != 0, result.stderr
    assert f"{app}/requirements.txt, line 2: `{line}`: " in result.stderr, result.stderr
    assert ALLOWED in result.stderr, result.stderr


@pytest.mark.parametrize(
    "line, reason",
    [
        ("-r other.txt", "other requirement or constraint files are not allowed"),
        ("--requirement=other.txt", "other requirement or constraint files are not allowed"),
        ("-c constraints.txt", "other requirement or constraint files are not allowed"),
        ("--editable=git+http://127.0.0.1:9/evilpkg.git#egg=evilpkg", "editable installs are not allowed"),
        ("-i http://127.0.0.1:9/simple", "choosing where packages come from is not allowed"),
        ("--index-url=http://127.0.0.1:9/simple", "choosing where packages come from is not allowed"),
        ("--extra-index-url http://127.0.0.1:9/simple", "choosing where packages come from is not allowed"),
        ("--no-index", "choosing where packages come from is not allowed"),
        ("-f ./wheels", "choosing where packages come from is not allowed"),
        ("--find-links http://127.0.0.1:9/wheels/", "choosing where packages come from is not allowed"),
        ("--trusted-host 127.0.0.1", "choosing where packages come from is not allowed"),
        ("--no-binary :all:", "pip options are not allowed"),
        ("--only-binary :none:", "pip options are not allowed"),
        ("--pre", "pip options are not allowed"),
        ("--prefer-binary", "pip options are not allowed"),
        ("six --global-option=--evil", "the only option after a requirement is --hash=ALG:HEX"),
        ("six --no-binary=six", "the only option after a requirement is --hash=ALG:HEX"),
        ("http://127.0.0.1:9/evilpkg-1.0.tar.gz", "URLs are not allowed"),
        ("https://127.0.0.1:9/evilpkg-1.0-py3-none-any.whl", "URLs are not allowed"),
        ("git+http://127.0.0.1:9/evilpkg.git", "VCS links are not allowed"),
        ("hg+http://127.0.0.1:9/evilpkg", "VCS links are not allowed"),
        ("svn+http://127.0.0.1:9/evilpkg", "VCS links are not allowed"),
        ("bzr+http://127.0.0.1:9/evilpkg", "VCS links are not allowed"),
        ("evilpkg @ http://127.0.0.1:9/evilpkg-1.0.tar.gz", "direct references (`name @ url`) are not allowed"),
        ("evilpkg-1.0-py3-none-any.whl", "archive files are not allowed"),
        ("evilpkg-1.0.tar.gz", "archive files are not allowed"),
        ("evilpkg.zip", "archive files are not allowed"),
        ("../evilpkg", "local paths are not allowed"),
        ("/tmp/evilpkg", "local paths are not allowed"),
        ("evilpkg/", "local paths are not allowed"),
        ("~/evilpkg", "local paths are not allowed"),
        ("file:///tmp/evilpkg", "local paths (file: URLs) are not allowed"),
        ("_evil", "a requirement must start with a valid package name"),
        ("six==${HOME}", "expected a version after `==`"),
        ("six ; os_name == 'posix' --index-url=http://127.0.0.1:9/", "the only option after a requirement"),
    ],
)
def test_refused_requirement_lines_are_named(wasmhost_bin, tmp_path, line, reason):
    """Every form other than a requirement by name is refused before pip
    runs, with the file, the line, its text, why, and what is allowed."""
    app_with_requirements(tmp_path, f"{line}\n")
    (tmp_path / "other.txt").write_text("six\n")
    (tmp_path / "constraints.txt").write_text("six<2\n")
    result = build(wasmhost_bin, "app.py", tmp_path)
    assert result.returncode != 0, result.stderr
    assert f"{tmp_path}/requirements.txt, line 2: `{line}`: " in result.stderr, result.stderr
    assert reason in result.stderr and ALLOWED in result.stderr, result.stderr
    assert "installing dependencies" not in result.stderr, "refused before pip runs"


PURE_APP = (
    "import wasmhost\nimport wasmhost_test_pure\n"
    "assert wasmhost_test_pure.VALUE == 'operator', wasmhost_test_pure.VALUE\n"
    "app = wasmhost.App()\n"
)
"""An app that builds only with the operator index's `wasmhost-test-pure`."""


@pytest.mark.time_limit(2 * BUILD_TIMEOUT)
def test_pip_settings_in_the_environment_are_ignored(wasmhost_bin, tmp_path, operator_index, hostile_index):
    """pip's and Python's variables in the environment of `wasmhost build`
    (an index URL, a config file with `no-binary = :all:` and another index,
    extra requirements, a PYTHONPATH with a sitecustomize) change nothing:
    the package comes from the operator's index, as a wheel, and no
    hostile code runs."""
    marker = tmp_path / "hostile-code-ran"
    operator_index.wheel("wasmhost-test-pure", "1.0", "operator")
    hostile_index.wheel("wasmhost-test-pure", "1.0", "hijacked")
    hostile_index.sdist("wasmhost-test-pure", marker)
    evil = tmp_path / "evil-source"
    evil.mkdir()
    for name, text in backend_sources("evil-source", marker).items():
        (evil / name).write_text(text)
    (tmp_path / "extra-requirements.txt").write_text(f"{evil}\n")
    (tmp_path / "pip.conf").write_text(f"[global]\nindex-url = {hostile_index.url}\nno-binary = :all:\npre = true\n")
    site = tmp_path / "pythonpath"
    site.mkdir()
    # Only in pip: componentize-py's launcher is a host Python script too, and
    # honours PYTHONPATH like any (the operator's environment, not pip's).
    (site / "sitecustomize.py").write_text(
        "import sys\nif 'pip' in sys.orig_argv:\n    " + SOURCE_BUILT.format(marker=str(marker))
    )
    env = {
        **os.environ,
        "WASMHOST_INDEX_URL": operator_index.url,
        "PIP_INDEX_URL": hostile_index.url,
        "PIP_CONFIG_FILE": str(tmp_path / "pip.conf"),
        "PIP_NO_BINARY": ":all:",
        "PIP_REQUIREMENT": str(tmp_path / "extra-requirements.txt"),
        "PYTHONPATH": str(site),
    }
    app = app_with_requirements(tmp_path / "app", "wasmhost-test-pure\n", PURE_APP)
    result = build(wasmhost_bin, "app.py", app, env=env)
    assert not marker.exists(), f"hostile code ran on the build host: {marker.read_text()}"
    assert hostile_index.requests == [], f"pip asked the index from the environment for {hostile_index.requests}"
    assert result.returncode == 0, result.stderr
    assert any("wasmhost-test-pure" in path for path in operator_index.requests), operator_index.requests


@pytest.mark.time_limit(2 * BUILD_TIMEOUT)
def test_hashes_are_checked(wasmhost_bin, tmp_path, operator_index):
    """`--hash` pins the wheel: the right digest builds, a wrong one is
    refused by pip's hash-checking mode."""
    digest = operator_index.wheel("wasmhost-test-pure", "1.0", "operator")
    wrong = app_with_requirements(
        tmp_path / "wrong", f"wasmhost-test-pure==1.0 --hash=sha256:{'0' * 64}\n", PURE_APP
    )
    result = build(wasmhost_bin, "app.py", wrong, env=index_env(operator_index))
    assert result.returncode != 0
    assert "HASHES" in result.stderr and "wasmhost-test-pure" in result.stderr, result.stderr

    right = app_with_requirements(
        tmp_path / "right", f"wasmhost-test-pure==1.0 \\\n    --hash=sha256:{digest}\n", PURE_APP
    )
    result = build(wasmhost_bin, "app.py", right, env=index_env(operator_index))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("requirement", ["wasmhost-test-sdist-only", "wasmhost-test-needs-sdist"], ids=["direct", "dependency"])
def test_a_package_without_a_wheel_is_never_built(wasmhost_bin, tmp_path, operator_index, requirement):
    """A requirement, or a dependency of one, that the index has only as an
    sdist fails the install: pip never runs its build."""
    marker = tmp_path / "sdist-was-built"
    operator_index.sdist("wasmhost-test-sdist-only", marker)
    operator_index.wheel("wasmhost-test-needs-sdist", "1.0", "x", requires=("wasmhost-test-sdist-only",))
    app = app_with_requirements(tmp_path / "app", f"{requirement}\n")
    result = build(wasmhost_bin, "app.py", app, env=index_env(operator_index))
    assert result.returncode != 0
    assert "wasmhost-test-sdist-only" in result.stderr and "nothing is built from source" in result.stderr, result.stderr
    assert not marker.exists(), "pip built an sdist on the host"
    assert any("wasmhost-test-sdist-only" in path for path in operator_index.requests), "control: pip looked for it"


GOOD_REQUIREMENTS = """\
# the app's dependencies
Flask[async] >=3.1, <3.2 \\
    ; python_version >= "3.9"   # Flask 3.1 needs Python 3.9
six ; sys_platform == "win32"   # never installed here
"""

GOOD_APP = """\
import os

import asgiref
import flask

app = flask.Flask(__name__)


@app.get("/")
def index():
    return {"installed": sorted(name for name in os.listdir("/1") if name.endswith(".dist-info"))}
"""
"""A Flask app that imports the extra's package and lists what was installed
(the guest sees its packages as /1)."""


@pytest.mark.time_limit(2 * BUILD_TIMEOUT)
def test_requirements_with_specifiers_extras_markers_and_continuations_install(wasmhost_bin, tmp_path):
    """A file using everything allowed installs from PyPI, and the app builds
    and serves: Flask 3.1 and its extra's package are there, the requirement
    whose marker is false is not."""
    (tmp_path / "requirements.txt").write_text(GOOD_REQUIREMENTS)
    (tmp_path / "shop.py").write_text(GOOD_APP)
    with Server(wasmhost_bin, "shop:app", ["--interface", "wsgi"], cwd=tmp_path, start_timeout=2 * BUILD_TIMEOUT) as server:
        status, _, body = server.request("GET", "/")
    assert status == 200, body
    installed = [name.split("-")[:2] for name in json.loads(body)["installed"]]
    assert [version[:4] for name, version in installed if name == "flask"] == ["3.1."], installed
    assert "asgiref" in [name for name, _ in installed], "the async extra's package is installed"
    assert "six" not in [name for name, _ in installed], "a requirement whose marker is false is not"
