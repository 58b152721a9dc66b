"""The response object handlers return (pure Python, no wasi types)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ._datastructures import Headers

TEXT = "text/plain; charset=utf-8"
JSON = "application/json"
OCTETS = "application/octet-stream"

HeadersArg = Headers | Mapping[str, str] | Iterable[tuple[str, str]] | None
Chunk = bytes | bytearray | memoryview | str


class Response:
    """An HTTP response: status, headers, and a body that is either bytes or
    a stream of chunks.

    ``Response("hi")`` is ``text/plain``; ``Response(b"...")`` is
    ``application/octet-stream``; `content_type` overrides either.
    """

    __slots__ = ("status", "headers", "body", "chunks")

    def __init__(
        self,
        body: bytes | bytearray | memoryview | str = b"",
        status: int = 200,
        headers: HeadersArg = None,
        content_type: str | None = None,
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
            raise ValueError(f"invalid status code {status!r}")
        self.status: int = status
        """The status code."""
        self.headers: Headers = Headers(headers)
        """Response headers (``content-length`` is added when sending)."""
        if isinstance(body, str):
            data = body.encode("utf-8")
            default_type: str | None = TEXT
        elif isinstance(body, (bytes, bytearray, memoryview)):
            data = bytes(body)
            default_type = OCTETS if data else None
        else:
            raise TypeError(
                f"Response body must be str or bytes, not {type(body).__name__}; "
                "use Response.json() or Response.stream()"
            )
        self.body: bytes = data
        """The body, when not streamed."""
        self.chunks: Iterable[Chunk] | None = None
        """The body's chunks, when streamed (`body` is then empty)."""
        if content_type is not None:
            self.headers.set("content-type", content_type)
        elif default_type is not None and "content-type" not in self.headers:
            self.headers.set("content-type", default_type)

    def __repr__(self) -> str:
        kind = "stream" if self.chunks is not None else f"{len(self.body)} bytes"
        return f"<Response {self.status} {self.headers.get('content-type')} {kind}>"

    @property
    def is_stream(self) -> bool:
        """Whether the body is streamed."""
        return self.chunks is not None

    @property
    def content_type(self) -> str | None:
        """The ``content-type`` header."""
        return self.headers.get("content-type")

    @classmethod
    def json(
        cls,
        obj: Any,
        status: int = 200,
        headers: HeadersArg = None,
        content_type: str = JSON,
    ) -> Response:
        """`obj` serialised as JSON (see `wasmhost.json.dumps`)."""
        from .json import dumpb  # noqa: PLC0415 - avoids an import cycle

        return cls(dumpb(obj), status, headers, content_type)

    @classmethod
    def text(
        cls,
        text: str,
        status: int = 200,
        headers: HeadersArg = None,
        content_type: str = TEXT,
    ) -> Response:
        """A text response (UTF-8)."""
        return cls(text.encode("utf-8"), status, headers, content_type)

    @classmethod
    def stream(
        cls,
        chunks: Iterable[Chunk],
        status: int = 200,
        headers: HeadersArg = None,
        content_type: str | None = None,
    ) -> Response:
        """A streamed body: each chunk (bytes, or str sent as UTF-8) is sent
        as soon as it is produced, without ``content-length``.

        The iterable's ``close()`` is called when sending ends. Without
        `content_type` (and no ``content-type`` header), the type is
        ``text/plain; charset=utf-8`` if the first chunk is a str, else
        ``application/octet-stream``.
        """
        if isinstance(chunks, (str, bytes, bytearray, memoryview)):
            raise TypeError("Response.stream() takes an iterable of chunks, not a single str/bytes")
        response = cls(b"", status, headers, content_type)
        response.chunks = chunks
        return response

    @classmethod
    def redirect(cls, location: str, status: int = 302, headers: HeadersArg = None) -> Response:
        """A redirect to `location`."""
        response = cls(b"", status, headers)
        response.headers.set("location", location)
        return response

    def read(self) -> bytes:
        """The whole body; a streamed body is consumed (and closed)."""
        if self.chunks is None:
            return self.body
        chunks, self.chunks = self.chunks, None
        try:
            self.body = b"".join(to_bytes(chunk) for chunk in chunks)
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        return self.body

    def text_body(self) -> str:
        """`read()` decoded as UTF-8 (for tests)."""
        return self.read().decode("utf-8", "replace")

    def json_body(self) -> Any:
        """`read()` parsed as JSON (for tests)."""
        import json  # noqa: PLC0415

        return json.loads(self.read())


def to_bytes(chunk: Chunk) -> bytes:
    """A body chunk as bytes (str is encoded as UTF-8)."""
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"body chunks must be bytes or str, not {type(chunk).__name__}")


class ChunkStream:
    """Iterates a streamed body as bytes, skipping empty chunks, with a
    first chunk already pulled; `close()` closes the source."""

    __slots__ = ("_first", "_rest", "_source", "_closed")

    def __init__(self, source: Iterable[Chunk], first: list[bytes], rest: Iterator[Chunk]) -> None:
        self._source = source
        self._first = first
        self._rest = rest
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._first:
            return self._first.pop()
        while True:
            chunk = to_bytes(next(self._rest))
            if chunk:
                return chunk

    def close(self) -> None:
        """Close the source iterable, or else its iterator (idempotent)."""
        if self._closed:
            return
        self._closed = True
        for obj in (self._source, self._rest):
            close = getattr(obj, "close", None)
            if close is not None:
                close()
                return


def start_stream(chunks: Iterable[Chunk]) -> tuple[ChunkStream, type[str] | type[bytes] | None]:
    """Pull the first non-empty chunk of `chunks` (so that an error raised
    before any output can still become a 500), returning a `ChunkStream` and
    the type of that first chunk (None when there was none)."""
    iterator = iter(chunks)
    first: list[bytes] = []
    kind: type[str] | type[bytes] | None = None
    try:
        for chunk in iterator:
            data = to_bytes(chunk)
            if kind is None:
                kind = str if isinstance(chunk, str) else bytes
            if data:
                first.append(data)
                break
    except BaseException:
        close = getattr(chunks, "close", None) or getattr(iterator, "close", None)
        if close is not None:
            close()
        raise
    return ChunkStream(chunks, first, iterator), kind
