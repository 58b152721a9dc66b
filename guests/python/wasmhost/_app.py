"""`App`: routes, handler dispatch and response conversion (pure Python).

Nothing here touches wasi types: `App.dispatch` maps a `Request` to a
`Response`, so apps can be unit-tested natively (`App.call`) and served by
any WSGI server (an `App` is also a WSGI application).
"""

from __future__ import annotations

import inspect
import sys
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from ._datastructures import Headers
from ._errors import PROBLEM_JSON, BadRequest, HTTPError, MethodNotAllowed, NotFound
from ._request import Request
from ._response import JSON, OCTETS, TEXT, ChunkStream, Response, start_stream, to_bytes
from ._routing import PathPattern
from .json import JSONError, Schema, dumpb

Handler = Callable[..., Any]
"""A route handler: ``handler(request, **path_params) -> result``."""

ErrorHandler = Callable[[Request, BaseException], Any]
"""An error handler: ``handler(request, error) -> result``."""

H = TypeVar("H", bound=Callable[..., Any])

SchemaArg = Schema | Mapping[str, Any] | bool | str | bytes | None

_INTERNAL_ERROR = {"type": "about:blank", "title": "Internal Server Error", "status": 500}


@dataclass(frozen=True)
class ManifestRoute:
    """A route as exported to the host (the wit ``manifest.route`` record)."""

    method: str
    """Upper-case method, or ``*`` for any."""
    path: str
    """The path pattern."""
    body_schema: str | None
    """The body's JSON Schema as JSON text, or None."""


@dataclass
class Route:
    """A registered route."""

    methods: tuple[str, ...]
    pattern: PathPattern
    handler: Handler
    schema: Schema | None

    @property
    def path(self) -> str:
        """The path pattern text."""
        return self.pattern.pattern


class App:
    """A wasmhost web app::

        import wasmhost

        app = wasmhost.App()

        @app.get("/hello/{name}")
        def hello(request, name):
            return {"greeting": f"Hello, {name}!"}

    Routes are tried in the order they were added; the first whose path and
    method match serves the request. A path that matches no route gets 404;
    a path that matches only with other methods gets 405 with ``Allow``.
    ``HEAD`` is served by ``GET`` routes (the body is not sent).

    A route's `schema` (a JSON Schema) is exported to the host, which
    validates the request body before the app runs (400 for malformed JSON,
    422 for a violation): the handler only sees valid bodies. The SDK does
    not validate again in the guest under wasmhost; pass
    ``validate_bodies=True`` to validate in Python too (useful when the app
    runs outside wasmhost, e.g. in tests; needs `jsonschema` there).
    """

    def __init__(self, *, validate_bodies: bool = False) -> None:
        self.routes: list[Route] = []
        """The routes, in match order."""
        self.validate_bodies = validate_bodies
        self._error_handlers: dict[type[BaseException] | int, ErrorHandler] = {}

    def __repr__(self) -> str:
        return f"<wasmhost.App with {len(self.routes)} routes>"

    # ------------------------------------------------------------------
    # Registration

    def add_route(
        self,
        path: str,
        handler: Handler,
        methods: Iterable[str] | None = None,
        schema: SchemaArg = None,
    ) -> Route:
        """Register `handler` for `path` and `methods` (default ``GET``)."""
        pattern = PathPattern(path)
        method_list = _methods(methods)
        _check_handler(handler, pattern)
        compiled = schema if isinstance(schema, Schema) or schema is None else Schema(schema)
        route = Route(method_list, pattern, handler, compiled)
        self.routes.append(route)
        return route

    def route(
        self,
        path: str,
        methods: Iterable[str] | None = None,
        schema: SchemaArg = None,
    ) -> Callable[[H], H]:
        """Decorator: register the function for `path` and `methods`
        (default ``["GET"]``; ``["*"]`` for any method)."""
        PathPattern(path)  # report a bad path or method at the decorator
        method_list = _methods(methods)

        def decorate(handler: H) -> H:
            self.add_route(path, handler, method_list, schema)
            return handler

        return decorate

    def get(self, path: str, schema: SchemaArg = None) -> Callable[[H], H]:
        """Decorator: a ``GET`` route (also serves ``HEAD``)."""
        return self.route(path, ["GET"], schema)

    def post(self, path: str, schema: SchemaArg = None) -> Callable[[H], H]:
        """Decorator: a ``POST`` route."""
        return self.route(path, ["POST"], schema)

    def put(self, path: str, schema: SchemaArg = None) -> Callable[[H], H]:
        """Decorator: a ``PUT`` route."""
        return self.route(path, ["PUT"], schema)

    def patch(self, path: str, schema: SchemaArg = None) -> Callable[[H], H]:
        """Decorator: a ``PATCH`` route."""
        return self.route(path, ["PATCH"], schema)

    def delete(self, path: str, schema: SchemaArg = None) -> Callable[[H], H]:
        """Decorator: a ``DELETE`` route."""
        return self.route(path, ["DELETE"], schema)

    def errorhandler(self, key: type[BaseException] | int) -> Callable[[H], H]:
        """Decorator: handle an exception type (and its subclasses), or an
        HTTP error status (``404``, ``500``, ...), with
        ``handler(request, error)``; its return value becomes the response.

        A status handler sees `HTTPError`s of that status (including the
        SDK's own 404/405); a ``500`` handler also sees unhandled
        exceptions.
        """
        if isinstance(key, bool) or not (
            isinstance(key, int) or (isinstance(key, type) and issubclass(key, BaseException))
        ):
            raise TypeError("errorhandler() takes an exception class or a status code")

        def decorate(handler: H) -> H:
            self._error_handlers[key] = handler
            return handler

        return decorate

    def manifest(self) -> list[ManifestRoute]:
        """The routes as the host sees them, in match order: one entry per
        method, with the body schema as JSON text."""
        entries = []
        for route in self.routes:
            schema = route.schema.text.decode("utf-8") if route.schema is not None else None
            for method in route.methods:
                entries.append(ManifestRoute(method, route.path, schema))
        return entries

    # ------------------------------------------------------------------
    # Dispatch

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]]:
        """The route serving `method` `raw_path` and its parameters.

        Raises `NotFound` or `MethodNotAllowed`.
        """
        method = method.upper()
        allowed: list[str] = []
        head_fallback: tuple[Route, dict[str, str]] | None = None
        for route in self.routes:
            params = route.pattern.match(raw_path)
            if params is None:
                continue
            if method in route.methods or "*" in route.methods:
                return route, params
            if method == "HEAD" and "GET" in route.methods and head_fallback is None:
                head_fallback = (route, params)
            for allowed_method in route.methods:
                if allowed_method not in allowed:
                    allowed.append(allowed_method)
        if head_fallback is not None:
            return head_fallback
        if not allowed:
            raise NotFound(f"no route for {raw_path}")
        if "GET" in allowed and "HEAD" not in allowed:
            allowed.insert(allowed.index("GET") + 1, "HEAD")
        raise MethodNotAllowed(allowed, f"{method} is not allowed for {raw_path}")

    def dispatch(self, request: Request) -> Response:
        """Serve `request`: route it, run the handler, convert the result.

        Never raises `Exception`: errors become responses (`HTTPError` ->
        its status with a problem+json body, anything else -> 500, with the
        traceback on stderr, not in the response).
        """
        try:
            try:
                route, params = self.match(request.method, request.raw_path)
                request.path_params = params
                if self.validate_bodies and route.schema is not None:
                    _validate_body(route.schema, request.body)
                return self.make_response(route.handler(request, **params))
            except Exception as error:  # noqa: BLE001 - every error gets a response
                return self._handle_error(request, error)
        except Exception as error:  # noqa: BLE001 - an error handler failed
            log_exception(request, error, "while handling an error")
            return internal_error_response()

    def _handle_error(self, request: Request, error: Exception) -> Response:
        handler = self._find_error_handler(error)
        if handler is not None:
            try:
                return self.make_response(handler(request, error))
            except HTTPError as second:
                return problem_response(second)
        if isinstance(error, HTTPError):
            return problem_response(error)
        log_exception(request, error)
        return internal_error_response()

    def _find_error_handler(self, error: Exception) -> ErrorHandler | None:
        handlers = self._error_handlers
        if not handlers:
            return None
        if isinstance(error, HTTPError) and error.status in handlers:
            return handlers[error.status]
        for cls in type(error).__mro__:
            if cls in handlers:
                return handlers[cls]
        if not isinstance(error, HTTPError) and 500 in handlers:
            return handlers[500]
        return None

    def make_response(self, result: Any) -> Response:
        """Convert a handler's return value to a `Response`.

        `Response` as is; ``str`` -> text/plain; ``bytes`` ->
        application/octet-stream; ``dict``/``list`` -> JSON; ``None`` -> 204;
        ``(body, status)`` or ``(body, status, headers)``; any other iterable
        (e.g. a generator) -> a streamed body of its bytes/str chunks.
        A streamed body's first chunk is produced here, so an error raised
        before any output still becomes an error response.
        """
        if isinstance(result, tuple):
            if len(result) not in (2, 3):
                raise TypeError(
                    "a handler's tuple must be (body, status) or (body, status, headers), "
                    f"not a {len(result)}-tuple"
                )
            response = _convert(result[0])
            status = result[1]
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
                raise TypeError(f"invalid status in handler result: {status!r}")
            response.status = status
            if len(result) == 3 and result[2] is not None:
                extra = Headers(result[2])
                for name in extra:
                    response.headers.remove(name)
                response.headers.extend(extra)
        else:
            response = _convert(result)
        if response.chunks is not None and not isinstance(response.chunks, ChunkStream):
            stream, kind = start_stream(response.chunks)
            response.chunks = stream
            if "content-type" not in response.headers and kind is not None:
                response.headers.set("content-type", TEXT if kind is str else OCTETS)
        if response.status in (204, 304) or response.status < 200:
            response.body = b""
            response.headers.remove("content-type")
        return response

    def call(
        self,
        method: str,
        target: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        body: bytes | str = b"",
        json: Any = None,
    ) -> Response:
        """Serve one request in-process (for tests): ``app.call("GET", "/")``.

        `json` serialises a body and sets ``content-type``.
        """
        header_obj = Headers(headers)
        data = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        if json is not None:
            data = dumpb(json)
            header_obj.setdefault("content-type", JSON)
        return self.dispatch(Request(method, target, header_obj, data, authority="localhost"))

    # ------------------------------------------------------------------
    # WSGI

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The app as a WSGI application, to run it on any WSGI server
        (``granian --interface wsgi app:app``)."""
        from ._wsgi import request_from_environ  # noqa: PLC0415

        response = self.dispatch(request_from_environ(environ))
        headers = [(name, value) for name, value in response.headers.items()]
        if response.chunks is None and response.status not in (204, 304):
            headers.append(("Content-Length", str(len(response.body))))
        reason = _reason(response.status)
        start_response(f"{response.status} {reason}", headers)
        if response.chunks is not None:
            return response.chunks  # type: ignore[return-value]
        return [response.body]


def _reason(status: int) -> str:
    from ._errors import status_phrase  # noqa: PLC0415

    return status_phrase(status) or "Unknown"


def _methods(methods: Iterable[str] | None) -> tuple[str, ...]:
    if methods is None:
        return ("GET",)
    if isinstance(methods, str):
        methods = [methods]
    result: list[str] = []
    for method in methods:
        if not isinstance(method, str) or not method or not (method == "*" or method.isalpha()):
            raise ValueError(f"invalid HTTP method {method!r}")
        upper = method.upper()
        if upper not in result:
            result.append(upper)
    if not result:
        raise ValueError("a route needs at least one method")
    return tuple(result)


def _check_handler(handler: Handler, pattern: PathPattern) -> None:
    if not callable(handler):
        raise TypeError(f"route handler must be callable, not {type(handler).__name__}")
    if inspect.iscoroutinefunction(handler) or inspect.isasyncgenfunction(handler):
        raise TypeError(f"{pattern.pattern}: async handlers are not supported")
    try:
        signature = inspect.signature(handler)
    except (TypeError, ValueError):
        return
    params = signature.parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return
    accepted = {
        p.name
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    missing = [name for name in pattern.names if name not in accepted]
    if missing:
        name = getattr(handler, "__qualname__", repr(handler))
        raise TypeError(
            f"handler {name} for {pattern.pattern} must accept the path parameters "
            f"{', '.join(missing)} (as keyword arguments)"
        )


def _convert(result: Any) -> Response:
    if isinstance(result, Response):
        return result
    if result is None:
        return Response(b"", 204)
    if isinstance(result, str):
        return Response(result.encode("utf-8"), content_type=TEXT)
    if isinstance(result, (bytes, bytearray, memoryview)):
        return Response(bytes(result), content_type=OCTETS)
    if isinstance(result, (dict, list)):
        return Response.json(result)
    if isinstance(result, Iterable) and not isinstance(result, Mapping):
        return Response.stream(result)
    raise TypeError(f"a handler returned an unsupported {type(result).__name__}: {result!r:.80}")


def _validate_body(schema: Schema, body: bytes) -> None:
    try:
        schema.check(body)
    except JSONError as error:
        raise BadRequest(f"malformed JSON: {error}") from None


def problem_response(error: HTTPError) -> Response:
    """The problem+json response for `error`."""
    return Response(dumpb(error.problem()), error.status, error.headers, PROBLEM_JSON)


def internal_error_response() -> Response:
    """A generic 500 (no details: those go to the log)."""
    return Response(dumpb(_INTERNAL_ERROR), 500, content_type=PROBLEM_JSON)


def log_exception(request: Request | None, error: BaseException, context: str = "") -> None:
    """Print `error`'s traceback to stderr (the host's log), with the
    request it happened in."""
    where = ""
    if request is not None:
        where = f" in {request.method} {request.raw_path}"
        if request.request_id:
            where += f" (request {request.request_id})"
    if context:
        where += f" {context}"
    try:
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        sys.stderr.write(f"wasmhost: unhandled exception{where}:\n{''.join(lines)}")
        sys.stderr.flush()
    except Exception:  # noqa: BLE001 - logging must never fail the request
        pass


__all__ = ["App", "ManifestRoute", "Route", "log_exception", "problem_response", "to_bytes"]
