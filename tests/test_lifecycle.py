"""Admission control, graceful shutdown and the compile cache: behaviour of
the server as a whole, each test with servers of its own."""

import http.client
import json
import signal
import socket
import time

import pytest

from wasmhost_testing import BackgroundRequest, metric_value

SLOW_MS = 2000
"""How long the request occupying the only instance runs, in ms."""


@pytest.mark.parametrize(
    "max_queue, min_wait, max_wait",
    [
        pytest.param(1, 0.25, 1.5, id="queued-then-timeout"),
        pytest.param(0, 0.0, 0.2, id="no-queue-rejected-at-once"),
    ],
)
def test_admission_when_at_capacity(make_server, max_queue, min_wait, max_wait):
    """With the only instance busy, a request waits in the queue for
    --queue-timeout (300 ms) and then gets 503 with Retry-After, or gets 503
    at once when --max-queue is 0; once the busy request finishes, requests
    are served again."""
    args = ["--max-instances", "1", "--max-queue", str(max_queue), "--queue-timeout", "300ms"]
    with make_server("faults", *args) as server:
        slow = BackgroundRequest(server, "GET", f"/sleep?ms={SLOW_MS}", timeout=30)
        server.wait_for_busy(1)  # the slow request now holds the instance
        elapsed, status, headers, body = server.timed_request("GET", "/ok")
        assert not slow.done(), "the slow request ended before the capacity check"
        assert status == 503, body
        assert headers["retry-after"] == "1"
        assert min_wait <= elapsed <= max_wait, f"503 after {elapsed:.2f} s"

        status, _, body = slow.join(timeout=30)
        assert (status, body) == (200, f"slept {SLOW_MS} ms".encode())
        status, _, body = server.request("GET", "/ok")
        assert (status, body) == (200, b"ok")


def count(server) -> int:
    """The counter of the `faults` instance serving `/count` (counts itself)."""
    status, _, body = server.request("GET", "/count")
    assert status == 200, body
    return int(body.decode().removeprefix("count="))


def wait_for_queue(server, app: str, depth: int, timeout: float = 10.0) -> None:
    """Waits until exactly `depth` requests wait for an instance of `app`."""
    deadline = time.monotonic() + timeout
    while (queued := metric_value(server.metrics(), "wasmhost_queue_depth", app=app)) != depth:
        assert time.monotonic() < deadline, f"{queued:.0f} requests queued after {timeout} s, expected {depth}"
        time.sleep(0.01)


def server_app(server) -> str:
    """The name of the one app `server` serves."""
    status, _, body = server.admin_request("GET", "/apps")
    assert status == 200, body
    (app,) = json.loads(body)["apps"]
    return app["name"]


def test_queued_requests_are_served_in_arrival_order(make_server):
    """With the only instance busy, requests that arrive one after another
    (each sent once the previous one is seen waiting) are served in arrival
    order: the instance's counter, which counts the requests it serves,
    climbs in the order they were sent."""
    waiting = 8
    args = ["--max-instances", "1", "--max-queue", "16", "--queue-timeout", "30s"]
    with make_server("faults", *args) as server:
        app = server_app(server)
        first = count(server) + 1  # the count the /sleep request below will see
        slow = BackgroundRequest(server, "GET", "/sleep?ms=2000", timeout=30)
        server.wait_for_busy(1)
        queued = []
        for position in range(waiting):
            queued.append(BackgroundRequest(server, "GET", "/count", timeout=30))
            wait_for_queue(server, app, position + 1)
        assert not slow.done(), "the busy request ended before every request was queued"
        assert slow.join(30)[::2] == (200, b"slept 2000 ms")
        served = [request.join(30) for request in queued]
        assert [status for status, _, _ in served] == [200] * waiting
        counts = [int(body.decode().removeprefix("count=")) for _, _, body in served]
        assert counts == list(range(first + 1, first + 1 + waiting)), f"served out of arrival order: {counts}"


def connection_refused(port: int) -> bool:
    """Whether a TCP connection to 127.0.0.1:`port` is refused (a connection
    reset while the listener closes does not count)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False


def test_an_idle_app_scales_to_zero_and_answers_again(make_server):
    """With --min-instances 0, an instance unused for --idle-timeout is
    dropped (counted with reason "idle"): the app holds no instance, and the
    next request instantiates a new one, whose counter starts over."""
    with make_server("faults", "--min-instances", "0", "--idle-timeout", "200ms") as server:
        app = server_app(server)
        assert [count(server), count(server)] == [1, 2]
        deadline = time.monotonic() + 10
        while metric_value(samples := server.metrics(), "wasmhost_instances_retired_total", app=app, reason="idle") < 1:
            assert time.monotonic() < deadline, "no instance dropped 10 s after its last request"
            time.sleep(0.05)
        assert metric_value(samples, "wasmhost_instances", app=app, state="idle") == 0
        assert metric_value(samples, "wasmhost_instances", app=app, state="busy") == 0
        assert count(server) == 1, "a new instance served the next request"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown(make_server, sig):
    """On SIGTERM or SIGINT the server stops accepting connections at once,
    lets the request in flight finish with 200, then exits with status 0."""
    with make_server("faults") as server:
        in_flight = BackgroundRequest(server, "GET", "/sleep?ms=1500", timeout=30)
        server.wait_for_busy(1)
        server.send_signal(sig)

        deadline = time.monotonic() + 1.0
        while not connection_refused(server.port):
            assert time.monotonic() < deadline, "still accepting connections 1 s after the signal"
            time.sleep(0.02)
        assert not in_flight.done(), "the in-flight request ended before accepting stopped"

        status, _, body = in_flight.join(timeout=30)
        assert (status, body) == (200, b"slept 1500 ms")
        assert server.wait_exit() == 0, server.log()


@pytest.mark.parametrize(
    "first, second",
    [(signal.SIGTERM, signal.SIGTERM), (signal.SIGINT, signal.SIGINT), (signal.SIGTERM, signal.SIGINT)],
    ids=["SIGTERM-twice", "SIGINT-twice", "SIGTERM-then-SIGINT"],
)
def test_second_signal_exits_at_once(make_server, first, second):
    """A second SIGTERM or SIGINT while draining exits at once, with status
    130, without waiting for the request in flight (a 10 s guest sleep,
    within the 30 s --drain-timeout): its connection is closed unanswered."""
    with make_server("faults", "--drain-timeout", "30s") as server:
        in_flight = BackgroundRequest(server, "GET", "/sleep?ms=10000", timeout=30)
        server.wait_for_busy(1)
        server.send_signal(first)
        server.wait_for_log("stopped accepting", timeout=5)
        started = time.monotonic()
        server.send_signal(second)
        status = server.wait_exit(timeout=10)
        elapsed = time.monotonic() - started
        assert status == 130, server.log()
        assert elapsed < 1.0, f"exited {elapsed:.2f} s after the second signal"
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            in_flight.join(5)


def test_drain_timeout_expiry_closes_connections_and_exits_0(make_server):
    """When --drain-timeout (1 s) runs out with a request still in flight
    (a 10 s guest sleep), the server closes the remaining connections, logs
    it, and exits with status 0, as a completed drain does; the request in
    flight gets no response."""
    with make_server("faults", "--drain-timeout", "1s") as server:
        in_flight = BackgroundRequest(server, "GET", "/sleep?ms=10000", timeout=30)
        server.wait_for_busy(1)
        started = time.monotonic()
        server.send_signal(signal.SIGTERM)
        status = server.wait_exit(timeout=10)
        elapsed = time.monotonic() - started
        assert status == 0, server.log()
        assert 0.9 <= elapsed < 3.0, f"exited {elapsed:.2f} s after SIGTERM, expected about 1 s"
        assert "drain timeout reached" in server.log()
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            in_flight.join(5)


@pytest.mark.time_limit(300)
def test_compile_cache(make_server, tmp_path):
    """A first start with an empty --cache-dir compiles the component and
    stores it; a second start loads it from the cache."""
    cache_dir = tmp_path / "cache"
    outcomes = []
    for _ in range(2):
        with make_server("hello", "--min-instances", "0", cache_dir=cache_dir) as server:
            match = server.wait_for_log(r"component compiled .*\bcached=(true|false)\b")
            outcomes.append(match.group(1))
            status, _, body = server.request("GET", "/")
            assert (status, body) == (200, b"hello from wasmhost\n")
    assert outcomes == ["false", "true"]
    assert list(cache_dir.glob("*.cwasm")), "nothing was stored in the cache directory"
