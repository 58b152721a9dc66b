"""The platform's ``command`` export: Python run in the app's sandbox
(``wasmhost run APP -- ARGS...``) instead of serving it.

`run` takes ARGS as the ``python`` command line does::

    -m MODULE [ARG...]     runs a module as __main__ (``-m django migrate``)
    -c CODE [ARG...]       runs a piece of code
    SCRIPT [ARG...]        runs a file, relative to the app's directory
                           (``manage.py createsuperuser``)

``sys.argv`` is what ``python`` would make of them. The interpreter is the
one the app's build left (its modules, its settings: a Django project is
already set up), in an instance of its own with the app's databases,
buckets, config and environment. The app's directory and its installed
dependencies are visible at the paths the build saw them at, so modules
imported lazily (management commands, migrations) import. The exit status
is a `SystemExit`'s code, 1 for an uncaught exception (its traceback on
stderr), 0 otherwise.
"""

from __future__ import annotations

import os
import pkgutil  # noqa: F401 - runpy.run_path imports it lazily (`wasmhost run SCRIPT`)
import runpy
import sys
import traceback
from typing import Any

from . import _preimport

USAGE = "usage: wasmhost run [OPTIONS] APP -- (-m MODULE | -c CODE | SCRIPT) [ARG...]"


def command_class(app_dir: str | None) -> type:
    """The ``command`` export class for an app whose directory the build
    saw at `app_dir` (see `app_dir_of`)."""

    class Command:
        """``wasmhost:platform/command``: runs Python in the app's sandbox."""

        def run(self, args: list[str]) -> int:
            return run(args, app_dir)

    return Command


def app_dir_of(module: str) -> str | None:
    """The entry of ``sys.path`` (at build time) that the top-level package
    of `module` is imported from: the app's directory as the build sees it."""
    top = module.partition(".")[0]
    for entry in sys.path:
        if entry and (os.path.isfile(os.path.join(entry, top + ".py")) or os.path.isdir(os.path.join(entry, top))):
            return entry
    return None


def run(args: list[str], app_dir: str | None) -> int:
    """Runs `args` as ``python ARGS`` would, in `app_dir` (if the host shows
    it); the exit status (0..255)."""
    _preimport.after_restore()
    if app_dir is not None and not os.path.isdir(app_dir):
        app_dir = None
    try:
        if app_dir is not None:
            os.chdir(app_dir)
        return _exit_status(_run(args, app_dir))
    except SystemExit as exit:
        return _exit_status(exit.code)
    except BaseException:  # noqa: BLE001 - any failure is the command's, shown like python shows it
        traceback.print_exc()
        return 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001, S110 - nothing left to report it on
                pass


def _run(args: list[str], app_dir: str | None) -> Any:
    if not args:
        print(USAGE, file=sys.stderr)
        return 2
    first, rest = args[0], args[1:]
    if first == "-m":
        if not rest:
            print("Argument expected for the -m option", file=sys.stderr)
            return 2
        sys.argv = [rest[0], *rest[1:]]
        runpy.run_module(rest[0], run_name="__main__", alter_sys=True)
    elif first == "-c":
        if not rest:
            print("Argument expected for the -c option", file=sys.stderr)
            return 2
        sys.argv = ["-c", *rest[1:]]
        exec(compile(rest[0], "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})  # noqa: S102
    elif first.startswith("-"):
        print(f"unknown option {first}\n{USAGE}", file=sys.stderr)
        return 2
    else:
        script = first if os.path.isabs(first) or app_dir is None else os.path.join(app_dir, first)
        if not os.path.exists(script):
            print(f"can't open file {first!r}: not found in the app's directory", file=sys.stderr)
            return 2
        sys.argv = [first, *rest]
        sys.path.insert(0, os.path.dirname(script))
        runpy.run_path(script, run_name="__main__")
    return 0


def _exit_status(code: Any) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
