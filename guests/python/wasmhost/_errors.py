"""HTTP errors that handlers raise to answer with a status code.

Raising an `HTTPError` (or a subclass) from a handler answers with its status
and an RFC 9457 ``application/problem+json`` body::

    raise NotFound(f"no order {order_id}")
    # 404 {"type": "about:blank", "title": "Not Found", "status": 404,
    #      "detail": "no order 42"}
"""

from __future__ import annotations

import http
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

PROBLEM_JSON = "application/problem+json"


def status_phrase(status: int) -> str:
    """The standard reason phrase of `status`, or ``""`` when unknown."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


class HTTPError(Exception):
    """An error answered with `status` and a problem+json body.

    `detail` is a human-readable explanation for the client. `headers` are
    added to the response (``Allow``, ``Retry-After``, ...). `extra` members
    are merged into the problem object (e.g. ``errors=[...]``).
    """

    status: int = 500
    default_status: ClassVar[int] = 500

    def __init__(
        self,
        status: int | None = None,
        detail: str | None = None,
        *,
        title: str | None = None,
        type: str = "about:blank",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        **extra: Any,
    ) -> None:
        if status is None:
            status = self.default_status
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 599:
            raise ValueError(f"HTTPError status must be an int in 400..599, not {status!r}")
        self.status = status
        self.detail = detail
        self.title = title or status_phrase(status) or "Error"
        self.type = type
        self.headers: list[tuple[str, str]] = list(
            headers.items() if isinstance(headers, Mapping) else (headers or ())
        )
        self.extra = extra
        super().__init__(status, detail)

    def __str__(self) -> str:
        text = f"{self.status} {self.title}"
        return f"{text}: {self.detail}" if self.detail else text

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem object sent as the response body."""
        body: dict[str, Any] = {"type": self.type, "title": self.title, "status": self.status}
        if self.detail is not None:
            body["detail"] = self.detail
        for key, value in self.extra.items():
            body.setdefault(key, value)
        return body


class _Fixed(HTTPError):
    """An `HTTPError` with a fixed status: ``NotFound("no such order")``."""

    def __init__(
        self,
        detail: str | None = None,
        *,
        title: str | None = None,
        type: str = "about:blank",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(
            self.default_status, detail, title=title, type=type, headers=headers, **extra
        )


class BadRequest(_Fixed):
    """400: the request is malformed (e.g. its body is not JSON)."""

    default_status = 400


class Unauthorized(_Fixed):
    """401: authentication is required."""

    default_status = 401


class Forbidden(_Fixed):
    """403: the client may not do this."""

    default_status = 403


class NotFound(_Fixed):
    """404: no such resource (also sent when no route matches the path)."""

    default_status = 404


class MethodNotAllowed(_Fixed):
    """405: the path exists but not with this method; sets ``Allow``."""

    default_status = 405

    def __init__(self, allowed: Iterable[str] = (), detail: str | None = None, **kwargs: Any) -> None:
        self.allowed = list(allowed)
        headers = list(kwargs.pop("headers", None) or ())
        if self.allowed:
            headers.append(("allow", ", ".join(self.allowed)))
        super().__init__(detail, headers=headers, **kwargs)


class NotAcceptable(_Fixed):
    """406: no acceptable representation."""

    default_status = 406


class Conflict(_Fixed):
    """409: the request conflicts with the resource's state."""

    default_status = 409


class Gone(_Fixed):
    """410: the resource is gone for good."""

    default_status = 410


class PayloadTooLarge(_Fixed):
    """413: the request body is too large."""

    default_status = 413


class UnsupportedMediaType(_Fixed):
    """415: the body's media type is not supported."""

    default_status = 415


class UnprocessableEntity(_Fixed):
    """422: the body is well-formed but invalid."""

    default_status = 422


class TooManyRequests(_Fixed):
    """429: slow down."""

    default_status = 429


class InternalServerError(_Fixed):
    """500: something went wrong on the server."""

    default_status = 500


class ServiceUnavailable(_Fixed):
    """503: try again later."""

    default_status = 503
