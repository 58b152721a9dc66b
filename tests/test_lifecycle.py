"""Admission control, graceful shutdown and the compile cache: behaviour of
the server as a whole, each test with servers of its own."""

import signal
import socket
import time

import pytest

from wasmhost_testing import BackgroundRequest

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
        time.sleep(0.3)  # the slow request now holds the instance
        elapsed, status, headers, body = server.timed_request("GET", "/ok")
        assert not slow.done(), "the slow request ended before the capacity check"
        assert status == 503, body
        assert headers["retry-after"] == "1"
        assert min_wait <= elapsed <= max_wait, f"503 after {elapsed:.2f} s"

        status, _, body = slow.join(timeout=30)
        assert (status, body) == (200, f"slept {SLOW_MS} ms".encode())
        status, _, body = server.request("GET", "/ok")
        assert (status, body) == (200, b"ok")


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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_graceful_shutdown(make_server, sig):
    """On SIGTERM or SIGINT the server stops accepting connections at once,
    lets the request in flight finish with 200, then exits with status 0."""
    with make_server("faults") as server:
        in_flight = BackgroundRequest(server, "GET", "/sleep?ms=1500", timeout=30)
        time.sleep(0.3)
        server.send_signal(sig)

        deadline = time.monotonic() + 1.0
        while not connection_refused(server.port):
            assert time.monotonic() < deadline, "still accepting connections 1 s after the signal"
            time.sleep(0.02)
        assert not in_flight.done(), "the in-flight request ended before accepting stopped"

        status, _, body = in_flight.join(timeout=30)
        assert (status, body) == (200, b"slept 1500 ms")
        assert server.wait_exit() == 0, server.log()


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
