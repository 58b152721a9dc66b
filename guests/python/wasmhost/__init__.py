"""wasmhost: the Python SDK for apps served by wasmhost.

::

    import wasmhost

    app = wasmhost.App()

    @app.get("/")
    def index(request):
        return "Hello from wasmhost!\\n"

    @app.post("/orders", schema={"type": "object", "required": ["items"]})
    def create_order(request):
        order = request.json()          # already validated by the host
        return {"id": 1, "items": order["items"]}, 201

Build and serve it with ``wasmhost serve app.py``. See `App`, `Request`,
`Response`, the `HTTPError` family, `wasmhost.json` (host-backed JSON
helpers and schema validation), `wasmhost.kv` (persistent key-value
buckets), `wasmhost.db` (SQL databases, DB-API 2.0) and `env` / `config`
(config values, secrets, environment).

Plain WSGI apps (Flask, ...) are served too, unmodified: the build picks
them up with ``--interface wsgi`` (see `wasmhost._wsgi`).
"""

from __future__ import annotations

from . import db, json, kv
from ._app import App, ManifestRoute, Route
from ._config import Config, config, env
from ._datastructures import Headers, QueryDict
from ._errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    HTTPError,
    InternalServerError,
    MethodNotAllowed,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    UnprocessableEntity,
    UnsupportedMediaType,
)
from ._fetch import FetchResponse, OutboundError, fetch
from ._request import Request
from ._response import Response
from .json import JSONError, Schema, SchemaError, ValidationError, ValidationFailed

__version__ = "0.1.0"

__all__ = [
    "App",
    "BadRequest",
    "Config",
    "Conflict",
    "FetchResponse",
    "Forbidden",
    "Gone",
    "HTTPError",
    "Headers",
    "InternalServerError",
    "JSONError",
    "ManifestRoute",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "OutboundError",
    "PayloadTooLarge",
    "QueryDict",
    "Request",
    "Response",
    "Route",
    "Schema",
    "SchemaError",
    "ServiceUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnprocessableEntity",
    "UnsupportedMediaType",
    "ValidationError",
    "ValidationFailed",
    "__version__",
    "config",
    "db",
    "env",
    "fetch",
    "json",
    "kv",
]
