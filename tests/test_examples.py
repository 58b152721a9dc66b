"""The examples, served the way README.md tells users to serve them:
`wasmhost serve examples/hello/app.py`, `wasmhost serve
examples/orders-api/app.py`, and `wasmhost serve --interface wsgi shop:app`
in examples/flask-shop (an unmodified Flask app with templates, static files
and pure-Python dependencies from requirements.txt)."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, Server

EXAMPLES = ROOT / "examples"
START = 600


@pytest.fixture(scope="module")
def hello(wasmhost_bin):
    with Server(wasmhost_bin, EXAMPLES / "hello" / "app.py", start_timeout=START) as server:
        yield server


@pytest.fixture(scope="module")
def orders(wasmhost_bin):
    # The example keeps orders in its instance's memory: one instance, so the
    # GET after a POST cannot land on another one (which it could while the
    # first instance is still being handed back to the pool).
    with Server(wasmhost_bin, EXAMPLES / "orders-api" / "app.py", ["--max-instances", "1"], start_timeout=START) as server:
        yield server


@pytest.fixture(scope="module")
def shop(wasmhost_bin):
    with Server(wasmhost_bin, "shop:app", ["--interface", "wsgi"], cwd=EXAMPLES / "flask-shop", start_timeout=START) as server:
        yield server


def test_hello_routes(hello):
    status, headers, body = hello.request("GET", "/")
    assert status == 200 and body == b"Hello from wasmhost!\n"
    assert headers["content-type"].startswith("text/plain")
    status, headers, body = hello.request("GET", "/hello/Ada")
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert "Ada" in json.loads(body)["message"]
    assert hello.request("GET", "/no/such/page")[0] == 404
    status, headers, _ = hello.request("POST", "/")
    assert status == 405 and "GET" in headers["allow"]


def test_orders_api_validates_on_the_host(orders):
    order = (EXAMPLES / "orders-api" / "order.json").read_bytes()
    status, _, body = orders.request("POST", "/orders", body=order, headers={"content-type": "application/json"})
    assert status == 201, body
    created = json.loads(body)
    status, _, body = orders.request("GET", f"/orders/{created['id']}")
    assert status == 200 and json.loads(body)["id"] == created["id"]
    assert orders.request("GET", "/orders/does-not-exist")[0] == 404

    status, headers, body = orders.request("POST", "/orders", body=order[:-20], headers={"content-type": "application/json"})
    assert status == 400 and headers["content-type"] == "application/problem+json"
    broken = json.loads(order)
    broken["items"][0]["qty"] = 0
    broken["currency"] = "XXX"
    status, headers, body = orders.request("POST", "/orders", body=json.dumps(broken).encode(), headers={"content-type": "application/json"})
    assert status == 422, body
    paths = {error["instancePath"] for error in json.loads(body)["errors"]}
    assert paths == {"/items/0/qty", "/currency"}, body


def test_flask_shop_serves_templates_static_and_json(shop):
    status, headers, body = shop.request("GET", "/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    products = json.loads(shop.request("GET", "/api/products")[2])
    assert products and all(product["name"] in body.decode() for product in products)
    status, headers, css = shop.request("GET", "/static/style.css")
    assert status == 200 and headers["content-type"].startswith("text/css")
    assert css == (EXAMPLES / "flask-shop" / "static" / "style.css").read_bytes()
    first = products[0]
    status, _, body = shop.request("GET", f"/api/products/{first['id']}")
    assert status == 200 and json.loads(body)["name"] == first["name"]
    status, headers, body = shop.request("GET", "/api/products/999999")
    assert status == 404 and headers["content-type"].startswith("application/json")
    status, _, body = shop.request(
        "POST", "/api/cart", body=json.dumps({"items": [{"id": first["id"], "qty": 2}]}).encode(),
        headers={"content-type": "application/json"},
    )
    assert status == 200, body


@pytest.mark.time_limit(900)
def test_dev_loop_for_a_wsgi_app(wasmhost_bin, tmp_path):
    """`wasmhost dev --interface wsgi shop:app`: an edit to the Flask app is
    served within seconds, dependencies come from requirements.txt."""
    app_dir = tmp_path / "flask-shop"
    shutil.copytree(EXAMPLES / "flask-shop", app_dir, ignore=shutil.ignore_patterns("__pycache__"))
    with Server(wasmhost_bin, "shop:app", ["--interface", "wsgi"], subcommand="dev", cwd=app_dir, start_timeout=START) as server:
        products = json.loads(server.request("GET", "/api/products")[2])
        name = products[0]["name"]
        source = app_dir / "shop.py"
        text = source.read_text()
        assert name in text
        tmp = source.with_name("shop.py.swp")
        tmp.write_text(text.replace(name, "Edited Product"))
        tmp.replace(source)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            status, _, body = server.request("GET", "/api/products")
            if status == 200 and b"Edited Product" in body:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the edit was not served within 5 s; log:\n{server.log()[-3000:]}")
        status, _, body = server.request("GET", "/")
        assert status == 200 and b"Edited Product" in body, "templates are read from the source tree"


def test_multi_tenant_example_config(wasmhost_bin):
    """examples/multi-tenant/wasmhost.toml: the three examples in one
    process, by prefix and by Host."""
    config = EXAMPLES / "multi-tenant" / "wasmhost.toml"
    with Server(wasmhost_bin, "", config=config, start_timeout=START) as server:
        assert server.request("GET", "/")[2] == b"Hello from wasmhost!\n"
        order = (EXAMPLES / "orders-api" / "order.json").read_bytes()
        status, _, body = server.request("POST", "/orders", body=order, headers={"content-type": "application/json"})
        assert status == 201, body
        status, headers, body = server.request("GET", "/", headers={"host": "shop.localhost"})
        assert status == 200 and headers["content-type"].startswith("text/html")
        status, _, body = server.admin_request("GET", "/apps")
        assert {app["name"] for app in json.loads(body)["apps"]} == {"hello", "orders", "shop"}
