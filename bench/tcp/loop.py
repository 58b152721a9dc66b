"""The timed loop of bench/tcp.sh, shared by the guest (app.py) and the
native run: N redis-py calls of one operation on one pooled connection."""

import socket
import time


def run(client, op: str, n: int, size: int) -> float:
    """µs per call of `op` over `n` calls on `client` (a redis.Redis);
    `raw-ping` is a PING on a plain socket to the same server, without
    redis-py (the round trip alone)."""
    value = b"x" * size
    client.set("bench:key", value)
    kwargs = client.connection_pool.connection_kwargs
    raw = socket.create_connection((kwargs["host"], kwargs["port"]))

    def raw_ping():
        raw.sendall(b"PING\r\n")
        raw.recv(64)

    calls = {
        "raw-ping": raw_ping,
        "ping": lambda: client.ping(),
        "get": lambda: client.get("bench:key"),
        "set": lambda: client.set("bench:key", value),
        "incr": lambda: client.incr("bench:counter"),
    }
    call = calls[op]
    call()  # connect outside the timing
    started = time.perf_counter_ns()
    for _ in range(n):
        call()
    elapsed = time.perf_counter_ns() - started
    raw.close()
    return elapsed / n / 1000
