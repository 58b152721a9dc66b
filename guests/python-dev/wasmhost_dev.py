"""The dev-mode loader behind `wasmhost dev app.py`.

componentize-py takes ~20 s to build a component, because it snapshots a
whole CPython. In dev mode wasmhost builds this loader once instead, and the
loader imports the user's app at run time, from the source directory the
host shows the guest as ``/app`` (read-only). An edit then needs no build
and no compile: the host starts new instances, which import the new code.

Modules cannot be imported at run time unless they were imported at build
time, except the user's own modules found under ``/app``. So the loader
imports (nearly) the whole standard library here, at build time.

The user's module (``$WASMHOST_DEV_MODULE``, default ``app``) must define
``IncomingHandler`` like any plain wasi:http app. A request carrying the
``x-wasmhost-dev-probe`` header only imports the app: ``200`` when that
worked, ``500`` with the traceback when it did not; the host sends one to
each new version before it serves traffic.
"""

import importlib
import os
import sys
import traceback

import wasmhost_http as http
from wit_world import exports

APP_DIR = "/app"
PROBE_HEADER = "x-wasmhost-dev-probe"

# Modules that do something on import, or cannot work in a wasm guest.
_SKIP = {
    "__main__", "antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo",
    "ensurepip", "venv", "pydoc", "pydoc_data", "test", "lib2to3", "msvcrt", "winreg",
    "winsound", "_winapi", "nt", "_tkinter", "curses", "readline", "_curses",
}


def _preimport_stdlib() -> None:
    """Imports every standard-library module that imports cleanly in the
    guest, so the app can use any of them at run time."""
    for name in sorted(sys.stdlib_module_names - _SKIP):
        try:
            importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - unavailable in wasm: skip it
            pass


_preimport_stdlib()

_handler = None


def _load():
    """Imports the app once per instance; returns its handler."""
    global _handler
    if _handler is None:
        if APP_DIR not in sys.path:
            sys.path.insert(0, APP_DIR)
        module = importlib.import_module(os.environ.get("WASMHOST_DEV_MODULE", "app"))
        _handler = module.IncomingHandler()
    return _handler


class IncomingHandler(exports.IncomingHandler):
    """Delegates every request to the user's app, imported on first use."""

    def handle(self, request, response_out):
        try:
            handler = _load()
        except BaseException:  # noqa: BLE001 - the app failed to import
            http.respond(response_out, 500, traceback.format_exc().encode(), {"content-type": "text/plain"})
            return
        if http.header(request, PROBE_HEADER) is not None:
            http.respond(response_out, 200, b"ok", {"content-type": "text/plain"})
            return
        handler.handle(request, response_out)
