"""Outbound TCP from guests (`wasi:sockets`), through the real binary and a
real SDK guest (tests/apps/tcp) that talks to a real `redis-server` (Debian's
package, started on 127.0.0.1 by the tests and stopped after) with redis-py,
installed from its requirements.txt.

What is promised: a guest connects to what a `tcp://` entry lists and to
nothing else; a loopback or private address only when an entry lists it
(a name that only `*` admits gets no private answer); no binding, listening
or UDP; every open socket holds a place in the app's outbound connection
budget, given back when the guest closes it or its instance is retired;
`/apps` lists the TCP entries and `/metrics` the open sockets.
"""

from __future__ import annotations

import json

import pytest

from wasmhost_testing import ROOT, Redis, Server, metric_value

APP = ROOT / "tests" / "apps" / "tcp" / "app.py"
BUILD_TIME = 900
"""Seconds the first test may take: it builds the app (pip installs redis-py)."""


@pytest.fixture
def redis(tmp_path):
    server = Redis(tmp_path).start()
    yield server
    server.stop()


def tcp_server(wasmhost_bin, *args: str) -> Server:
    return Server(wasmhost_bin, APP, ["--max-instances", "1", *args], start_timeout=BUILD_TIME)


def get(server: Server, path: str) -> tuple[int, object]:
    status, _, body = server.request("GET", path)
    return status, json.loads(body)


def refused(server: Server, path: str) -> dict:
    """The guest's error for a refused `path`."""
    status, failure = get(server, path)
    assert status == 502, failure
    assert isinstance(failure, dict) and failure["error"], failure
    return failure


def metric(server: Server, name: str, **labels: str) -> float:
    return metric_value(server.metrics(), name, **labels)


@pytest.mark.time_limit(BUILD_TIME)
def test_redis_py_reaches_a_listed_redis_by_address_and_by_name(wasmhost_bin, redis):
    entries = [f"tcp://127.0.0.1:{redis.port}", f"tcp://localhost:{redis.port}", "https://api.example.com"]
    with tcp_server(wasmhost_bin, *(f"--allow-outbound={entry}" for entry in entries)) as server:
        for expected in (1, 2, 3):
            assert get(server, f"/redis/incr?host=127.0.0.1&port={redis.port}") == (200, {"value": expected})
        assert redis.get("hits") == b"3", "the guest's writes are in the real server"
        assert get(server, f"/redis/incr?host=localhost&port={redis.port}&key=named") == (200, {"value": 1})
        assert get(server, f"/connect?host=127.0.0.1&port={redis.port}") == (200, {"reply": "+PONG\r\n"})

        # Two redis-py clients keep their pooled connections open between requests.
        assert metric(server, "wasmhost_tcp_sockets", app="app") == 2
        status, _, body = server.admin_request("GET", "/apps")
        assert status == 200
        (app,) = json.loads(body)["apps"]
        assert app["allowed_outbound"] == {"http": ["https://api.example.com"], "tcp": entries[:2]}
        assert app["outbound_connections"] == 2, "TCP sockets count in the app's connection budget"


def test_unlisted_targets_private_answers_and_inbound_sockets_are_refused(wasmhost_bin, redis, tmp_path):
    (tmp_path / "other").mkdir()
    other = Redis(tmp_path / "other").start()
    try:
        with tcp_server(wasmhost_bin, f"--allow-outbound=tcp://127.0.0.1:{redis.port}",
                        f"--allow-outbound=tcp://*:{other.port}") as server:
            # An address no entry lists: a port no entry names.
            unlisted = next(port for port in range(40000, 40100) if port not in (redis.port, other.port))
            assert refused(server, f"/connect?host=127.0.0.1&port={unlisted}")["error"] == "PermissionError"
            # `*` admits the name and the port, but no entry for that port
            # lists a loopback address.
            refused(server, f"/redis/incr?host=localhost&port={other.port}")
            # No listening, no UDP.
            refused(server, "/listen")
            refused(server, "/udp")
            assert other.get("hits") is None, "nothing reached the unlisted server"

            # The instance keeps serving what is allowed.
            assert get(server, f"/redis/incr?host=127.0.0.1&port={redis.port}") == (200, {"value": 1})
            for reason in ("not_listed", "private_address", "inbound"):
                assert metric(server, "wasmhost_outbound_rejected_total", app="app", reason=reason) >= 1, reason
            server.wait_for_log("outbound TCP refused")
    finally:
        other.stop()


def test_star_reaches_public_addresses_only_and_no_entry_no_network(wasmhost_bin, redis):
    with tcp_server(wasmhost_bin, f"--allow-outbound=tcp://*:{redis.port}") as server:
        # A name only `*` admits gets no loopback answer, nor is the address reached.
        assert refused(server, "/resolve?host=localhost")["error"] == "PermissionError"
        refused(server, f"/connect?host=127.0.0.1&port={redis.port}")
        refused(server, f"/redis/incr?host=localhost&port={redis.port}")
        assert metric(server, "wasmhost_outbound_rejected_total", app="app", reason="private_address") >= 2
    with tcp_server(wasmhost_bin, f"--allow-outbound=http://127.0.0.1:{redis.port}") as server:
        # An HTTP entry allows no TCP: the guest has no network at all.
        refused(server, f"/connect?host=127.0.0.1&port={redis.port}")
        refused(server, "/resolve?host=localhost")
        assert metric(server, "wasmhost_tcp_sockets", app="app") == 0
    assert redis.get("hits") is None


def test_open_sockets_are_bounded_and_given_back_on_close_and_retirement(wasmhost_bin, redis):
    args = [f"--allow-outbound=tcp://127.0.0.1:{redis.port}", "--max-outbound-connections-per-instance", "3",
            "--max-requests-per-instance", "4"]
    with tcp_server(wasmhost_bin, *args) as server:
        # A name no entry lists is not even looked up.
        assert refused(server, "/resolve?host=unlisted.example")["error"] == "PermissionError"
        server.wait_for_log('outbound TCP refused app=app target="unlisted.example"')
        status, first = get(server, "/sockets?n=10")
        assert status == 200 and first["opened"] == 3, first
        assert first["failure"] and first["failure"]["error"] in ("OSError", "PermissionError"), first
        # Closed sockets gave their places back; kept ones hold them.
        assert get(server, "/sockets?n=10&keep=1")[1]["opened"] == 3
        assert get(server, "/sockets?n=10")[1]["opened"] == 0, "the instance holds 3 sockets already"
        # That was the instance's fourth request: it is retired, and its
        # sockets closed with it, so a new instance has the whole budget.
        status, fresh = get(server, "/sockets?n=10")
        assert (status, fresh["opened"], fresh["kept"]) == (200, 3, 0), fresh
        assert metric(server, "wasmhost_tcp_sockets", app="app") == 0
        status, _, body = server.admin_request("GET", "/apps")
        assert json.loads(body)["apps"][0]["outbound_connections"] == 0
