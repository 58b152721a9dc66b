"""Outgoing HTTP: `wasmhost.fetch`.

The host sends only what the app's allow-list permits (`allowed_outbound`
in wasmhost.toml, `--allow-outbound`); everything else fails with an
`OutboundError` whose `code` names the `wasi:http` error, e.g.
``HttpRequestDenied`` (not listed) or ``DestinationIpProhibited`` (a
private address that is not listed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import json as _json
from ._datastructures import HeaderInput, Headers


class OutboundError(Exception):
    """An outgoing request the host refused, or that failed on the way."""

    def __init__(self, code: str, url: str) -> None:
        super().__init__(f"{code}: {url}")
        self.code = code
        """The `wasi:http` error code, e.g. ``HttpRequestDenied``."""
        self.url = url


@dataclass(frozen=True)
class FetchResponse:
    """A complete response to `fetch`."""

    status: int
    headers: Headers
    body: bytes

    @property
    def ok(self) -> bool:
        """Whether the status is 2xx."""
        return 200 <= self.status < 300

    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (by the host)."""
        return _json.loads(self.body)


def fetch(
    url: str,
    *,
    method: str = "GET",
    headers: HeaderInput | Headers = None,
    body: bytes | str | None = None,
    json: Any = None,
    timeout: float | None = 30.0,
) -> FetchResponse:
    """Send an HTTP request from the guest and return the whole response.

    `json` sends a value as an ``application/json`` body; `timeout` (seconds)
    bounds connecting, the first byte and each gap between body bytes.
    Raises `OutboundError` when the host refuses the request (the app's
    allow-list) or it fails, and `ValueError` for a URL that is not
    ``http(s)://host/...``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"fetch needs an http:// or https:// URL with a host, got {url!r}")
    send_headers = Headers(headers)
    if json is not None:
        body = _json.dumpb(json)
        send_headers.setdefault("content-type", "application/json")
    data = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    if data or method.upper() in ("POST", "PUT", "PATCH"):
        # A known length, not chunked framing: not every server reads chunks.
        send_headers.setdefault("content-length", str(len(data)))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    from componentize_py_types import Err  # noqa: PLC0415 (guest-only module)

    from . import _http  # noqa: PLC0415 (needs the wasi-http bindings)

    try:
        status, pairs, content = _http.send_request(
            method, parts.scheme, parts.netloc, path, send_headers.items(), data, timeout
        )
    except Err as err:
        code = type(err.value).__name__.removeprefix("ErrorCode_").removeprefix("StreamError_")
        raise OutboundError(code, url) from None
    return FetchResponse(status, Headers.from_pairs(pairs), content)
