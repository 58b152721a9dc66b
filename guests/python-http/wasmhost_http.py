"""Blocking helpers for plain `wasi:http` guests built with componentize-py.

A guest's `app.py` exports the incoming handler and uses these helpers to
read the request and send the response::

    from wit_world import exports
    import wasmhost_http as http

    class IncomingHandler(exports.IncomingHandler):
        def handle(self, request, response_out):
            http.respond(response_out, 200, b"hi\\n", {"content-type": "text/plain"})

Resources are released explicitly (``with`` blocks) so that child resources
(header fields, body streams) are always dropped before their parents, as the
component model requires.

`scripts/build_guest.py` puts this directory on the guest's Python path.
"""

from collections.abc import Iterable, Mapping

from componentize_py_types import Err, Ok
from wit_world.imports.streams import OutputStream, StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingBody,
    IncomingRequest,
    Method_Other,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

READ_SIZE = 64 * 1024
"""Largest read requested from the request body stream at once."""

HeaderValue = str | bytes
Headers = Mapping[str, HeaderValue] | Iterable[tuple[str, HeaderValue]]


def method(request: IncomingRequest) -> str:
    """The request method as an upper-case string, e.g. ``"GET"``."""
    value = request.method()
    if isinstance(value, Method_Other):
        return value.value
    return type(value).__name__.removeprefix("Method_").upper()


def path(request: IncomingRequest) -> str:
    """The request path with its query string (``"/"`` when absent)."""
    return request.path_with_query() or "/"


def header(request: IncomingRequest, name: str) -> bytes | None:
    """The first value of request header `name` (case-insensitive), or None."""
    with request.headers() as fields:
        values = fields.get(name.lower())
    return values[0] if values else None


def read_body(request: IncomingRequest) -> bytes:
    """Read the whole request body (may be called once per request)."""
    body = request.consume()
    chunks = []
    with body.stream() as source:
        while True:
            try:
                chunks.append(source.blocking_read(READ_SIZE))
            except Err as err:
                if isinstance(err.value, StreamError_Closed):
                    break
                raise
    # The returned future-trailers is not needed; dropping it at once is fine.
    IncomingBody.finish(body)
    return b"".join(chunks)


def respond(
    response_out: ResponseOutparam,
    status: int,
    body: bytes = b"",
    headers: Headers = (),
) -> None:
    """Send a complete response; adds ``content-length`` unless given."""
    pairs = _header_pairs(headers)
    if not any(name.lower() == "content-length" for name, _ in pairs):
        pairs.append(("content-length", str(len(body)).encode()))
    stream(response_out, status, (body,), pairs)


def stream(
    response_out: ResponseOutparam,
    status: int,
    chunks: Iterable[bytes],
    headers: Headers = (),
) -> None:
    """Send the response head, then each chunk as it is produced.

    The response head is handed to the host before the first chunk is pulled
    from `chunks`, and each chunk is flushed before the next is pulled, so a
    generator can stream indefinitely.
    Without a ``content-length`` header the host picks the framing (chunked).
    An exception raised by `chunks` propagates, leaving the body unfinished.
    """
    fields = Fields.from_list(_header_pairs(headers))
    response = OutgoingResponse(fields)
    response.set_status_code(status)
    body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    with body.write() as sink:
        for chunk in chunks:
            _write_all(sink, chunk)
    OutgoingBody.finish(body, None)


def _write_all(sink: OutputStream, data: bytes) -> None:
    """Write all of `data` within the stream's write permits, then flush."""
    offset = 0
    while offset < len(data):
        permit = sink.check_write()
        if permit == 0:
            with sink.subscribe() as ready:
                ready.block()
            continue
        end = min(len(data), offset + permit)
        sink.write(data if offset == 0 and end == len(data) else data[offset:end])
        offset = end
    sink.blocking_flush()


def _header_pairs(headers: Headers) -> list[tuple[str, bytes]]:
    """Normalise `headers` to a list of ``(name, bytes value)`` pairs."""
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [
        (name, value.encode() if isinstance(value, str) else bytes(value))
        for name, value in items
    ]
