"""Whether the interpreter is serving (run time) or being snapshotted
(build time, while `wasmhost._entry.load` runs under componentize-py).

Host imports cannot be called at build time, so objects created then (a
module-level `wasmhost.json.Schema`, for one) defer such calls until
first use; created at run time, they make them at once. `host_module`
finds the host's binding modules, which exist only in a component.
"""

from __future__ import annotations

import importlib
from typing import Any

serving: bool = False
"""True once the component served its first request or manifest call."""


def mark_serving() -> None:
    """Record that the run time has started (called once per instance)."""
    global serving
    serving = True


def host_module(name: str) -> Any:
    """The binding module `name` (``wit_world.imports.json``, ...) when the
    app is a component built for world `app`, else None (the SDK imported
    natively, as by `tests/sdk`)."""
    try:
        return importlib.import_module(name)
    except ImportError:
        return None
