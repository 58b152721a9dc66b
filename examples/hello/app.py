"""Hello world for wasmhost: a plain `wasi:http` app written in Python.

Every request gets a short greeting that echoes its method and path.

Build it (from the repository root; needs componentize-py 0.25.1 in .venv,
see `python3 -m venv .venv && .venv/bin/pip install componentize-py==0.25.1`)::

    python3 scripts/build_guest.py examples/hello -o hello.wasm

`build_guest.py` wraps componentize-py, adds the `wasmhost_http` helper
(guests/python-http) to the Python path and caches the result under
target/guests/. Equivalent direct call::

    .venv/bin/componentize-py -d wit -w http-app componentize app \\
        -p examples/hello -p guests/python-http -o hello.wasm

Then serve hello.wasm with wasmhost and try ``curl -i http://HOST:PORT/any/path``.

The component exports `wasi:http/incoming-handler`: componentize-py calls
`IncomingHandler().handle(request, response_out)` for each request. Import
everything at module top level: the interpreter is snapshotted after the
import at build time, and modules not imported then are unavailable later.
"""

from wit_world import exports
from wit_world.imports.types import IncomingRequest, ResponseOutparam

import wasmhost_http as http


class IncomingHandler(exports.IncomingHandler):
    """Answers every request with a friendly greeting."""

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        """Greet the caller, showing the request's method and path."""
        text = (
            "Hello from wasmhost!\n"
            f"You sent {http.method(request)} {http.path(request)}\n"
        )
        http.respond(
            response_out,
            200,
            text.encode(),
            {"content-type": "text/plain; charset=utf-8"},
        )
