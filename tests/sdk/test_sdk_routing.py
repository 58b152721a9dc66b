"""Route patterns and route selection."""

from __future__ import annotations

import pytest

import wasmhost
from wasmhost._routing import PathPattern


@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("/", "/", {}),
        ("/", "/x", None),
        ("/orders", "/orders", {}),
        ("/orders", "/orders/", None),
        ("/orders", "/order", None),
        ("/orders/{id}", "/orders/42", {"id": "42"}),
        ("/orders/{id}", "/orders/", None),
        ("/orders/{id}", "/orders", None),
        ("/orders/{id}", "/orders/42/items", None),
        ("/orders/{id}", "/orders/a%20b", {"id": "a b"}),
        ("/orders/{id}", "/orders/a%2Fb", {"id": "a/b"}),
        ("/orders/{id}/items/{n}", "/orders/1/items/2", {"id": "1", "n": "2"}),
        ("/files/{rest:path}", "/files/a/b/c.txt", {"rest": "a/b/c.txt"}),
        ("/files/{rest:path}", "/files/", {"rest": ""}),
        ("/files/{rest:path}", "/files", None),
        ("/{rest:path}", "/anything/at/all", {"rest": "anything/at/all"}),
        ("/caf\u00e9", "/caf%C3%A9", {}),
    ],
)
def test_pattern_match(pattern: str, path: str, expected: dict[str, str] | None) -> None:
    assert PathPattern(pattern).match(path) == expected


@pytest.mark.parametrize(
    "pattern",
    ["orders", "/a/{b:path}/c", "/a/{b}{c}", "/a/x{b}", "/a/{1b}", "/a/{b}/{b}", "/a/{b:int}", "/a?x=1"],
)
def test_invalid_patterns(pattern: str) -> None:
    with pytest.raises(ValueError):
        PathPattern(pattern)


def make_app() -> wasmhost.App:
    app = wasmhost.App()

    @app.get("/items/special")
    def special(request):
        return "special"

    @app.get("/items/{item_id}")
    def item(request, item_id):
        return f"item {item_id}"

    @app.post("/items/{item_id}")
    def update(request, item_id):
        return f"updated {item_id}"

    @app.route("/any", methods=["*"])
    def anything(request):
        return request.method

    @app.delete("/items/{item_id}")
    def never(request, item_id):
        return "shadowed by nothing"

    @app.get("/static/{path:path}")
    def static(request, path):
        return f"file {path}"

    return app


def test_literal_param_and_path_routes() -> None:
    app = make_app()
    assert app.call("GET", "/items/7").text_body() == "item 7"
    assert app.call("POST", "/items/7").text_body() == "updated 7"
    assert app.call("GET", "/static/css/site.css").text_body() == "file css/site.css"
    assert app.call("PATCH", "/any").text_body() == "PATCH"


def test_first_match_wins() -> None:
    app = make_app()
    assert app.call("GET", "/items/special").text_body() == "special"
    app2 = wasmhost.App()
    app2.get("/items/{item_id}")(lambda request, item_id: "param")
    app2.get("/items/special")(lambda request: "literal")
    assert app2.call("GET", "/items/special").text_body() == "param"


def test_404_when_no_path_matches() -> None:
    response = make_app().call("GET", "/nothing/here")
    assert response.status == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json_body()["status"] == 404


def test_405_with_allow_when_method_does_not_match() -> None:
    response = make_app().call("PUT", "/items/3")
    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD, POST, DELETE"
    assert response.json_body()["title"] == "Method Not Allowed"


def test_head_served_by_get_route() -> None:
    response = make_app().call("HEAD", "/items/3")
    assert response.status == 200
    assert response.text_body() == "item 3"


def test_query_string_is_not_part_of_the_path() -> None:
    assert make_app().call("GET", "/items/3?x=/y").text_body() == "item 3"


def test_handler_must_accept_path_params() -> None:
    app = wasmhost.App()
    with pytest.raises(TypeError, match="item_id"):
        app.get("/items/{item_id}")(lambda request: None)
    app.get("/ok/{a}")(lambda request, **params: params["a"])
    assert app.call("GET", "/ok/z").text_body() == "z"


def test_async_handlers_are_refused() -> None:
    app = wasmhost.App()

    async def handler(request):
        return "x"

    with pytest.raises(TypeError, match="async"):
        app.get("/")(handler)


def test_invalid_method() -> None:
    with pytest.raises(ValueError):
        wasmhost.App().route("/", methods=["GE T"])
