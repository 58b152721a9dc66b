"""The request object handlers receive (pure Python, no wasi types)."""

from __future__ import annotations

import json as _json
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote

from ._datastructures import Headers, QueryDict
from ._errors import BadRequest

BodySource = bytes | bytearray | memoryview | Callable[[], bytes]
"""A request body: the bytes, or a function that reads them (called once)."""

HeadersSource = (
    Headers | Mapping[str, str] | Iterable[tuple[str, str]] | Callable[[], list[tuple[str, str]]] | None
)
"""Request headers, or a function returning valid ``(name, value)`` pairs
(called once, on first use)."""


class Request:
    """An incoming HTTP request.

    The body is read from the host lazily, the first time `body`, `text` or
    `json()` is used, and only once.
    """

    __slots__ = (
        "method",
        "target",
        "raw_path",
        "query_string",
        "_headers",
        "_header_source",
        "scheme",
        "authority",
        "path_params",
        "_body",
        "_reader",
        "_query",
        "_json",
    )

    def __init__(
        self,
        method: str,
        target: str = "/",
        headers: HeadersSource = None,
        body: BodySource = b"",
        *,
        scheme: str = "http",
        authority: str | None = None,
        path_params: Mapping[str, str] | None = None,
    ) -> None:
        self.method: str = method.upper()
        """The method, upper case: ``"GET"``."""
        self.target: str = target or "/"
        """The path with its query string, as sent: ``"/a%20b?x=1"``."""
        raw_path, _, query_string = self.target.partition("?")
        self.raw_path: str = raw_path or "/"
        """The path as sent, still percent-encoded."""
        self.query_string: str = query_string
        """The raw query string, without ``?``."""
        self._headers: Headers | None = None
        self._header_source: Callable[[], list[tuple[str, str]]] | None = None
        if callable(headers):
            self._header_source = headers
        else:
            self._headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.scheme: str = scheme
        """``"http"`` or ``"https"``."""
        self.authority: str | None = authority or (
            self._headers.get("host") if self._headers is not None else None
        )
        """Host (and port) the request was sent to, when known."""
        self.path_params: dict[str, str] = dict(path_params or {})
        """Values of the route's ``{name}`` segments, percent-decoded."""
        self._reader: Callable[[], bytes] | None = None
        self._body: bytes | None = None
        if callable(body):
            self._reader = body
        else:
            self._body = bytes(body)
        self._query: QueryDict | None = None
        self._json: Any = _UNSET

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target}>"

    @property
    def headers(self) -> Headers:
        """Request headers: case-insensitive, possibly several values each
        (fetched from the host on first use)."""
        if self._headers is None:
            source, self._header_source = self._header_source, None
            self._headers = Headers.from_pairs(source() if source is not None else [])
        return self._headers

    @property
    def path(self) -> str:
        """The path, percent-decoded (UTF-8): ``"/a b"``."""
        return unquote(self.raw_path, errors="replace")

    @property
    def query(self) -> QueryDict:
        """The parsed query string: a dict of lists of values
        (``request.query["tag"] == ["a", "b"]``), with ``first(name,
        default)`` and ``getlist(name)``. Blank values are kept."""
        if self._query is None:
            self._query = QueryDict.from_pairs(
                parse_qsl(self.query_string, keep_blank_values=True, errors="replace")
            )
        return self._query

    @property
    def url(self) -> str:
        """The full URL: ``scheme://authority/path?query``."""
        return f"{self.scheme}://{self.authority or 'localhost'}{self.target}"

    @property
    def request_id(self) -> str | None:
        """The request's id (``x-request-id``, set by the host)."""
        return self.headers.get("x-request-id")

    @property
    def content_type(self) -> str | None:
        """The media type of the body, without parameters, lower case."""
        value = self.headers.get("content-type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower() or None

    @property
    def charset(self) -> str:
        """The ``charset`` parameter of ``content-type``; ``utf-8`` by default."""
        value = self.headers.get("content-type") or ""
        for param in value.split(";")[1:]:
            key, _, val = param.partition("=")
            if key.strip().lower() == "charset" and val.strip():
                return val.strip().strip('"')
        return "utf-8"

    @property
    def body(self) -> bytes:
        """The whole request body (read from the host on first use)."""
        if self._body is None:
            reader, self._reader = self._reader, None
            self._body = reader() if reader is not None else b""
        return self._body

    @property
    def text(self) -> str:
        """The body decoded with its charset (undecodable bytes replaced)."""
        try:
            return self.body.decode(self.charset, "replace")
        except LookupError:
            return self.body.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON (stdlib `json`; cached).

        Raises `BadRequest` (400) when the body is empty or not JSON.
        """
        if self._json is _UNSET:
            body = self.body
            if not body.strip():
                raise BadRequest("the request body is empty; expected JSON")
            try:
                self._json = _json.loads(body, parse_constant=_reject_constant)
            except UnicodeDecodeError:
                raise BadRequest("the request body is not valid UTF-8 JSON") from None
            except _json.JSONDecodeError as err:
                raise BadRequest(
                    f"malformed JSON: {err.msg} at line {err.lineno} column {err.colno}"
                ) from None
            except ValueError as err:
                raise BadRequest(f"malformed JSON: {err}") from None
            except RecursionError:
                raise BadRequest("malformed JSON: nested too deeply") from None
        return self._json


class _Unset:
    __slots__ = ()


_UNSET: Any = _Unset()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")
