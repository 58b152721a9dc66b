"""Test app for outbound TCP (`wasi:sockets`, SDK app): redis-py and raw
sockets, with the target named in the query, so tests can try any address.

- `GET /redis/incr?host=H&port=P&key=K`: INCR with redis-py (one client per
  host and port, kept by the instance: its pooled connection stays open
  between requests); answers `{"value": n}`.
- `GET /connect?host=H&port=P`: a raw `socket.create_connection`, then
  `PING`; answers `{"reply": ...}`.
- `GET /resolve?host=H`: `socket.getaddrinfo`; answers the addresses.
- `GET /listen`: bind to `0.0.0.0:0` and listen. `GET /udp`: a UDP datagram
  to `127.0.0.1:9`.
- `GET /sockets?n=N&keep=1`: opens up to N TCP sockets, stopping at the
  first error; closes them unless `keep`; answers `{"opened": k, ...}`.

A failure answers 502 with `{"error": class name, "errno": ..., "message":
...}`.
"""

import json
import socket

import redis

import wasmhost

app = wasmhost.App()

_clients: dict[tuple[str, int], redis.Redis] = {}
_kept: list[socket.socket] = []


def answer(value, status: int = 200) -> wasmhost.Response:
    return wasmhost.Response(json.dumps(value), status, content_type="application/json")


def failure(err: BaseException, **extra) -> wasmhost.Response:
    error = {"error": type(err).__name__, "errno": getattr(err, "errno", None), "message": str(err), **extra}
    return answer(error, 502)


def target(request) -> tuple[str, int]:
    return request.query.first("host", "127.0.0.1"), int(request.query.first("port", "6379"))


@app.get("/redis/incr")
def redis_incr(request):
    host, port = target(request)
    client = _clients.get((host, port))
    if client is None:
        client = _clients[(host, port)] = redis.Redis(host=host, port=port, socket_timeout=5, socket_connect_timeout=5)
    try:
        return answer({"value": client.incr(request.query.first("key", "hits"))})
    except (redis.RedisError, OSError) as err:
        return failure(err)


@app.get("/connect")
def connect(request):
    try:
        with socket.create_connection(target(request), timeout=5) as conn:
            conn.sendall(b"PING\r\n")
            return answer({"reply": conn.recv(64).decode()})
    except OSError as err:
        return failure(err)


@app.get("/resolve")
def resolve(request):
    try:
        found = socket.getaddrinfo(request.query.first("host"), 0, type=socket.SOCK_STREAM)
    except OSError as err:
        return failure(err)
    return answer(sorted({info[4][0] for info in found}))


@app.get("/listen")
def listen(request):
    try:
        with socket.socket() as server:
            server.bind(("0.0.0.0", 0))
            server.listen()
            return answer({"listening": server.getsockname()})
    except OSError as err:
        return failure(err)


@app.get("/udp")
def udp(request):
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(b"x", ("127.0.0.1", 9))
            return answer({"sent": True})
    except OSError as err:
        return failure(err)


@app.get("/sockets")
def sockets(request):
    opened: list[socket.socket] = []
    error = None
    for _ in range(int(request.query.first("n", "1"))):
        try:
            opened.append(socket.socket())
        except OSError as err:
            error = {"error": type(err).__name__, "errno": err.errno, "message": str(err)}
            break
    if request.query.first("keep"):
        _kept.extend(opened)
    else:
        for sock in opened:
            sock.close()
    return answer({"opened": len(opened), "kept": len(_kept), "failure": error})
