"""wasi-http transport: reading requests and writing responses.

The only SDK module (with `_entry`) that touches the wasi-http bindings;
everything else works on plain Python values. Follows the component
model's ownership rules: child resources (header fields, body streams) are
released before their parents.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from componentize_py_types import Err, Ok
from wit_world.imports import exchange, outgoing_handler
from wit_world.imports.streams import OutputStream, StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingBody,
    IncomingRequest,
    Method_Connect,
    Method_Delete,
    Method_Get,
    Method_Head,
    Method_Options,
    Method_Other,
    Method_Patch,
    Method_Post,
    Method_Put,
    Method_Trace,
    OutgoingBody,
    OutgoingRequest,
    OutgoingResponse,
    RequestOptions,
    ResponseOutparam,
    Scheme_Http,
    Scheme_Https,
)

READ_SIZE = 64 * 1024
"""Largest read requested from the request body stream at once."""

FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
        "host",
        "http2-settings",
        "te",
        "trailer",
    }
)
"""Hop-by-hop headers: the host refuses (or frames) these itself, so they are
dropped from responses."""

NO_BODY_STATUSES = frozenset({204, 304})


class RequestHead:
    """The head of an `IncomingRequest`, read in one host call
    (``wasmhost:platform/exchange.head``)."""

    __slots__ = ("method", "target", "scheme", "authority", "_headers")

    def __init__(self, request: IncomingRequest) -> None:
        head = exchange.head(request)
        self.method: str = head.method.upper()
        self.target: str = head.path_with_query or "/"
        self.scheme: str = head.scheme
        self.authority: str | None = head.authority or None
        self._headers: list[tuple[str, str]] = [(name, value.decode("latin-1")) for name, value in head.headers]

    def headers(self) -> list[tuple[str, str]]:
        """The request's header fields as ``(name, value)`` pairs (names
        lower case, values decoded as latin-1)."""
        return self._headers

    def header(self, name: str) -> str | None:
        """The first value of header `name` (lower case), or None."""
        return next((value for field, value in self._headers if field == name), None)


def read_body(request: IncomingRequest) -> bytes:
    """Read the whole request body (call at most once per request): in one
    host call when the host read it already, else streamed."""
    body = exchange.take_body(request)
    if body is not None:
        return body
    return _read_all(request.consume())


def _read_all(body: IncomingBody) -> bytes:
    """Read an incoming body to its end and finish it."""
    chunks = []
    with body.stream() as source:
        while True:
            try:
                chunks.append(source.blocking_read(READ_SIZE))
            except Err as err:
                if isinstance(err.value, StreamError_Closed):
                    break
                raise
    IncomingBody.finish(body)
    return b"".join(chunks)


def _pairs(headers: Iterable[tuple[str, str]]) -> list[tuple[str, bytes]]:
    return [
        (name.lower(), value.encode("latin-1") if isinstance(value, str) else bytes(value))
        for name, value in headers
        if name.lower() not in FORBIDDEN_HEADERS
    ]


class Sender:
    """Sends one response through a `ResponseOutparam`.

    `started` turns true once the head has been handed to the host; after
    that an error can only cut the body short.
    """

    def __init__(self, response_out: ResponseOutparam) -> None:
        self.response_out = response_out
        self.started = False

    def send(
        self,
        status: int,
        headers: Iterable[tuple[str, str]],
        body: bytes = b"",
        chunks: Iterable[bytes] | None = None,
        head_only: bool = False,
    ) -> None:
        """Send the response: `body`, in one host call, or the `chunks`
        (pulled one at a time, each flushed before the next) through
        wasi-http streams. Adds ``content-length`` for a complete `body`
        unless given.

        No body is written for 1xx/204/304 (``content-length`` is dropped)
        or with `head_only` (a HEAD request: ``content-length`` is kept as
        for GET; the host's complaint that no body matches it is ignored,
        as the HTTP server never sends a HEAD response's body anyway).
        """
        pairs = _pairs(headers)
        no_body = head_only or status in NO_BODY_STATUSES or status < 200
        if status in NO_BODY_STATUSES or status < 200:
            pairs = [(n, v) for n, v in pairs if n != "content-length"]
        elif chunks is None and not any(name == "content-length" for name, _ in pairs):
            pairs.append(("content-length", str(len(body)).encode()))
        if chunks is None:
            # The whole response in one host call (wasmhost:platform/exchange).
            self.started = True
            try:
                exchange.respond(self.response_out, status, pairs, b"" if no_body else body)
            except Err as err:
                raise RuntimeError(f"the host refused the response (it answered 500): {err.value}") from None
            return
        fields = Fields.from_list(pairs)
        response = OutgoingResponse(fields)
        response.set_status_code(status)
        outgoing = response.body()
        ResponseOutparam.set(self.response_out, Ok(response))
        self.started = True
        try:
            if not no_body:
                with outgoing.write() as sink:
                    for chunk in chunks:
                        _write_all(sink, chunk)
        except BaseException:
            _close_chunks(chunks)
            outgoing.__exit__(None, None, None)  # dropped unfinished: the host aborts the body
            raise
        _close_chunks(chunks)
        try:
            OutgoingBody.finish(outgoing, None)
        except Err:
            if not head_only:
                raise

    def send_error(self, status: int, text: str) -> bool:
        """Send a small text/plain response unless one was started already;
        whether it was sent."""
        if self.started:
            return False
        data = text.encode("utf-8")
        self.send(status, [("content-type", "text/plain; charset=utf-8")], data)
        return True


def _close_chunks(chunks: Iterable[bytes] | None) -> None:
    close = getattr(chunks, "close", None)
    if close is not None:
        close()


def _write_all(sink: OutputStream, data: bytes) -> None:
    """Write all of `data` within the stream's write permits, then flush."""
    offset = 0
    size = len(data)
    while offset < size:
        permit = sink.check_write()
        if permit == 0:
            with sink.subscribe() as ready:
                ready.block()
            continue
        end = min(size, offset + permit)
        sink.write(data if offset == 0 and end == size else data[offset:end])
        offset = end
    sink.blocking_flush()


METHODS = {
    "GET": Method_Get, "HEAD": Method_Head, "POST": Method_Post, "PUT": Method_Put,
    "DELETE": Method_Delete, "CONNECT": Method_Connect, "OPTIONS": Method_Options,
    "TRACE": Method_Trace, "PATCH": Method_Patch,
}


def _unwrap(value):
    """The value of an `Ok`; raises an `Err`; anything else as it is."""
    if isinstance(value, Ok):
        return value.value
    if isinstance(value, Err):
        raise value
    return value


def send_request(
    method: str,
    scheme: str,
    authority: str,
    path: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    timeout: float | None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send one request through `wasi:http/outgoing-handler` and read the
    whole response: (status, headers, body). Raises `Err` carrying the
    host's `error-code` when the host refuses or the request fails."""
    request = OutgoingRequest(Fields.from_list(_pairs(headers)))
    method_type = METHODS.get(method.upper())
    request.set_method(method_type() if method_type else Method_Other(method))
    request.set_scheme(Scheme_Https() if scheme == "https" else Scheme_Http())
    request.set_authority(authority)
    request.set_path_with_query(path)
    options = None
    if timeout is not None:
        options = RequestOptions()
        nanos = int(timeout * 1e9)
        options.set_connect_timeout(nanos)
        options.set_first_byte_timeout(nanos)
        options.set_between_bytes_timeout(nanos)
    outgoing = request.body()
    future = outgoing_handler.handle(request, options)
    if body:
        with outgoing.write() as sink:
            _write_all(sink, body)
    OutgoingBody.finish(outgoing, None)
    with future.subscribe() as ready:
        ready.block()
    response = _unwrap(_unwrap(future.get()))
    with response.headers() as fields:
        pairs = [(name, bytes(value).decode("latin-1")) for name, value in fields.entries()]
    status = response.status()
    data = _read_all(response.consume())
    return status, pairs, data


def log(message: str) -> None:
    """A line on stderr (the host's log for this app)."""
    try:
        sys.stderr.write(message.rstrip("\n") + "\n")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001, S110 - logging must not fail a request
        pass
