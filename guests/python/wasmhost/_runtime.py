"""Whether the interpreter is serving (run time) or being snapshotted
(build time, while `wasmhost._entry.load` runs under componentize-py).

Host imports cannot be called at build time, so objects created then (a
module-level `wasmhost.json.Schema`, for one) defer such calls until
first use; created at run time, they make them at once.
"""

from __future__ import annotations

serving: bool = False
"""True once the component served its first request or manifest call."""


def mark_serving() -> None:
    """Record that the run time has started (called once per instance)."""
    global serving
    serving = True
