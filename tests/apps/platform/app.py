"""Test app for the host's JSON and validation imports and for route-level
validation. Built with `wasmhost build` (SDK app, world `app`).

- `POST /json/check`, `/json/minify[?sort=1]`, `/json/extract?p=PTR&p=...`:
  the body goes to the host call as is; the answer is JSON saying what came
  back (`ok`, or the error's kind, message, line and column).
- `POST /schema/compile`: the body is a schema; `ok` or the compile error.
- `POST /schema/keep`: the same, keeping the compiled schema alive (its
  host handle) in a module global; `POST /schema/release` drops them all.
- `POST /schema/validate/{name}`: validates the body against one of the
  schemas below, compiled once per instance.
- `POST /orders`: host-validated against `ORDER`; counts the requests that
  reached Python (`GET /count`).
- `GET /slow?ms=N`: keeps its instance busy for N milliseconds.
- `POST /body/digest`: the size and SHA-256 of the body as the app read it
  (in one host call when the host holds it, else streamed).
- `GET /headers`: the request's header fields, in order, as JSON pairs.
- `GET /bad-header`: a response with a control character in a header
  value, which the SDK lets through and the host refuses.
"""

import gc
import hashlib
import time

import wasmhost
from wasmhost import json as hjson

app = wasmhost.App()

ORDER = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": {
        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"},
        "qty": {"type": "integer", "minimum": 1},
    },
    "additionalProperties": False,
}

SCHEMAS = {
    "order": ORDER,
    # A tree: recursive $ref.
    "tree": {
        "$defs": {"node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
        "$ref": "#/$defs/node",
    },
    # A pattern that backtracks catastrophically in a backtracking engine.
    "evil-regex": {"type": "string", "pattern": "^(a+)+$"},
}

_compiled = {}
_kept = []
_reached = {"orders": 0}


def _error(err):
    return {"ok": False, "kind": str(getattr(err, "kind", "")), "message": str(getattr(err, "message", err)),
            "line": getattr(err, "line", 0), "column": getattr(err, "column", 0)}


@app.post("/json/check")
def check(request):
    try:
        hjson.check(request.body)
    except hjson.JSONError as err:
        return _error(err)
    return {"ok": True}


@app.post("/json/minify")
def minify(request):
    try:
        out = hjson.minify(request.body, sort_keys=request.query.get("sort") == ["1"])
    except hjson.JSONError as err:
        return _error(err)
    return wasmhost.Response(out, content_type="application/json")


@app.post("/json/extract")
def extract(request):
    try:
        values = hjson.extract(request.body, *request.query.get("p", []))
    except hjson.JSONError as err:
        return _error(err)
    return {"ok": True, "values": [None if v is None else v.decode() for v in values]}


@app.post("/schema/compile")
def compile_schema(request):
    try:
        hjson.Schema(request.body)
    except Exception as err:  # noqa: BLE001 - the test reads the message
        return {"ok": False, "message": str(err)}
    return {"ok": True}


@app.post("/schema/keep")
def keep_schema(request):
    try:
        _kept.append(hjson.Schema(request.body))
    except Exception as err:  # noqa: BLE001 - the test reads the message
        return {"ok": False, "message": str(err), "kept": len(_kept)}
    return {"ok": True, "kept": len(_kept)}


@app.post("/schema/release")
def release_schemas(request):
    released = len(_kept)
    _kept.clear()
    gc.collect()  # drops the host handles of any schema caught in a cycle
    return {"released": released}


@app.post("/schema/validate/{name}")
def validate(request, name):
    if name not in SCHEMAS:
        raise wasmhost.NotFound(f"no schema {name}")
    if name not in _compiled:
        _compiled[name] = hjson.Schema(SCHEMAS[name])
    try:
        errors = _compiled[name].validate(request.body)
    except hjson.JSONError as err:
        return _error(err)
    return {"ok": True, "errors": [{"instance_path": e.instance_path, "message": e.message} for e in errors]}


@app.post("/orders", schema=ORDER)
def create_order(request):
    _reached["orders"] += 1
    order = request.json()
    return wasmhost.Response.json({"sku": order["sku"], "qty": order["qty"]}, status=201)


@app.get("/count")
def count(request):
    return dict(_reached)


@app.get("/slow")
def slow(request):
    ms = int(request.query.get("ms", ["1000"])[0])
    time.sleep(ms / 1000)
    return "done"


@app.get("/boom")
def boom(request):
    raise RuntimeError("boom: an unhandled exception in a handler")


@app.post("/body/digest")
def body_digest(request):
    body = request.body
    return {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


@app.get("/headers")
def headers(request):
    return {"headers": list(request.headers.items())}


@app.get("/bad-header")
def bad_header(request):
    return wasmhost.Response("never sent", headers={"x-bad": "a\x01b"})
