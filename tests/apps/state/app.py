"""Test app for `wasi:keyvalue` and `wasi:config` (SDK app, world `app`):
every operation of `wasmhost.kv` and `wasmhost.config` over HTTP, with the
bucket named in the path, so tests can try any name.

- `GET|PUT|DELETE /kv/{bucket}/{key}`: get (404 when unset), set to the
  body, delete. `GET /kv/{bucket}/{key}?text=1` reads it with `get_text`.
- `POST /kv/{bucket}/{key}/incr?by=N`: `increment`, answers the new value.
- `GET /kv/{bucket}?prefix=P`: the keys, as a JSON list.
- `POST /kv/{bucket}?many=set|get|delete`: `set_many` (a JSON object of
  str values), `get_many`/`delete_many` (a JSON list of keys).
- `GET /kv/{bucket}/{key}/dict`: the mapping protocol: `in`, `[]`, `len`.
- `GET /config/{key}`: `wasmhost.config.get`; `GET /config`: its keys.
- `GET /pid`: an id of this instance (to tell instances apart).

Failures are JSON `{"error": class name, "message": ...}`: 404 for
NoSuchBucket, 413 for LimitExceeded, 409 for other KeyValueError.
"""

import json
import secrets

import wasmhost

app = wasmhost.App()

_instance: list[str] = []


def instance() -> str:
    """A random id of this instance, made at its first request (a value made
    at import would be in the build's snapshot, the same in every instance)."""
    if not _instance:
        _instance.append(secrets.token_hex(8))
    return _instance[0]


def failure(err: wasmhost.kv.KeyValueError) -> wasmhost.Response:
    status = 404 if isinstance(err, wasmhost.kv.NoSuchBucket) else 413 if isinstance(err, wasmhost.kv.LimitExceeded) else 409
    body = json.dumps({"error": type(err).__name__, "message": str(err)})
    return wasmhost.Response(body, status, content_type="application/json")


def guarded(handler):
    def run(request, **params):
        try:
            return handler(request, **params)
        except wasmhost.kv.KeyValueError as err:
            return failure(err)

    run.__name__ = handler.__name__
    return run


@app.get("/kv/{bucket}/{key}")
@guarded
def get(request, bucket, key):
    store = wasmhost.kv.open(bucket)
    if request.query.first("text"):
        value = store.get_text(key)
        if value is None:
            raise wasmhost.NotFound()
        return value
    value = store.get(key)
    if value is None:
        return wasmhost.Response("", 404)
    return wasmhost.Response(value, 200, content_type="application/octet-stream")


@app.put("/kv/{bucket}/{key}")
@guarded
def put(request, bucket, key):
    wasmhost.kv.open(bucket).set(key, request.body)
    return "", 204


@app.delete("/kv/{bucket}/{key}")
@guarded
def delete(request, bucket, key):
    wasmhost.kv.open(bucket).delete(key)
    return "", 204


@app.post("/kv/{bucket}/{key}/incr")
@guarded
def incr(request, bucket, key):
    by = int(request.query.first("by", "1"))
    return {"value": wasmhost.kv.open(bucket).increment(key, by), "instance": instance()}


@app.get("/kv/{bucket}/{key}/dict")
@guarded
def mapping(request, bucket, key):
    store = wasmhost.kv.open(bucket)
    present = key in store
    return {"in": present, "value": store[key].decode() if present else None, "len": len(store)}


@app.get("/kv/{bucket}")
@guarded
def keys(request, bucket):
    return list(wasmhost.kv.open(bucket).keys(prefix=request.query.first("prefix", "")))


@app.post("/kv/{bucket}")
@guarded
def many(request, bucket):
    store = wasmhost.kv.open(bucket)
    mode = request.query.first("many")
    data = request.json()
    if mode == "set":
        store.set_many(data)
        return "", 204
    if mode == "get":
        return {key: value.decode() for key, value in store.get_many(data).items()}
    store.delete_many(data)
    return "", 204


@app.get("/config/{key}")
def config_value(request, key):
    return {"value": wasmhost.config.get(key)}


@app.get("/config")
def config_keys(request):
    return sorted(wasmhost.config)


@app.get("/pid")
def pid(request):
    return instance()
