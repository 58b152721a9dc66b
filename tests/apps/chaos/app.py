"""Test app `chaos` for the chaos/soak test (tests/chaos.py). SDK app, built
with `wasmhost build`; the test builds it twice, as is (VERSION = "1") and
with VERSION = "2", and swaps between the two builds while under load.

Every answer from Python names the app (the `CHAOS_APP` environment variable,
set per app in the config file) and the build's VERSION, so a response from
the wrong app or the wrong version is visible to the client.

- `POST /orders`: validated by the host against `ORDER` (malformed JSON is a
  400, a body that is not JSON a 415, a schema violation a 422, none of them
  reaching Python); answers 201 ``{"app", "version", "nonce"}`` echoing the
  client's nonce, so a response delivered to the wrong request is visible too.
- `GET /info`: 200 ``{"app", "version"}``.
- `GET /raise`: an unhandled exception; the SDK answers 500, the instance
  keeps serving.
- `GET /trap`: `os.abort()`, a wasm trap; the host answers 500 and discards
  the instance.
- `GET /loop`: spins forever; the host stops it at the request timeout (504)
  and discards the instance.
- `GET /slow?ms=N`: sleeps N ms, then 200 (used by clients that hang up while
  waiting for the answer).
"""

import os
import time

import wasmhost

VERSION = "1"

app = wasmhost.App()

ORDER = {
    "type": "object",
    "required": ["sku", "qty", "nonce"],
    "properties": {
        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{3}$"},
        "qty": {"type": "integer", "minimum": 1, "maximum": 1000},
        "nonce": {"type": "string", "maxLength": 64},
    },
    "additionalProperties": False,
}


def _name():
    return wasmhost.env("CHAOS_APP", "?")


@app.post("/orders", schema=ORDER)
def create_order(request):
    order = request.json()
    return wasmhost.Response.json(
        {"app": _name(), "version": VERSION, "nonce": order["nonce"], "qty": order["qty"]}, status=201
    )


@app.get("/info")
def info(request):
    return {"app": _name(), "version": VERSION}


@app.get("/raise")
def fail(request):
    raise RuntimeError("chaos: deliberate unhandled exception")


@app.get("/trap")
def trap(request):
    os.abort()


@app.get("/loop")
def loop(request):
    while True:
        pass


@app.get("/slow")
def slow(request):
    ms = int(request.query.get("ms", ["100"])[0])
    time.sleep(ms / 1000)
    return {"app": _name(), "version": VERSION, "slept_ms": ms}
