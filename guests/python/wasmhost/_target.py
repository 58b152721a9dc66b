"""Finding the app a build serves: ``"MODULE:ATTR"`` plus an interface.

Pure Python (no wasi types), used by `wasmhost._entry`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from types import ModuleType
from typing import Any

INTERFACES = ("auto", "sdk", "wsgi")
"""The interfaces `load` understands."""

DEFAULT_ATTR = "app"

_DOTTED = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


@dataclass(frozen=True)
class Spec:
    """A parsed ``MODULE[:ATTR]``."""

    module: str
    attr: str
    explicit_attr: bool


@dataclass(frozen=True)
class Target:
    """What serves requests.

    `kind` is ``"sdk"`` (`obj` is a `wasmhost.App`), ``"wsgi"`` (`obj` is a
    WSGI callable) or ``"plain"`` (`obj` is the module, which defines its own
    ``IncomingHandler`` and maybe ``Manifest`` classes).
    """

    kind: str
    obj: Any


def parse_target(target: str) -> Spec:
    """Parse ``"module.sub:attr"`` (``attr`` defaults to ``app``)."""
    module, colon, attr = target.partition(":")
    module = module.strip()
    attr = attr.strip()
    if not _DOTTED.match(module):
        raise ValueError(f"invalid app module {module!r} in {target!r} (expected MODULE or MODULE:ATTR)")
    if colon and not _DOTTED.match(attr):
        raise ValueError(f"invalid app attribute {attr!r} in {target!r} (expected MODULE:ATTR)")
    return Spec(module, attr or DEFAULT_ATTR, bool(attr))


def _getattr_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def resolve(module: ModuleType, spec: Spec, interface: str = "auto") -> Target:
    """What in `module` serves requests, for `interface`.

    * ``"sdk"``: ``module.ATTR`` must be a `wasmhost.App`.
    * ``"wsgi"``: ``module.ATTR`` must be a WSGI callable.
    * ``"auto"``: ``module.ATTR`` when it is a `wasmhost.App`; else the
      module itself when it defines an ``IncomingHandler`` class (a plain
      wasi:http app); else ``module.ATTR`` as WSGI when it looks like one
      (a Flask-style object with ``wsgi_app``).
    """
    from ._app import App  # noqa: PLC0415

    if interface not in INTERFACES:
        raise ValueError(f"unknown interface {interface!r}; expected one of {', '.join(INTERFACES)}")
    name = f"{module.__name__}:{spec.attr}"
    try:
        obj: Any = _getattr_path(module, spec.attr)
        found = True
    except AttributeError:
        obj = None
        found = False

    if interface == "sdk":
        if not found:
            raise LookupError(f"{name} not found: the module defines no {spec.attr!r}")
        if not isinstance(obj, App):
            raise TypeError(f"{name} is a {type(obj).__name__}, not a wasmhost.App")
        return Target("sdk", obj)
    if interface == "wsgi":
        if not found:
            raise LookupError(f"{name} not found: the module defines no {spec.attr!r}")
        if not callable(obj):
            raise TypeError(f"{name} is a {type(obj).__name__}, not a WSGI application (callable)")
        return Target("wsgi", obj)

    if found and isinstance(obj, App):
        return Target("sdk", obj)
    handler = getattr(module, "IncomingHandler", None)
    if isinstance(handler, type) and not (found and spec.explicit_attr):
        return Target("plain", module)
    if found and callable(obj) and hasattr(obj, "wsgi_app"):
        return Target("wsgi", obj)
    if isinstance(handler, type):
        return Target("plain", module)
    if not found:
        raise LookupError(
            f"{name} not found: define `{spec.attr} = wasmhost.App()` "
            "(or an IncomingHandler class for a plain wasi:http app)"
        )
    raise TypeError(
        f"{name} is a {type(obj).__name__}: expected a wasmhost.App (or use "
        "--interface wsgi for a WSGI application)"
    )
