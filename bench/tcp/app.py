"""Benchmark guest for outbound TCP (bench/tcp.sh): times N redis-py calls
inside the guest (loop.py), so the numbers are what an app sees of a round
trip to Redis through `wasi:sockets`, without HTTP around it.

`GET /bench?op=OP&n=N&size=BYTES&port=P` answers {"op", "n", "us_per_call"}
for OP in raw-ping, ping, get, set, incr, against the Redis on 127.0.0.1:P.
"""

import redis

import loop
import wasmhost

app = wasmhost.App()
_clients: dict[int, redis.Redis] = {}


@app.get("/bench")
def bench(request):
    port = int(request.query.first("port", "6379"))
    client = _clients.setdefault(port, redis.Redis(host="127.0.0.1", port=port))
    op, n = request.query.first("op", "get"), int(request.query.first("n", "1000"))
    us = loop.run(client, op, n, int(request.query.first("size", "100")))
    return {"op": op, "n": n, "us_per_call": us}
