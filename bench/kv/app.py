"""Benchmark guest for `wasmhost.kv` (bench/kv.sh): times N calls of one
operation inside the guest, so the numbers are the cost of a call as an app
sees it (Python binding, host call, SQLite), without HTTP around it.

`GET /bench?op=OP&n=N&size=BYTES` answers {"op", "n", "us_per_call"} for OP in
get, get-miss, set, exists, increment, get-many-10, set-many-10, and
`dict-get` (a Python dict lookup: the loop's own overhead).
"""

import time

import wasmhost

app = wasmhost.App()
store = wasmhost.kv.open("default")


@app.get("/bench")
def bench(request):
    op = request.query.first("op", "get")
    n = int(request.query.first("n", "1000"))
    value = b"x" * int(request.query.first("size", "100"))
    keys = [f"key:{i % 100}" for i in range(n)]
    store.set_many({f"key:{i}": value for i in range(100)})
    batch = [f"key:{i}" for i in range(10)]
    local = {key: value for key in keys}
    calls = {
        "get": lambda key: store.get(key),
        "get-miss": lambda key: store.get("absent:" + key),
        "set": lambda key: store.set(key, value),
        "exists": lambda key: store.exists(key),
        "increment": lambda key: store.increment("counter:" + key),
        "get-many-10": lambda key: store.get_many(batch),
        "set-many-10": lambda key: store.set_many({k: value for k in batch}),
        "dict-get": lambda key: local.get(key),
    }
    call = calls[op]
    started = time.perf_counter_ns()
    for key in keys:
        call(key)
    elapsed = time.perf_counter_ns() - started
    return {"op": op, "n": n, "us_per_call": round(elapsed / n / 1000, 2)}
