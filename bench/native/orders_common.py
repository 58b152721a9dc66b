"""examples/orders-api as a plain Flask app, for native CPython: the
reference bench/platform.sh measures wasmhost against.

Same routes, statuses, headers and JSON bodies as the wasmhost app; what
wasmhost's host does before Python runs (reading the body, 415 for a body
that is not JSON, 400 for malformed JSON, 422 listing the schema failures,
all as application/problem+json) is done here in Python, in front of the
same handler code. The JSON Schema is read from examples/orders-api/app.py
itself, so both sides always validate against the same schema.

`make_app(validate)` builds the app; `validate(instance)` returns the
failures as ``(instance_path, schema_path, message)`` tuples (JSON
Pointers), at most 100. orders_flask.py passes the `jsonschema` package,
orders_flask_rs.py `jsonschema-rs`.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Callable, Iterable
from decimal import Decimal
from http import HTTPStatus
from pathlib import Path

from flask import Flask, Response, request

ORDERS_APP = Path(__file__).resolve().parents[2] / "examples" / "orders-api" / "app.py"
PROBLEM_JSON = "application/problem+json"
MAX_ERRORS = 100

Failure = tuple[str, str, str]


def load_schema(path: Path = ORDERS_APP, name: str = "ORDER_SCHEMA") -> dict:
    """The value of the module-level constant `name` in `path`, computed
    from that file's literal assignments (no import: the wasmhost SDK does
    not exist natively)."""
    namespace: dict = {}
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                code = compile(ast.Expression(node.value), str(path), "eval")
                namespace[node.targets[0].id] = eval(code, {"__builtins__": {}}, namespace)  # noqa: S307
            except Exception:  # noqa: BLE001 - not a literal; the schema never depends on it
                continue
    if name not in namespace:
        raise RuntimeError(f"{path} defines no literal {name}")
    return namespace[name]


def pointer(parts: Iterable[object]) -> str:
    """RFC 6901 JSON Pointer of a path given as keys and indexes."""
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)


def _json_response(obj: object, status: int = 200, content_type: str = "application/json",
                   headers: dict[str, str] | None = None) -> Response:
    # Like the SDK's JSON responses: compact, keys in insertion order, UTF-8.
    body = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    return Response(body, status=status, content_type=content_type, headers=headers)


# Titles as wasmhost's host and SDK spell them (RFC 9110 names).
TITLES = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 415: "Unsupported Media Type",
          422: "Unprocessable Content"}


def problem(status: int, detail: str | None = None, **extra: object) -> Response:
    """An RFC 9457 problem+json response, shaped like wasmhost's."""
    body: dict[str, object] = {"type": "about:blank", "title": TITLES.get(status) or HTTPStatus(status).phrase,
                               "status": status}
    if detail is not None:
        body["detail"] = detail
    body.update(extra)
    return _json_response(body, status, PROBLEM_JSON)


def _is_json_media_type(content_type: str) -> bool:
    essence = content_type.split(";", 1)[0].strip().lower()
    kind, slash, subtype = essence.partition("/")
    return bool(slash and kind) and (essence == "application/json" or (len(subtype) > 5 and subtype.endswith("+json")))


def make_app(validate: Callable[[object], list[Failure]]) -> Flask:
    app = Flask(__name__)
    orders: dict[str, dict] = {}
    next_id = [1]

    def validated_body():
        """The parsed body, or the problem response the host would send."""
        # The same checks, in the same order and words, as wasmhost's
        # check_body (crates/wasmhost-platform/src/routes.rs).
        content_type = request.headers.get("content-type")
        if content_type is not None and not _is_json_media_type(content_type):
            return None, problem(415, f"the request body must be JSON (`application/json`), not `{content_type}`")
        body = request.get_data(cache=False)
        if not body.strip(b" \t\n\r"):
            return None, problem(400, "the request body is empty; this endpoint expects a JSON document")
        try:
            document = json.loads(body)
        except UnicodeDecodeError:
            return None, problem(400, "the request body is not valid JSON: invalid UTF-8")
        except json.JSONDecodeError as err:
            return None, problem(
                400, f"the request body is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"
            )
        failures = validate(document)
        if failures:
            count = len(failures)
            return None, problem(
                422,
                f"the request body does not match the endpoint's JSON Schema ({count} problem{'' if count == 1 else 's'})",
                errors=[{"instancePath": i, "schemaPath": s, "message": m} for i, s, m in failures],
            )
        return document, None

    @app.get("/healthz")
    def healthz():
        return _json_response({"status": "ok"})

    @app.post("/orders")
    def create_order():
        order, refused = validated_body()
        if refused is not None:
            return refused
        total = sum(
            (Decimal(str(item["price"])) * item["qty"] for item in order["items"]),
            Decimal("0"),
        )
        order_id = str(next_id[0])
        next_id[0] += 1
        stored = {
            "id": order_id,
            "customer": order["customer"]["id"],
            "currency": order["currency"],
            "lines": len(order["items"]),
            "units": sum(item["qty"] for item in order["items"]),
            "total": float(total.quantize(Decimal("0.01"))),
        }
        orders[order_id] = stored
        return _json_response(stored, 201, headers={"location": f"/orders/{order_id}"})

    @app.get("/orders/<order_id>")
    def get_order(order_id: str):
        order = orders.get(order_id)
        if order is None:
            return problem(404, f"no order {order_id}")
        return _json_response(order)

    @app.post("/orders/summary")
    def summarize():
        order, refused = validated_body()
        if refused is not None:
            return refused
        return _json_response(
            {"customer": order["customer"]["id"], "currency": order["currency"], "first_sku": order["items"][0]["sku"]}
        )

    @app.errorhandler(404)
    def not_found(_error):
        return problem(404, f"no route for {request.path}")

    @app.errorhandler(405)
    def method_not_allowed(error):
        response = problem(405)
        allowed = getattr(error, "valid_methods", None)
        if allowed:
            response.headers["allow"] = ", ".join(m for m in allowed if m not in ("HEAD", "OPTIONS"))
        return response

    return app
