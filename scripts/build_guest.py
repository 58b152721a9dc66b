#!/usr/bin/env python3
"""Build Python guests into wasi:http components with componentize-py, cached.

    python3 scripts/build_guest.py APP_DIR [-o OUT.wasm] [--module app] [-p DIR]...
    python3 scripts/build_guest.py --all tests/guests [-j 2]

APP_DIR holds the app module (default `app`, i.e. APP_DIR/app.py) exporting
`wasi:http/incoming-handler` for world `http-app` in wit/. The helper
directory guests/python-http (module `wasmhost_http`) is always on the
guest's Python path; `-p` adds more directories.

The component is cached at target/guests/<name>-<digest16>.wasm, where the
digest covers every file under APP_DIR, wit/ and the Python path directories
(by relative path and contents; __pycache__ is skipped), the componentize-py
version and the module name. A cache hit builds nothing; stale entries are
never evicted. The component's path (or OUT, when given) is the last line on
stdout. With --all, every subdirectory of the given directory (except those
starting with `_` or `.`) is built, up to --jobs at a time, and one
`name path` line is printed per guest.

componentize-py is taken from $COMPONENTIZE_PY, else .venv/bin/componentize-py,
else PATH. Exit status: 0 on success, 1 when a build fails (componentize-py's
output is shown on stderr), 2 on bad usage or when componentize-py is missing.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WIT_DIR = ROOT / "wit"
WORLD = "http-app"
HELPER_DIR = ROOT / "guests" / "python-http"
CACHE_DIR = ROOT / "target" / "guests"
INSTALL_HINT = (
    "python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1"
)


class BuildError(Exception):
    """A guest could not be built; the message says why."""


def find_componentize_py() -> str:
    """Locate componentize-py, or exit 2 with install instructions."""
    candidates = [
        os.environ.get("COMPONENTIZE_PY"),
        str(ROOT / ".venv" / "bin" / "componentize-py"),
        shutil.which("componentize-py"),
    ]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    print(
        "build_guest: componentize-py not found ($COMPONENTIZE_PY, "
        f".venv/bin/componentize-py, PATH). Install it with:\n  {INSTALL_HINT}",
        file=sys.stderr,
    )
    sys.exit(2)


def tool_version(tool: str) -> str:
    """componentize-py's version string, e.g. `componentize-py 0.25.1`."""
    result = subprocess.run(
        [tool, "--version"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"`{tool} --version` failed:\n{result.stderr}")
    return result.stdout.strip()


def tree_files(directory: Path) -> list[Path]:
    """Files under `directory`, sorted by relative path, skipping bytecode."""
    return sorted(
        (
            path
            for path in directory.rglob("*")
            if path.is_file()
            and "__pycache__" not in path.relative_to(directory).parts
            and path.suffix != ".pyc"
        ),
        key=lambda path: path.relative_to(directory).as_posix(),
    )


def digest(app_dir: Path, python_path: list[Path], version: str, module: str) -> str:
    """Hex sha256 identifying a build's inputs."""
    hasher = hashlib.sha256()

    def feed(data: bytes) -> None:
        hasher.update(len(data).to_bytes(8, "little"))
        hasher.update(data)

    feed(version.encode())
    feed(module.encode())
    feed(WORLD.encode())
    for label, directory in [("app", app_dir), ("wit", WIT_DIR)] + [
        (f"path{index}", directory) for index, directory in enumerate(python_path)
    ]:
        feed(label.encode())
        for path in tree_files(directory):
            feed(path.relative_to(directory).as_posix().encode())
            feed(path.read_bytes())
    return hasher.hexdigest()


def build(
    tool: str,
    version: str,
    app_dir: Path,
    module: str,
    extra_paths: list[Path],
) -> Path:
    """Build (or reuse) the cached component for `app_dir`; return its path."""
    app_dir = app_dir.resolve()
    if not (app_dir / f"{module}.py").is_file() and not (
        app_dir / module / "__init__.py"
    ).is_file():
        raise BuildError(f"{app_dir}: no module `{module}` ({module}.py) to build")
    python_path = [HELPER_DIR] + [path.resolve() for path in extra_paths]
    key = digest(app_dir, python_path, version, module)
    output = CACHE_DIR / f"{app_dir.name}-{key[:16]}.wasm"
    if output.is_file():
        return output

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=CACHE_DIR, prefix=f".{output.stem}-", suffix=".tmp"
    )
    os.close(fd)
    tmp = Path(tmp_name)
    command = [tool, "-q", "-d", str(WIT_DIR), "-w", WORLD, "componentize", module]
    command += ["-p", str(app_dir)]
    for directory in python_path:
        command += ["-p", str(directory)]
    command += ["-o", str(tmp)]
    try:
        with tempfile.TemporaryDirectory(prefix="build-guest-") as scratch:
            # componentize-py appends $VIRTUAL_ENV's site-packages (or else the
            # host interpreter's) to the guest path; an empty one keeps the
            # build hermetic, so the digest covers everything that goes in.
            (Path(scratch) / "lib" / "python" / "site-packages").mkdir(parents=True)
            env = dict(os.environ, VIRTUAL_ENV=scratch)
            result = subprocess.run(
                command, cwd=scratch, env=env, capture_output=True, text=True
            )
        if result.returncode != 0:
            raise BuildError(
                f"componentize-py failed for {app_dir} "
                f"(exit {result.returncode}):\n{result.stdout}{result.stderr}"
            )
        tmp.chmod(0o644)
        tmp.replace(output)
    finally:
        tmp.unlink(missing_ok=True)
    return output


def copy_atomically(source: Path, destination: Path) -> None:
    """Copy `source` to `destination` via a temporary file and a rename."""
    destination = destination.resolve()
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}-", suffix=".tmp"
    )
    os.close(fd)
    try:
        shutil.copyfile(source, tmp_name)
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, destination)
    finally:
        Path(tmp_name).unlink(missing_ok=True)


def guest_dirs(parent: Path) -> list[Path]:
    """Buildable guest directories directly under `parent`, sorted by name."""
    return sorted(
        path
        for path in parent.iterdir()
        if path.is_dir() and not path.name.startswith(("_", "."))
    )


def parse_args() -> argparse.Namespace:
    """Parse and sanity-check the command line."""
    parser = argparse.ArgumentParser(
        description="Build Python wasi:http guests with componentize-py (cached)."
    )
    parser.add_argument("app_dir", nargs="?", type=Path, help="guest app directory")
    parser.add_argument(
        "-o", "--output", type=Path, help="also copy the component here"
    )
    parser.add_argument(
        "--module", default="app", help="app module name (default: app)"
    )
    parser.add_argument(
        "-p",
        "--python-path",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="extra directory on the guest's Python path (repeatable)",
    )
    parser.add_argument(
        "--all", type=Path, metavar="DIR", help="build every guest directory in DIR"
    )
    parser.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=2,
        help="parallel builds with --all (default: 2)",
    )
    args = parser.parse_args()
    if (args.app_dir is None) == (args.all is None):
        parser.error("give exactly one of APP_DIR or --all DIR")
    if args.all is not None and args.output is not None:
        parser.error("-o cannot be combined with --all")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    for directory in [args.app_dir or args.all, *args.python_path]:
        if not directory.is_dir():
            parser.error(f"not a directory: {directory}")
    return args


def main() -> int:
    """Entry point; returns the exit status."""
    args = parse_args()
    tool = find_componentize_py()
    try:
        version = tool_version(tool)
        if args.app_dir is not None:
            built = build(tool, version, args.app_dir, args.module, args.python_path)
            if args.output is not None:
                copy_atomically(built, args.output)
                built = args.output
            print(built)
            return 0
    except BuildError as error:
        print(f"build_guest: {error}", file=sys.stderr)
        return 1

    apps = guest_dirs(args.all)
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = [
            pool.submit(build, tool, version, app, args.module, args.python_path)
            for app in apps
        ]
    status = 0
    for app, future in zip(apps, futures):
        try:
            print(f"{app.name} {future.result()}")
        except BuildError as error:
            print(f"build_guest: {error}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
