"""Serving WSGI applications (PEP 3333), e.g. Flask, from wasi-http requests.

Pure Python: `build_environ` makes the environ from plain request values
and `run_wsgi` calls the app and returns a `Response` whose streamed body
drives the app's iterable; `wasmhost._entry` connects both to wasi-http.

Conventions (as in most WSGI servers):

* ``PATH_INFO`` is the percent-decoded path as latin-1 (PEP 3333's
  "bytes as str"), ``SCRIPT_NAME`` is empty.
* Repeated headers are joined with ``", "`` (``Cookie`` with ``"; "``).
  Header names containing ``_`` are dropped, so that they cannot spoof
  dash-separated ones (``X_User`` vs ``X-User``).
* ``wsgi.input`` is the request body, read from the host on first use;
  ``wsgi.input_terminated`` is true, so frameworks can read it without a
  ``Content-Length``.
* Response headers are not sent before the first non-empty body chunk (or
  the end of the body), so an exception raised until then still gets a 500.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import quote, unquote_to_bytes

from ._datastructures import Headers
from ._request import Request
from ._response import Response, TEXT

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]

_SPECIAL = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}


class LazyInput:
    """``wsgi.input``: a binary file over the request body, which is read
    from the host the first time it is used."""

    def __init__(self, body: bytes | Callable[[], bytes]) -> None:
        self._source = body
        self._file: io.BytesIO | None = None

    def _open(self) -> io.BytesIO:
        if self._file is None:
            source = self._source
            self._file = io.BytesIO(source() if callable(source) else source)
            self._source = b""
        return self._file

    def read(self, size: int | None = -1) -> bytes:
        """Read up to `size` bytes (all when negative or None)."""
        return self._open().read(-1 if size is None else size)

    def readline(self, size: int | None = -1) -> bytes:
        """Read one line."""
        return self._open().readline(-1 if size is None else size)

    def readlines(self, hint: int = -1) -> list[bytes]:
        """Read all lines."""
        return self._open().readlines(hint)

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._open())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._open(), name)


def build_environ(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str | bytes]],
    body: bytes | Callable[[], bytes] = b"",
    *,
    scheme: str = "http",
    authority: str | None = None,
    remote_addr: str | None = None,
    server_protocol: str = "HTTP/1.1",
) -> dict[str, Any]:
    """The PEP 3333 environ for a request.

    `target` is the path with its query string as sent (percent-encoded);
    `headers` are ``(name, value)`` pairs, values as str or bytes (latin-1).
    """
    raw_path, _, query = (target or "/").partition("?")
    path_info = unquote_to_bytes(raw_path or "/").decode("latin-1")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method.upper(),
        "SCRIPT_NAME": "",
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "REQUEST_URI": target or "/",
        "RAW_URI": target or "/",
        "SERVER_PROTOCOL": server_protocol,
        "REMOTE_ADDR": remote_addr or "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": LazyInput(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
    }
    joined: dict[str, list[str]] = {}
    for name, value in headers:
        text = value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else value
        lower = name.lower()
        if "_" in lower:
            continue
        key = _SPECIAL.get(lower) or "HTTP_" + lower.upper().replace("-", "_")
        joined.setdefault(key, []).append(text)
    for key, values in joined.items():
        separator = "; " if key == "HTTP_COOKIE" else ", "
        environ[key] = separator.join(values)
    if authority and "HTTP_HOST" not in environ:
        environ["HTTP_HOST"] = authority
    host = environ.get("HTTP_HOST") or ""
    name, port = _split_host(host)
    environ["SERVER_NAME"] = name or "localhost"
    environ["SERVER_PORT"] = port or ("443" if scheme == "https" else "80")
    return environ


def _split_host(host: str) -> tuple[str, str]:
    if host.startswith("["):  # [v6]:port
        end = host.find("]")
        if end != -1:
            rest = host[end + 1 :]
            return host[: end + 1], rest[1:] if rest.startswith(":") else ""
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit():
        return name, port
    return host, ""


class _StartResponse:
    """``start_response`` and ``write`` for one request."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        self.written: list[bytes] = []

    def __call__(
        self,
        status: str,
        headers: list[tuple[str, str]],
        exc_info: ExcInfo | None = None,
    ) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.status is not None:
            raise AssertionError("start_response() called a second time without exc_info")
        if not isinstance(status, str) or len(status) < 3 or not status[:3].isdigit():
            raise ValueError(f"invalid WSGI status {status!r} (expected e.g. '200 OK')")
        checked: list[tuple[str, str]] = []
        for item in headers:
            if not (isinstance(item, tuple) and len(item) == 2 and all(isinstance(x, str) for x in item)):
                raise TypeError(f"WSGI headers must be (str, str) tuples, not {item!r}")
            checked.append(item)
        self.status = status
        self.headers = checked
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write()`` callable: data is sent before the
        iterable's output."""
        if self.status is None:
            raise AssertionError("write() called before start_response()")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if data:
            self.written.append(bytes(data))


class WSGIBody:
    """A WSGI app's output as an iterator of non-empty byte chunks:
    ``write()`` data first, then the iterable's chunks. `close()` calls the
    iterable's ``close()`` once."""

    def __init__(self, result: Iterable[bytes], iterator: Iterator[bytes], first: list[bytes], state: _StartResponse) -> None:
        self._result = result
        self._iterator = iterator
        self._first = first
        self._state = state
        self._closed = False

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        written = self._state.written
        if written:
            return written.pop(0)
        if self._first:
            return self._first.pop()
        while True:
            chunk = _check_chunk(next(self._iterator))
            if written:  # write() called while producing the chunk
                if chunk:
                    written.append(chunk)
                return written.pop(0)
            if chunk:
                return chunk

    def close(self) -> None:
        """Call the app iterable's ``close()`` (once)."""
        if not self._closed:
            self._closed = True
            _close(self._result)


def _check_chunk(chunk: Any) -> bytes:
    if isinstance(chunk, bytes):
        return chunk
    if isinstance(chunk, (bytearray, memoryview)):
        return bytes(chunk)
    raise TypeError(f"a WSGI app must yield bytes, not {type(chunk).__name__}")


def _close(result: Any) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def run_wsgi(app: WSGIApp, environ: dict[str, Any]) -> Response:
    """Call the WSGI `app` and return its response.

    The app runs until it has produced its first non-empty body chunk (or
    finished): an exception until then becomes a ``500`` (traceback on
    stderr), since no header has been sent. The rest of the body is pulled
    from the returned response's `chunks` (a `WSGIBody`) as it is sent.
    A list or tuple result becomes a plain (non-streamed) body.
    """
    state = _StartResponse()
    result: Iterable[bytes] | None = None
    try:
        result = app(environ, state)
        if result is None:
            raise TypeError("the WSGI app returned None instead of an iterable")
        if isinstance(result, (list, tuple)):
            chunks = [_check_chunk(chunk) for chunk in result]
            _close(result)
            if state.status is None:
                raise RuntimeError("the WSGI app did not call start_response()")
            state.headers_sent = True
            response = Response(b"", _status_code(state.status), state.headers)
            response.body = b"".join(state.written + chunks)
            state.written.clear()
            return response
        iterator = iter(result)
        first: list[bytes] = []
        complete = False
        if not state.written:
            for chunk in iterator:
                data = _check_chunk(chunk)
                if data:
                    first.append(data)
                    break
            else:
                complete = True  # the iterable ended: the body is all in hand
        if state.status is None:
            raise RuntimeError("the WSGI app did not call start_response()")
        response = Response(b"", _status_code(state.status), state.headers)
        if first and _declared_length(state.headers) == len(first[0]):
            complete = True  # the first chunk is the whole body (Flask declares it)
        if complete:
            # Sent in one piece (one host call) instead of streamed.
            _close(result)
            state.headers_sent = True
            response.body = b"".join(state.written + first)
            state.written.clear()
            return response
    except Exception as error:  # noqa: BLE001 - nothing was sent: answer 500
        if result is not None:
            try:
                _close(result)
            except Exception:  # noqa: BLE001, S110
                pass
        _log(environ, error)
        return Response(b"Internal Server Error\n", 500, content_type=TEXT)
    state.headers_sent = True
    response.chunks = WSGIBody(result, iterator, first, state)
    return response


def _declared_length(headers: list[tuple[str, str]]) -> int | None:
    """The ``Content-Length`` the app declared, if it is a number."""
    for name, value in headers:
        if name.lower() == "content-length":
            return int(value) if value.strip().isdigit() else None
    return None


def _status_code(status: str) -> int:
    code = int(status[:3])
    if not 100 <= code <= 999:
        raise ValueError(f"invalid WSGI status {status!r}")
    return code


def _log(environ: dict[str, Any], error: BaseException) -> None:
    from ._app import log_exception  # noqa: PLC0415

    request = Request(
        environ.get("REQUEST_METHOD", "GET"),
        environ.get("REQUEST_URI") or "/",
        [("x-request-id", environ["HTTP_X_REQUEST_ID"])] if "HTTP_X_REQUEST_ID" in environ else None,
    )
    log_exception(request, error, "in the WSGI app")


def request_from_environ(environ: dict[str, Any]) -> Request:
    """A `Request` from a WSGI environ (to run an `App` on a WSGI server)."""
    headers = Headers()
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.add(key[5:].replace("_", "-").lower(), value)
    for key, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if environ.get(key):
            headers.add(name, environ[key])
    target = quote(environ.get("PATH_INFO", "").encode("latin-1"), safe="/:@!$&'()*+,;=-._~") or "/"
    if environ.get("QUERY_STRING"):
        target += "?" + environ["QUERY_STRING"]
    stream = environ.get("wsgi.input")
    length = environ.get("CONTENT_LENGTH") or ""

    def read_body() -> bytes:
        if stream is None:
            return b""
        if length.isdigit():
            return bytes(stream.read(int(length)))
        if environ.get("wsgi.input_terminated"):
            return bytes(stream.read())
        return b""

    authority = environ.get("HTTP_HOST") or f"{environ.get('SERVER_NAME', 'localhost')}:{environ.get('SERVER_PORT', '80')}"
    return Request(
        environ.get("REQUEST_METHOD", "GET"),
        target,
        headers,
        read_body,
        scheme=environ.get("wsgi.url_scheme", "http"),
        authority=authority,
    )
