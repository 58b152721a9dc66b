"""Test guest `outbound`: makes the outgoing HTTP request a test asks for.

Routes (any method):
  /fetch?url=URL  -> GET URL from the guest. Answers 200 with
                     ``status=<upstream status>\\n<upstream body>``, or 502
                     with ``error=<wasi:http error-code>`` when the host
                     refuses or the request fails.
  other           -> 404
"""

from urllib.parse import parse_qs, urlsplit

from wit_world import exports
from wit_world.imports import outgoing_handler
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingRequest,
    ResponseOutparam,
    Scheme_Http,
    Scheme_Https,
)
from componentize_py_types import Err, Ok

import wasmhost_http as http

TEXT = {"content-type": "text/plain"}


def unwrap(value):
    """The value of an `Ok`; raises an `Err`; anything else as it is."""
    if isinstance(value, Ok):
        return value.value
    if isinstance(value, Err):
        raise value
    return value


def fetch(url: str) -> tuple[int, bytes]:
    """GET `url` through `wasi:http/outgoing-handler`; raises `Err` with the
    host's error code when the request is refused or fails."""
    parts = urlsplit(url)
    request = OutgoingRequest(Fields())
    request.set_scheme(Scheme_Https() if parts.scheme == "https" else Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query(parts.path + (f"?{parts.query}" if parts.query else "") or "/")
    OutgoingBody.finish(request.body(), None)
    future = outgoing_handler.handle(request, None)
    future.subscribe().block()
    response = unwrap(unwrap(future.get()))
    body = response.consume()
    stream = body.stream()
    data = bytearray()
    while True:
        try:
            data += stream.blocking_read(65536)
        except Err:
            break
    return response.status(), bytes(data)


class IncomingHandler(exports.IncomingHandler):
    """The `wasi:http/incoming-handler` export."""

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        """Dispatch on the path."""
        target = urlsplit(http.path(request))
        if target.path != "/fetch":
            http.respond(response_out, 404, b"no such route", TEXT)
            return
        url = parse_qs(target.query).get("url", [""])[0]
        try:
            status, body = fetch(url)
        except Err as err:
            http.respond(response_out, 502, f"error={type(err.value).__name__}".encode(), TEXT)
            return
        http.respond(response_out, 200, f"status={status}\n".encode() + body, TEXT)
