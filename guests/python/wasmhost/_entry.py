"""The component's entry point: ``wasmhost build`` generates
``wasmhost_main.py`` as::

    from wasmhost._entry import load
    IncomingHandler, Manifest, Command = load("MODULE:ATTR", interface="INTERFACE")

componentize-py imports it at build time and snapshots the interpreter, so
`load` runs at build time: it imports the app, resolves what serves it and
pre-imports what would otherwise be imported lazily at run time (see
`wasmhost._preimport`). The three classes it returns are the component's
exports: ``wasi:http/incoming-handler``, the platform's ``manifest`` and its
``command`` (``wasmhost run``, see `wasmhost._command`).

With ``lazy=True`` (dev mode) the app is imported at run time instead, on
first use, from ``/app`` (and ``/deps``) which the host shows the guest;
(nearly) the whole standard library is pre-imported at build time so the
app can use any of it. A request with the ``x-wasmhost-dev-probe`` header
then only imports the app: ``200 ok``, or ``500`` with the traceback.

Nothing escapes `IncomingHandler.handle`: an exception would trap the
instance, so every error becomes a 500 (traceback on stderr).
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from typing import Any

from . import _command, _hashlib, _http, _preimport, _sqlite3_on_host, _wsgi
from ._app import App, log_exception
from ._request import Request
from ._response import Response
from ._target import INTERFACES, Target, parse_target, resolve


def _wit_route() -> Any:
    try:
        return importlib.import_module("wit_world.exports.manifest").Route
    except ImportError:  # a plain `http-app` world: no manifest export
        return None


_WitRoute: Any = _wit_route()

PROBE_HEADER = "x-wasmhost-dev-probe"
"""Header of the dev-mode probe request."""

DEV_APP_DIR = "/app"
"""Where the host shows the app's source directory in dev mode."""
DEV_DEPS_DIR = "/deps"
"""Where the host shows the app's installed dependencies in dev mode."""
DEV_TARGET_VAR = "WASMHOST_DEV_TARGET"
"""`load_dev`: environment variable naming the app (``module:attr``)."""
DEV_INTERFACE_VAR = "WASMHOST_DEV_INTERFACE"
"""`load_dev`: environment variable naming the interface."""


class _Loader:
    """Imports the app module once and resolves its target.

    `target`/`interface` None means: read them from the environment at run
    time (`load_dev`).
    """

    def __init__(self, target: str | None, interface: str | None, lazy: bool) -> None:
        if target is not None:
            _check_interface(interface)
            parse_target(target)  # fail the build on a malformed target
        self.target_text = target
        self.interface = interface
        self.lazy = lazy
        self.target: Target | None = None
        self.restored = False

    def load(self) -> Target:
        if self.target is None:
            text = self.target_text
            interface = self.interface
            if text is None:
                text = os.environ.get(DEV_TARGET_VAR) or "app"
                interface = os.environ.get(DEV_INTERFACE_VAR) or "auto"
            _check_interface(interface)
            spec = parse_target(text)
            if self.lazy:
                for directory in (DEV_DEPS_DIR, DEV_APP_DIR):
                    if directory in sys.path:
                        sys.path.remove(directory)
                    sys.path.insert(0, directory)
            _sqlite3_on_host.install(DEV_APP_DIR if self.lazy else self.app_dir())
            _register_sqlalchemy()
            module = importlib.import_module(spec.module)
            self.target = resolve(module, spec, interface or "auto")
            if "django" in sys.modules:
                from .django import adopt_sqlite3_databases  # noqa: PLC0415

                adopt_sqlite3_databases()
        return self.target

    def app_dir(self) -> str | None:
        """The app's directory as the build sees it."""
        return _command.app_dir_of(parse_target(self.target_text).module) if self.target_text else None

    def first_use(self) -> None:
        if not self.restored:
            self.restored = True
            _preimport.after_restore()


def _check_interface(interface: str | None) -> None:
    if interface not in INTERFACES:
        raise ValueError(f"unknown interface {interface!r}; expected one of {', '.join(INTERFACES)}")


def load(target: str, interface: str = "auto", lazy: bool = False) -> tuple[type, type, type]:
    """Build-time entry: the ``(IncomingHandler, Manifest, Command)`` export classes
    serving the app `target` (``"module"`` or ``"module:attr"``, attr
    defaulting to ``app``) through `interface` (``"auto"``, ``"sdk"`` or
    ``"wsgi"``).

    Without `lazy`, the app is imported now (at build time), then
    `wasmhost._preimport` imports what the app would import lazily. A plain
    wasi:http module (``interface="auto"`` finding an ``IncomingHandler``
    class) is served by its own classes, with an empty manifest unless it
    defines ``Manifest``.

    With `lazy` (dev mode), the app is imported at run time, on first use,
    from ``/app`` (and ``/deps``), and (nearly) the whole standard library
    is imported now.
    """
    _hashlib.install()
    loader = _Loader(target, interface, lazy)
    if lazy:
        return _lazy_classes(loader)
    resolved = loader.load()
    _preimport.preimport_common()
    _preimport.preimport_lazy_submodules()
    _preimport.warm(resolved.obj if resolved.kind == "wsgi" else None)
    _preimport.install_import_hint()
    if resolved.kind == "plain":
        handler_cls = resolved.obj.IncomingHandler
        manifest_cls = getattr(resolved.obj, "Manifest", None) or _EmptyManifest
        return handler_cls, manifest_cls, _command.command_class(loader.app_dir())
    return _make_handler(loader), _make_manifest(loader), _command.command_class(loader.app_dir())


def _register_sqlalchemy() -> None:
    """Registers the ``wasmhost://`` SQLAlchemy dialect if SQLAlchemy is
    installed (before the app creates its engine)."""
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("sqlalchemy") is not None:
        from . import sqlalchemy  # noqa: PLC0415

        sqlalchemy.register()


def load_dev() -> tuple[type, type, type]:
    """Build-time entry of the generic dev loader (built once, serving any
    app): like ``load(..., lazy=True)``, with the app and interface read at
    run time from ``$WASMHOST_DEV_TARGET`` (default ``app``) and
    ``$WASMHOST_DEV_INTERFACE`` (default ``auto``)."""
    _hashlib.install()
    return _lazy_classes(_Loader(None, None, lazy=True))


def _lazy_classes(loader: _Loader) -> tuple[type, type, type]:
    _preimport.preimport_stdlib()
    _preimport.warm()
    _preimport.install_import_hint()
    return _make_handler(loader), _make_manifest(loader), _command.command_class(DEV_APP_DIR)


class _EmptyManifest:
    """The manifest of an app that declares no routes."""

    def routes(self) -> list[Any]:
        return []


def _make_handler(loader: _Loader) -> type:
    class IncomingHandler:
        """``wasi:http/incoming-handler``: serves requests with the app."""

        def handle(self, request: Any, response_out: Any) -> None:
            _handle(loader, request, response_out)

    return IncomingHandler


def _make_manifest(loader: _Loader) -> type:
    class Manifest:
        """The platform's ``manifest`` export: the app's routes."""

        def routes(self) -> list[Any]:
            return _routes(loader)

    return Manifest


def _routes(loader: _Loader) -> list[Any]:
    try:
        loader.first_use()
        target = loader.load()
        if target.kind == "plain":
            manifest_cls = getattr(target.obj, "Manifest", None)
            return list(manifest_cls().routes()) if manifest_cls is not None else []
        if target.kind != "sdk" or _WitRoute is None:
            return []
        return [_WitRoute(r.method, r.path, r.body_schema) for r in target.obj.manifest()]
    except BaseException as error:  # noqa: BLE001 - never trap; dev mode: the app failed to import
        log_exception(None, error, "while listing the app's routes")
        return []


def _handle(loader: _Loader, request: Any, response_out: Any) -> None:
    sender = _http.Sender(response_out)
    req: Request | None = None
    try:
        loader.first_use()
        head = _http.RequestHead(request)
        if loader.lazy:
            probe = head.header(PROBE_HEADER) is not None
            try:
                target = loader.load()
            except BaseException as error:  # noqa: BLE001 - show the developer why
                text = import_error_text(error)
                _http.log(text)
                sender.send(500, [("content-type", "text/plain; charset=utf-8")], text.encode("utf-8"))
                return
            if probe:
                sender.send(200, [("content-type", "text/plain; charset=utf-8")], b"ok")
                return
        else:
            target = loader.load()

        if target.kind == "plain":
            plain = target.obj.IncomingHandler
        else:
            plain = None
    except BaseException as error:  # noqa: BLE001 - an escaping exception traps the instance
        _fail(sender, req, error)
        return
    if plain is not None:
        # A plain wasi:http app (dev mode) behaves exactly as when it is
        # built directly: its own exceptions trap.
        plain().handle(request, response_out)
        return
    try:
        req = Request(
            head.method,
            head.target,
            head.headers,
            lambda: _http.read_body(request),
            scheme=head.scheme,
            authority=head.authority,
        )
        if target.kind == "sdk":
            app: App = target.obj
            response = app.dispatch(req)
        else:
            environ = _wsgi.build_environ(
                head.method,
                head.target,
                head.headers(),
                lambda: req.body if req is not None else b"",
                scheme=head.scheme,
                authority=head.authority,
            )
            response = _wsgi.run_wsgi(target.obj, environ)
        _send(sender, response, head.method == "HEAD")
    except BaseException as error:  # noqa: BLE001 - an escaping exception traps the instance
        _fail(sender, req, error)


def import_error_text(error: BaseException) -> str:
    """The traceback of a failed app import, without the import machinery's
    frames."""
    try:
        summary = traceback.TracebackException.from_exception(error)
        summary.stack = traceback.StackSummary.from_list(
            [
                frame
                for frame in summary.stack
                if not frame.filename.startswith("<frozen ")
                and not frame.filename.endswith(("importlib/__init__.py", "wasmhost/_entry.py"))
            ]
        )
        return "".join(summary.format())
    except Exception:  # noqa: BLE001
        return "".join(traceback.format_exception(type(error), error, error.__traceback__))


def _fail(sender: _http.Sender, req: Request | None, error: BaseException) -> None:
    """Log `error`; answer 500 unless a response was started."""
    log_exception(req, error)
    try:
        sender.send_error(500, "Internal Server Error\n")
    except BaseException as second:  # noqa: BLE001
        log_exception(req, second, "while sending the error response")


def _send(sender: _http.Sender, response: Response, head_only: bool) -> None:
    sender.send(
        response.status,
        response.headers.items(),
        response.body,
        response.chunks,  # type: ignore[arg-type]
        head_only,
    )
