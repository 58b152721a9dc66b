"""Test guest `state`: writes and reads every kind of per-instance state, to
show what one request can leave behind for the next.

Routes (any method; answers are JSON unless said otherwise):
  /state                 -> snapshot of this instance's state (see `snapshot`)
  /set?value=V           -> stores V in a module global and in os.environ
  /buffer?byte=B         -> overwrites, in place, the 1 MiB module-level
                            `BUFFER` (allocated at import, so it lives in the
                            component's initial memory image) with byte B
  /hoard?mb=N&byte=B     -> allocates N MiB (default 16) filled with byte B
                            and keeps it in the module-level `HOARD`
  /write?path=P          -> tries to create and write file P
  /read?path=P           -> tries to read file P
  /listdir?path=P        -> tries to list directory P
  /fault?kind=K          -> fails: raise (uncaught exception, a trap),
                            loop (spins forever), oom (allocates until
                            memory runs out)
  other                  -> 404 (text)

File routes answer {"ok": true, ...} or {"ok": false, "error": "<errno
name>"}: the guest has no writable directory, and a failed write must not
be able to leave anything behind either.

CPython zero-fills every buffer it hands out (`bytearray(n)`), so a Python
guest cannot read another request's leftover bytes from fresh allocations
without ctypes; memory isolation is therefore shown with memory that exists
before the first request (`BUFFER`) and with big allocations kept in module
state (`HOARD`).
"""

import errno
import json
import os
from urllib.parse import parse_qs, urlsplit

from wit_world import exports
from wit_world.imports.types import IncomingRequest, ResponseOutparam

import wasmhost_http as http

MIB = 1 << 20
JSON = {"content-type": "application/json"}

count = 0
"""Requests handled by this instance."""

VALUE = None
"""Set by /set: a plain module global."""

BUFFER = bytearray(MIB)
"""1 MiB of zeros created at import time, overwritten in place by /buffer."""

HOARD: list[bytearray] = []
"""Big allocations made by /hoard, kept alive by this list."""


def param(query: str, name: str, default: str = "") -> str:
    """Query parameter `name`, or `default` when absent."""
    values = parse_qs(query).get(name)
    return values[0] if values else default


def distinct_bytes(blocks: list[bytearray]) -> list[int]:
    """The distinct byte values in `blocks`, sorted; fast (a C-level count)
    for the uniform blocks the routes write."""
    found: set[int] = set()
    for block in blocks:
        if block and block.count(block[:1]) == len(block):
            found.add(block[0])
        else:
            found.update(block)
    return sorted(found)


def snapshot() -> dict:
    """Everything a previous request on this instance could have changed."""
    return {
        "count": count,
        "global": VALUE,
        "env": os.environ.get("STATE_VALUE"),
        # Distinct byte values in BUFFER: [0] while untouched.
        "buffer": distinct_bytes([BUFFER]),
        "hoard_mib": sum(len(block) for block in HOARD) // MIB,
        # Distinct byte values over every hoarded block.
        "hoard_bytes": distinct_bytes(HOARD),
    }


def os_error(err: OSError) -> dict:
    """A failed file operation as JSON: the errno's symbolic name."""
    return {"ok": False, "error": errno.errorcode.get(err.errno, str(err.errno))}


def write_file(path: str) -> dict:
    """Create `path` and write a marker into it."""
    try:
        with open(path, "w") as file:
            file.write("written by the state guest\n")
    except OSError as err:
        return os_error(err)
    return {"ok": True}


def read_file(path: str) -> dict:
    """Read `path` as text."""
    try:
        with open(path) as file:
            return {"ok": True, "content": file.read()}
    except OSError as err:
        return os_error(err)


def list_dir(path: str) -> dict:
    """List directory `path`."""
    try:
        return {"ok": True, "entries": sorted(os.listdir(path))}
    except OSError as err:
        return os_error(err)


def fault(kind: str) -> None:
    """Fail the way `kind` says; never returns normally."""
    if kind == "raise":
        raise RuntimeError("deliberate uncaught exception from /fault?kind=raise")
    if kind == "loop":
        while True:
            pass
    if kind == "oom":
        hoard = []
        while True:
            hoard.append(bytearray(MIB))
    raise ValueError(f"unknown fault kind {kind!r}")


class IncomingHandler(exports.IncomingHandler):
    """The `wasi:http/incoming-handler` export."""

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        """Route the request by path."""
        global count, VALUE
        count += 1
        url = urlsplit(http.path(request))
        route, query = url.path, url.query
        if route == "/state":
            result = snapshot()
        elif route == "/set":
            VALUE = param(query, "value")
            os.environ["STATE_VALUE"] = VALUE
            result = {"ok": True}
        elif route == "/buffer":
            BUFFER[:] = bytes([int(param(query, "byte", "255"))]) * len(BUFFER)
            result = {"ok": True}
        elif route == "/hoard":
            size = int(param(query, "mb", "16")) * MIB
            HOARD.append(bytearray(bytes([int(param(query, "byte", "255"))]) * size))
            result = {"ok": True}
        elif route == "/write":
            result = write_file(param(query, "path"))
        elif route == "/read":
            result = read_file(param(query, "path"))
        elif route == "/listdir":
            result = list_dir(param(query, "path"))
        elif route == "/fault":
            fault(param(query, "kind"))
            return
        else:
            http.respond(response_out, 404, b"not found", {"content-type": "text/plain"})
            return
        http.respond(response_out, 200, json.dumps(result).encode(), JSON)
