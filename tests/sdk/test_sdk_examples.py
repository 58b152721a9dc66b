"""The example apps, run in-process (natively, without wasmhost)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from wasmhost._wsgi import build_environ, run_wsgi

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(directory: str, module: str) -> ModuleType:
    path = EXAMPLES / directory / f"{module}.py"
    spec = importlib.util.spec_from_file_location(f"example_{directory.replace('-', '_')}_{module}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # Flask finds its root path through it
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(path.parent))
    return mod


def test_hello() -> None:
    app = load_example("hello", "app").app
    response = app.call("GET", "/")
    assert (response.status, response.headers["content-type"]) == (200, "text/plain; charset=utf-8")
    assert response.text_body() == "Hello from wasmhost!\n"
    response = app.call("GET", "/hello/W%C3%B6rld", headers={"x-request-id": "r1"})
    assert response.json_body() == {"message": "Hello, Wörld!", "request_id": "r1"}
    assert app.call("GET", "/hello/").status == 404


def test_orders_api() -> None:
    module = load_example("orders-api", "app")
    app = module.app
    order = (EXAMPLES / "orders-api" / "order.json").read_bytes()
    assert 300 <= len(order) <= 500
    assert app.call("GET", "/healthz").json_body() == {"status": "ok"}

    created = app.call("POST", "/orders", body=order, headers={"content-type": "application/json"})
    assert created.status == 201
    body = created.json_body()
    assert body["total"] == 120.05
    assert body["units"] == 7
    assert created.headers["location"] == f"/orders/{body['id']}"
    assert app.call("GET", f"/orders/{body['id']}").json_body() == body
    missing = app.call("GET", "/orders/999999")
    assert missing.status == 404
    assert missing.headers["content-type"] == "application/problem+json"

    summary = app.call("POST", "/orders/summary", body=order).json_body()
    assert summary == {"customer": "c-1042", "currency": "EUR", "first_sku": "BEAN-ESP-1KG"}

    schemas = {(r.method, r.path): r.body_schema for r in app.manifest()}
    schema = json.loads(schemas[("POST", "/orders")])
    assert schema["additionalProperties"] is False
    assert schema["properties"]["items"]["minItems"] == 1
    assert schemas[("GET", "/orders/{order_id}")] is None


def test_orders_schema_accepts_sample_and_rejects_bad_orders() -> None:
    pytest.importorskip("jsonschema")
    from wasmhost.json import Schema

    schema = Schema(load_example("orders-api", "app").ORDER_SCHEMA)
    order = json.loads((EXAMPLES / "orders-api" / "order.json").read_bytes())
    assert schema.validate(order) == []
    bad = dict(order, items=[], currency="XXX", extra=1)
    paths = {error.instance_path for error in schema.validate(bad)}
    assert {"/items", "/currency", ""} <= paths


def test_flask_shop() -> None:
    # Flask is in the test venv (Makefile): a missing Flask fails here
    # rather than skipping the test.
    app = load_example("flask-shop", "shop").app

    def call(method: str, target: str, body: bytes = b"", headers=()):
        response = run_wsgi(app, build_environ(method, target, list(headers), body, authority="localhost"))
        return response.status, response.headers, response.read()

    status, headers, page = call("GET", "/")
    assert status == 200 and b"Espresso beans" in page and headers["content-type"].startswith("text/html")
    status, headers, body = call("GET", "/static/style.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    products = json.loads(call("GET", "/api/products")[2])
    assert len(products) == 5 and all(product["name"].encode() in page for product in products)
    status, _, body = call("GET", "/api/products/99")
    assert status == 404 and json.loads(body)["error"] == "not found"
    status, _, body = call(
        "POST", "/api/cart", b'{"items": [{"id": 1, "qty": 2}]}', [("content-type", "application/json")]
    )
    assert status == 200 and json.loads(body)["total"] == "49.80"
