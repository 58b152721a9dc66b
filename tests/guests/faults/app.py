"""Test guest `faults`: misbehaves on demand, to exercise host isolation.

Routes (any method):
  /ok                  -> 200 ``ok``
  /count               -> ``count=N``: N counts requests seen by this instance
  /raise               -> uncaught Python exception (the component traps)
  /loop                -> spins forever (needs an epoch/fuel deadline)
  /sleep?ms=N          -> sleeps N ms (default 1000), then 200 ``slept N ms``
  /oom                 -> allocates 1 MiB blocks until memory runs out
  /recurse             -> deep C-level recursion to exhaust the wasm stack
  /noresponse          -> returns without ever setting a response
  /fail-after-headers  -> 200 head (no content-length), 1 MiB body, then raises
  /big?mb=N            -> streams N MiB (default 64) of ``x`` in 64 KiB chunks
  other                -> 404
"""

import json
import sys
import time
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

from wit_world import exports
from wit_world.imports.types import IncomingRequest, ResponseOutparam

import wasmhost_http as http

TEXT = {"content-type": "text/plain"}
CHUNK = b"x" * (64 * 1024)
CHUNKS_PER_MIB = (1024 * 1024) // len(CHUNK)

count = 0
"""Requests handled by this instance (module state lives as long as it)."""


def int_param(query: str, name: str, default: int) -> int:
    """Integer query parameter `name`, or `default` when absent."""
    values = parse_qs(query).get(name)
    return int(values[0]) if values else default


def exhaust_memory() -> None:
    """Hold on to ever more 1 MiB buffers; ends in a MemoryError or a trap."""
    hoard = []
    while True:
        hoard.append(bytearray(1 << 20))


def exhaust_stack() -> None:
    """Serialise a 200000-deep nested list with the C JSON encoder.

    Each nesting level is a C stack frame, so this overflows the wasm stack
    unless CPython's C-stack guard raises RecursionError first; either way
    the handler does not return normally.
    """
    sys.setrecursionlimit(10**6)
    nested: list = []
    for _ in range(200_000):
        nested = [nested]
    json.dumps(nested)


def one_mib_then_fail() -> Iterator[bytes]:
    """Yield 1 MiB of body, then raise mid-response."""
    for _ in range(CHUNKS_PER_MIB):
        yield CHUNK
    raise RuntimeError("deliberate failure after the response head was sent")


def big_body(mib: int) -> Iterator[bytes]:
    """Yield `mib` MiB of ``x`` in 64 KiB chunks."""
    for _ in range(mib * CHUNKS_PER_MIB):
        yield CHUNK


class IncomingHandler(exports.IncomingHandler):
    """The `wasi:http/incoming-handler` export."""

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        """Route the request by path."""
        global count
        count += 1
        url = urlsplit(http.path(request))
        route = url.path
        if route == "/ok":
            http.respond(response_out, 200, b"ok", TEXT)
        elif route == "/count":
            http.respond(response_out, 200, f"count={count}".encode(), TEXT)
        elif route == "/raise":
            raise RuntimeError("deliberate uncaught exception from /raise")
        elif route == "/loop":
            while True:
                pass
        elif route == "/sleep":
            ms = int_param(url.query, "ms", 1000)
            time.sleep(ms / 1000)
            http.respond(response_out, 200, f"slept {ms} ms".encode(), TEXT)
        elif route == "/oom":
            exhaust_memory()
        elif route == "/recurse":
            exhaust_stack()
        elif route == "/noresponse":
            return
        elif route == "/fail-after-headers":
            http.stream(response_out, 200, one_mib_then_fail(), TEXT)
        elif route == "/big":
            mib = int_param(url.query, "mb", 64)
            http.stream(response_out, 200, big_body(mib), TEXT)
        else:
            http.respond(response_out, 404, b"not found", TEXT)
