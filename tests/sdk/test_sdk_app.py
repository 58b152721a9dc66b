"""Handler results, errors and the manifest."""

from __future__ import annotations

import json

import pytest

import wasmhost
from wasmhost import App, Response


def serve(result, method: str = "GET"):
    """The response an app gives when its only handler returns `result`."""
    app = App()
    app.route("/", methods=[method])(lambda request: result)
    return app.call(method, "/")


# --------------------------------------------------------------------------
# Return-value conversion


def test_str_is_text() -> None:
    response = serve("héllo")
    assert response.status == 200
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.body == "héllo".encode()


def test_bytes_are_octets() -> None:
    response = serve(b"\x00\x01")
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.body == b"\x00\x01"


@pytest.mark.parametrize("value", [{"a": [1, "é"]}, [1, 2, {"b": None}]])
def test_dict_and_list_are_json(value) -> None:
    response = serve(value)
    assert response.headers["content-type"] == "application/json"
    assert json.loads(response.body) == value


def test_json_encodes_common_types() -> None:
    import datetime
    import decimal
    import uuid

    value = {
        "when": datetime.date(2024, 5, 1),
        "price": decimal.Decimal("1.10"),
        "id": uuid.UUID(int=1),
    }
    assert serve(value).json_body() == {
        "when": "2024-05-01",
        "price": "1.10",
        "id": "00000000-0000-0000-0000-000000000001",
    }


def test_none_is_204_without_body() -> None:
    response = serve(None)
    assert response.status == 204
    assert response.body == b""
    assert "content-type" not in response.headers


def test_tuple_status_and_headers() -> None:
    response = serve(({"id": 1}, 201, {"Location": "/x/1"}))
    assert response.status == 201
    assert response.headers["location"] == "/x/1"
    assert response.json_body() == {"id": 1}
    response = serve(("gone", 410))
    assert (response.status, response.text_body()) == (410, "gone")
    response = serve(("x", 200, [("set-cookie", "a=1"), ("set-cookie", "b=2")]))
    assert response.headers.getlist("Set-Cookie") == ["a=1", "b=2"]


def test_bad_tuple_is_500() -> None:
    assert serve(("x", 200, {}, "extra")).status == 500
    assert serve(("x", "200")).status == 500


def test_response_object_as_is() -> None:
    response = serve(Response("<p>hi</p>", 202, {"x-a": "1"}, content_type="text/html"))
    assert response.status == 202
    assert response.headers["content-type"] == "text/html"
    assert response.headers["x-a"] == "1"


def test_response_constructors() -> None:
    assert Response.json({"a": 1}, status=201).body == b'{"a":1}'
    assert Response.text("hi").headers["content-type"] == "text/plain; charset=utf-8"
    redirect = Response.redirect("/elsewhere")
    assert (redirect.status, redirect.headers["location"]) == (302, "/elsewhere")
    with pytest.raises(ValueError):
        Response(status=42)
    with pytest.raises(TypeError):
        Response({"a": 1})  # type: ignore[arg-type]


def test_generator_streams_text_chunks() -> None:
    closed = []

    def chunks():
        try:
            yield "a"
            yield ""
            yield "b"
        finally:
            closed.append(True)

    response = serve(chunks())
    assert response.is_stream
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.read() == b"ab"
    assert closed == [True]


def test_response_stream_of_bytes() -> None:
    response = serve(Response.stream(iter([b"x", b"y"]), status=206))
    assert response.status == 206
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.read() == b"xy"


def test_stream_error_before_first_chunk_is_500(capsys) -> None:
    def chunks():
        raise RuntimeError("secret failure")
        yield b"never"  # pragma: no cover

    response = serve(chunks())
    assert response.status == 500
    assert b"secret" not in response.read()
    assert "secret failure" in capsys.readouterr().err


def test_unsupported_result_is_500() -> None:
    assert serve(3.14).status == 500


# --------------------------------------------------------------------------
# Errors


def test_http_error_is_problem_json() -> None:
    app = App()

    @app.get("/orders/{order_id}")
    def get_order(request, order_id):
        raise wasmhost.NotFound(f"no order {order_id}")

    response = app.call("GET", "/orders/9")
    assert response.status == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json_body() == {
        "type": "about:blank",
        "title": "Not Found",
        "status": 404,
        "detail": "no order 9",
    }


def test_http_error_with_status_headers_and_extra_members() -> None:
    error = wasmhost.HTTPError(429, "slow down", headers={"retry-after": "5"}, limit=10)
    response = serve_raising(error)
    assert response.status == 429
    assert response.headers["retry-after"] == "5"
    assert response.json_body()["limit"] == 10
    assert response.json_body()["title"] == "Too Many Requests"
    with pytest.raises(ValueError):
        wasmhost.HTTPError(200)


@pytest.mark.parametrize(
    ("cls", "status"),
    [
        (wasmhost.BadRequest, 400),
        (wasmhost.Unauthorized, 401),
        (wasmhost.Forbidden, 403),
        (wasmhost.Conflict, 409),
        (wasmhost.UnprocessableEntity, 422),
        (wasmhost.ServiceUnavailable, 503),
    ],
)
def test_http_error_subclasses(cls, status) -> None:
    response = serve_raising(cls("nope"))
    assert response.status == status
    assert response.json_body()["detail"] == "nope"


def serve_raising(error: BaseException):
    def handler(request):
        raise error

    app = App()
    app.get("/")(handler)
    return app.call("GET", "/")


def test_unhandled_exception_is_500_without_traceback(capsys) -> None:
    response = serve_raising(KeyError("database-password"))
    assert response.status == 500
    body = response.read()
    assert b"database-password" not in body
    assert b"Traceback" not in body
    assert json.loads(body)["status"] == 500
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "database-password" in err


def test_error_handlers() -> None:
    app = App()

    class Missing(Exception):
        pass

    @app.get("/missing")
    def missing(request):
        raise Missing("thing")

    @app.get("/boom")
    def boom(request):
        raise ZeroDivisionError

    @app.errorhandler(Missing)
    def on_missing(request, error):
        return {"missing": str(error)}, 404

    @app.errorhandler(404)
    def on_404(request, error):
        return "custom 404", 404

    @app.errorhandler(500)
    def on_500(request, error):
        return f"custom 500 for {type(error).__name__}", 500

    assert app.call("GET", "/missing").json_body() == {"missing": "thing"}
    response = app.call("GET", "/nowhere")
    assert (response.status, response.text_body()) == (404, "custom 404")
    response = app.call("GET", "/boom")
    assert (response.status, response.text_body()) == (500, "custom 500 for ZeroDivisionError")


def test_failing_error_handler_is_500(capsys) -> None:
    app = App()
    app.get("/")(lambda request: 1 / 0)

    @app.errorhandler(ZeroDivisionError)
    def broken(request, error):
        raise RuntimeError("handler broke")

    response = app.call("GET", "/")
    assert response.status == 500
    assert b"handler broke" not in response.read()
    assert "handler broke" in capsys.readouterr().err


def test_request_json_error_is_400() -> None:
    app = App()
    app.post("/")(lambda request: request.json())
    response = app.call("POST", "/", body=b"{not json")
    assert response.status == 400
    assert response.json_body()["detail"].startswith("malformed JSON")


# --------------------------------------------------------------------------
# Manifest


ORDER_SCHEMA = {"type": "object", "required": ["items"], "properties": {"items": {"type": "array"}}}


def test_manifest_lists_routes_in_order_with_schema_text() -> None:
    app = App()
    app.get("/")(lambda request: "")
    app.post("/orders", schema=ORDER_SCHEMA)(lambda request: "")
    app.route("/orders/{id}", methods=["GET", "delete"])(lambda request, id: "")
    app.route("/files/{rest:path}", methods=["*"])(lambda request, rest: "")
    manifest = app.manifest()
    assert [(r.method, r.path) for r in manifest] == [
        ("GET", "/"),
        ("POST", "/orders"),
        ("GET", "/orders/{id}"),
        ("DELETE", "/orders/{id}"),
        ("*", "/files/{rest:path}"),
    ]
    assert manifest[0].body_schema is None
    assert isinstance(manifest[1].body_schema, str)
    assert json.loads(manifest[1].body_schema) == ORDER_SCHEMA


def test_schema_accepts_json_text() -> None:
    app = App()
    app.post("/", schema='{"type": "object"}')(lambda request: "")
    assert json.loads(app.manifest()[0].body_schema) == {"type": "object"}
    with pytest.raises(ValueError):
        app.post("/bad", schema="{not json")(lambda request: "")


def test_schema_not_validated_in_guest_by_default() -> None:
    app = App()
    app.post("/", schema={"type": "object"})(lambda request: request.body)
    assert app.call("POST", "/", body=b"[1]").body == b"[1]"


def test_validate_bodies_in_python() -> None:
    pytest.importorskip("jsonschema")
    app = App(validate_bodies=True)
    app.post("/", schema=ORDER_SCHEMA)(lambda request: "ok")
    assert app.call("POST", "/", json={"items": []}).status == 200
    response = app.call("POST", "/", json={"items": 3})
    assert response.status == 422
    assert response.json_body()["errors"][0]["instance_path"] == "/items"
    assert app.call("POST", "/", body=b"{").status == 400


# --------------------------------------------------------------------------
# The app as a WSGI application


def test_app_is_a_wsgi_app() -> None:
    from wasmhost._wsgi import build_environ

    app = App()

    @app.post("/echo/{word}")
    def echo(request, word):
        return {"word": word, "body": request.text, "q": request.query.getlist("q")}

    environ = build_environ("POST", "/echo/h%C3%A9?q=1&q=2", [("content-type", "text/plain")], b"data")
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = headers

    body = b"".join(app(environ, start_response))
    assert captured["status"] == "200 OK"
    assert ("Content-Length", str(len(body))) in captured["headers"]
    assert json.loads(body) == {"word": "hé", "body": "data", "q": ["1", "2"]}
