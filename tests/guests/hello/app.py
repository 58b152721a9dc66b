"""Test guest `hello`: a well-behaved plain wasi:http app.

Routes (any method):
  /count  -> ``count=N``: N counts requests seen by this instance
  /echo   -> the request body, with the request's content-type
  /env    -> the guest's whole environment, as a JSON object
  /request-id -> the x-request-id header the guest received ('' when absent)
  /print  -> writes guest-stdout-marker / guest-stderr-marker, returns 200
  other   -> ``hello from wasmhost\\n``
"""

import json
import os
import sys
from urllib.parse import urlsplit

from wit_world import exports
from wit_world.imports.types import IncomingRequest, ResponseOutparam

import wasmhost_http as http

TEXT = {"content-type": "text/plain"}

count = 0
"""Requests handled by this instance (module state lives as long as it)."""


class IncomingHandler(exports.IncomingHandler):
    """The `wasi:http/incoming-handler` export."""

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        """Route the request by path."""
        global count
        count += 1
        route = urlsplit(http.path(request)).path
        if route == "/count":
            http.respond(response_out, 200, f"count={count}".encode(), TEXT)
        elif route == "/echo":
            content_type = http.header(request, "content-type")
            body = http.read_body(request)
            echo_headers = {"content-type": content_type} if content_type else {}
            http.respond(response_out, 200, body, echo_headers)
        elif route == "/env":
            body = json.dumps(dict(os.environ)).encode()
            http.respond(response_out, 200, body, {"content-type": "application/json"})
        elif route == "/request-id":
            value = http.header(request, "x-request-id") or b""
            http.respond(response_out, 200, value, TEXT)
        elif route == "/print":
            # Guest stdout is block-buffered (not a tty): flush explicitly.
            print("guest-stdout-marker", flush=True)
            print("guest-stderr-marker", file=sys.stderr, flush=True)
            http.respond(response_out, 200, b"printed\n", TEXT)
        else:
            http.respond(response_out, 200, b"hello from wasmhost\n", TEXT)
