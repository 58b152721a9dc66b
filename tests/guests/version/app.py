"""Test guest `version`: answers every request with ``version=<VERSION>``.

Tests copy this directory and rewrite the VERSION line to get a distinct
component (e.g. to check hot reload).
"""

from wit_world import exports
from wit_world.imports.types import IncomingRequest, ResponseOutparam

import wasmhost_http as http

VERSION = "1"


class IncomingHandler(exports.IncomingHandler):
    """The `wasi:http/incoming-handler` export."""

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        """Reply with the version string."""
        body = f"version={VERSION}".encode()
        http.respond(response_out, 200, body, {"content-type": "text/plain"})
