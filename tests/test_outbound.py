"""Outbound HTTP from guests: denied by default, allowed per app by an
allow-list, private and loopback addresses refused after DNS unless listed,
and the authority always the one the guest wrote (never the inbound Host).

An upstream `http.server` on 127.0.0.1 plays the allowed service; the
`outbound` guest fetches what a test asks for and reports the status, or
the `wasi:http` error code the host gave it.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import resource
import selectors
import socket
import threading
import time
import urllib.parse

import pytest

from wasmhost_testing import ROOT, Server


class Upstream(http.server.ThreadingHTTPServer):
    """A local service that answers with the Host header it received."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                body = f"upstream host={self.headers.get('host')} path={self.path}".encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # noqa: N802
                data = self.rfile.read(int(self.headers.get("content-length", "0")))
                body = f"{self.headers.get('content-type')} {data.decode()}".encode()
                self.send_response(201)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server_address[1]

    def __enter__(self) -> "Upstream":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.shutdown()
        self.server_close()


@pytest.fixture(scope="module")
def upstream():
    with Upstream() as server:
        yield server


def fetch(server: Server, url: str, **headers: str) -> tuple[int, str]:
    """Has the guest GET `url`; returns the guest's status and text."""
    status, _, body = server.request("GET", "/fetch?url=" + urllib.parse.quote(url, safe=""), headers=headers)
    return status, body.decode()


def refusal_logged(server: Server, app: str, url: str, reason: str) -> None:
    """Waits for the log line of a refused outbound request from `app` to
    `url`, giving `reason`."""
    server.wait_for_log(
        rf"outbound HTTP request refused .*\bapp={re.escape(app)} uri={re.escape(url)} reason={re.escape(json.dumps(reason))}"
    )


def app_name(server: Server) -> str:
    (app,) = json.loads(server.admin_request("GET", "/apps")[2])["apps"]
    return app["name"]


def test_nothing_is_reachable_by_default(make_server, upstream):
    """A guest's request is refused when nothing is allowed, and the log
    line says which app asked for what and why it was refused."""
    with make_server("outbound") as server:
        url = f"http://127.0.0.1:{upstream.port}/x"
        assert fetch(server, url) == (502, "error=ErrorCode_HttpRequestDenied")
        refusal_logged(server, app_name(server), url, "not in the app's allowed_outbound list")


def test_a_listed_local_service_is_reachable(make_server, upstream):
    with make_server("outbound", "--allow-outbound", f"http://127.0.0.1:{upstream.port}") as server:
        status, text = fetch(server, f"http://127.0.0.1:{upstream.port}/api?q=1", host="evil.example")
        assert status == 200, text
        # The authority is the guest's, not the inbound request's Host.
        assert text == f"status=200\nupstream host=127.0.0.1:{upstream.port} path=/api?q=1"
        # Only the listed port: the next port over is refused, the listed
        # one still works after a refusal.
        assert fetch(server, f"http://127.0.0.1:{upstream.port + 1}/") == (502, "error=ErrorCode_HttpRequestDenied")
        assert fetch(server, f"https://127.0.0.1:{upstream.port}/") == (502, "error=ErrorCode_HttpRequestDenied")
        assert fetch(server, f"http://127.0.0.1:{upstream.port}/again")[0] == 200


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"])
def test_private_addresses_need_their_own_entry(make_server, upstream, host):
    """`*` allows any public host; loopback stays refused, whether written
    as an address or reached through a name that resolves to it."""
    with make_server("outbound", "--allow-outbound", "*") as server:
        url = f"http://{host}:{upstream.port}/"
        assert fetch(server, url) == (502, "error=ErrorCode_DestinationIpProhibited")
        reason = "resolves only to private or loopback addresses that are not listed"
        refusal_logged(server, app_name(server), url, reason)
    with make_server("outbound", "--allow-outbound", "localhost", "--allow-outbound", "127.0.0.0/8") as server:
        status, text = fetch(server, f"http://localhost:{upstream.port}/")
        assert status == 200 and text.startswith("status=200\nupstream host=localhost:"), text


def test_allow_lists_are_per_app(wasmhost_bin, guests, upstream, tmp_path):
    """One process, two apps on the same module: only the app that lists the
    service reaches it."""
    config = tmp_path / "wasmhost.toml"
    config.write_text(
        f"""
[[app]]
name = "allowed"
module = "{guests['outbound']}"
prefix = "/a"
strip_prefix = true
allowed_outbound = ["http://127.0.0.1:{upstream.port}"]

[[app]]
name = "denied"
module = "{guests['outbound']}"
prefix = "/d"
strip_prefix = true
"""
    )
    with Server(wasmhost_bin, "", [], subcommand="serve", config=config) as server:
        url = urllib.parse.quote(f"http://127.0.0.1:{upstream.port}/", safe="")
        status, _, body = server.request("GET", f"/a/fetch?url={url}")
        assert status == 200 and body.startswith(b"status=200"), body
        assert server.request("GET", f"/d/fetch?url={url}")[::2] == (502, b"error=ErrorCode_HttpRequestDenied")
        refusal_logged(server, "denied", f"http://127.0.0.1:{upstream.port}/", "not in the app's allowed_outbound list")



def test_the_sdk_fetch(wasmhost_bin, upstream):
    """`wasmhost.fetch` in an SDK app: a GET and a JSON POST reach the
    allowed upstream; a refused request is an `OutboundError` with the
    host's error code, which the app can handle."""
    app = ROOT / "tests" / "apps" / "fetch" / "app.py"
    allow = ["--allow-outbound", f"http://127.0.0.1:{upstream.port}"]
    with Server(wasmhost_bin, app, allow, start_timeout=600) as server:
        url = urllib.parse.quote(f"http://127.0.0.1:{upstream.port}/x?y=1", safe="")
        status, _, body = server.request("GET", f"/get?url={url}")
        assert status == 200, body
        assert json.loads(body) == {
            "status": 200, "body": f"upstream host=127.0.0.1:{upstream.port} path=/x?y=1", "type": None,
        }
        status, _, body = server.request(
            "POST", f"/post?url={url}", body=b'{"a": [1, 2]}', headers={"content-type": "application/json"}
        )
        assert status == 200, body
        assert json.loads(body) == {"status": 201, "body": 'application/json {"a":[1,2]}', "type": "text/plain"}
        other = urllib.parse.quote(f"http://127.0.0.1:{upstream.port + 1}/", safe="")
        status, _, body = server.request("GET", f"/get?url={other}")
        assert (status, json.loads(body)) == (502, {"error": "HttpRequestDenied"})


# -- connection budgets -----------------------------------------------------------

FETCH_APP = ROOT / "tests" / "apps" / "fetch" / "app.py"


class Holder:
    """A local service that accepts connections and holds them: `silent`
    never answers; `stall` answers a 200 head announcing 1 MB, sends 100
    bytes of it and stalls. `open` is how many connections are open now."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
        self.listener.setblocking(False)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.listener, selectors.EVENT_READ)
        self.lock = threading.Lock()
        self.clients: set[socket.socket] = set()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def port(self) -> int:
        return self.listener.getsockname()[1]

    @property
    def open(self) -> int:
        with self.lock:
            return len(self.clients)

    def _run(self) -> None:
        while not self.stopping:
            for key, _ in self.selector.select(timeout=0.1):
                sock = key.fileobj
                if sock is self.listener:
                    self._accept()
                    continue
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    self._close(sock)
                elif self.mode == "stall" and b"\r\n\r\n" in data:
                    sock.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n" + b"x" * 100)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except BlockingIOError:
                return
            sock.setblocking(False)
            self.selector.register(sock, selectors.EVENT_READ)
            with self.lock:
                self.clients.add(sock)

    def _close(self, sock: socket.socket) -> None:
        self.selector.unregister(sock)
        sock.close()
        with self.lock:
            self.clients.discard(sock)

    def wait_open(self, expected: int, timeout: float = 5.0) -> int:
        """Waits up to `timeout` s until `expected` connections are open;
        how many are."""
        deadline = time.monotonic() + timeout
        while self.open != expected and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.open

    def __enter__(self) -> "Holder":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping = True
        self.thread.join(5)
        for sock in list(self.clients):
            sock.close()
        self.listener.close()


@pytest.fixture(scope="module")
def holder():
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    with Holder("silent") as server:
        yield server


@pytest.fixture(scope="module")
def staller():
    with Holder("stall") as server:
        yield server


@pytest.fixture(scope="module")
def blackhole():
    """A listener that never accepts, with the shortest backlog: beyond a
    connection or two, connecting to it hangs until the client gives up."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=0)
    yield sock
    sock.close()


def burst(server: Server, prefix: str = "", **params) -> list[dict[str, int]]:
    """Has the `fetch` app run `/burst` (see its docstring); its rounds."""
    status, _, body = server.request("GET", f"{prefix}/burst?{urllib.parse.urlencode(params)}", timeout=60)
    assert status == 200, body
    return json.loads(body)["rounds"]


def metric(server: Server, name: str, **labels: str) -> float:
    """The value of one sample of the admin listener's /metrics (0 if absent)."""
    text = server.admin_request("GET", "/metrics")[2].decode()
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        if sample.partition("{")[0] == name and all(f'{key}="{val}"' in sample for key, val in labels.items()):
            return float(value)
    return 0.0


def wait_released(server: Server, app: str = "app", timeout: float = 5.0) -> float:
    """Waits up to `timeout` s for `app` to hold no outbound connection;
    how many it holds."""
    deadline = time.monotonic() + timeout
    while (held := metric(server, "wasmhost_outbound_connections", app=app)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return held


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def refusal_lines(server: Server, app: str) -> list[str]:
    return [
        line
        for line in server.log().splitlines()
        if "connection-limit-reached" in line and f"app={app}" in line
    ]


@pytest.mark.time_limit(240)
def test_a_guest_flooding_outbound_requests_is_bounded(wasmhost_bin, holder, upstream, tmp_path):
    """A guest that starts 2,000 requests to a local service that holds
    every connection, without waiting for any: 16 (the default per-instance
    bound) are sent, the other 1,984 fail at once with
    `connection-limit-reached`, counted by reason and logged a few times
    with counts, not 1,984 times. The process holds ~16 more descriptors,
    not 2,000. Meanwhile another app, and the same app's next request on
    another instance, are served normally; afterwards the held connections
    are closed and the budget is back to zero."""
    config = tmp_path / "wasmhost.toml"
    allow = f'allowed_outbound = ["http://127.0.0.1:{holder.port}", "http://127.0.0.1:{upstream.port}"]'
    config.write_text(
        f"""
[[app]]
name = "flood"
module = "{FETCH_APP}"
prefix = "/f"
strip_prefix = true
max_instances = 2
{allow}

[[app]]
name = "other"
module = "{FETCH_APP}"
prefix = "/o"
strip_prefix = true
max_instances = 1
{allow}
"""
    )
    normal = urllib.parse.quote(f"http://127.0.0.1:{upstream.port}/ok", safe="")
    with Server(wasmhost_bin, "", [], config=config, start_timeout=600) as server:
        assert server.request("GET", f"/f/get?url={normal}")[0] == 200
        assert server.request("GET", f"/o/get?url={normal}")[0] == 200
        fds_before = open_fds(server.pid)
        result: list = []
        flood = threading.Thread(
            target=lambda: result.append(
                burst(server, "/f", url=f"http://127.0.0.1:{holder.port}/", n=2000, settle_ms=500, hold_ms=3000)
            )
        )
        flood.start()
        try:
            # Measured once the guest has started all 2,000 (every refusal
            # is counted as it happens; without a bound, once the open
            # connections stop growing) and while it holds them.
            deadline, last, steady = time.monotonic() + 60, -1, 0
            while metric(server, "wasmhost_outbound_rejected_total", app="flood", reason="instance_limit") < 1984:
                assert time.monotonic() < deadline and flood.is_alive(), f"no refusals, then: {result}"
                steady = steady + 1 if holder.open == last else 0
                last = holder.open
                if last > 16 and steady >= 10:
                    break
                time.sleep(0.1)
            fds_during = open_fds(server.pid)
            held = holder.open
            # Another app, and the flooding app on its other instance.
            other = server.request("GET", f"/o/get?url={normal}")
            same = server.request("GET", f"/f/get?url={normal}")
        finally:
            flood.join(90)
        assert held == 16, f"the service saw {held} connections from one instance"
        assert fds_during - fds_before <= 16 + 8, f"{fds_during - fds_before} more descriptors during the flood"
        assert other[0] == 200 and json.loads(other[2])["status"] == 200, other
        assert same[0] == 200 and json.loads(same[2])["status"] == 200, same
        assert result == [[{"pending": 16, "ConnectionLimitReached": 1984}]], result

        assert metric(server, "wasmhost_outbound_rejected_total", app="flood", reason="instance_limit") == 1984
        assert metric(server, "wasmhost_outbound_rejected_total", app="other", reason="instance_limit") == 0
        lines = refusal_lines(server, "flood")
        assert 1 <= len(lines) <= 8, "\n".join(lines)
        logged = sum(int(re.search(r"refused=(\d+)", line).group(1)) for line in lines)
        assert logged <= 1984, lines

        # The guest's request ended and dropped its futures: the held
        # connections close and the budget empties.
        assert holder.wait_open(0) == 0, f"{holder.open} connections still open"
        assert wait_released(server, "flood") == 0
        assert open_fds(server.pid) <= fds_before + 2
        assert server.request("GET", f"/f/get?url={normal}")[0] == 200


@pytest.mark.time_limit(240)
def test_the_app_bound_is_shared_by_its_instances(wasmhost_bin, holder, upstream):
    """`--max-outbound-connections 20`: two instances flooding at once hold
    20 connections between them (each at most its 16), and the app's third
    instance gets `connection-limit-reached` at once, as an
    `OutboundError` it answers with; once the floods end it is served."""
    allow = ["--allow-outbound", f"http://127.0.0.1:{holder.port}", "--allow-outbound", f"http://127.0.0.1:{upstream.port}"]
    args = [*allow, "--max-outbound-connections", "20", "--max-instances", "3", "--min-instances", "3"]
    normal = urllib.parse.quote(f"http://127.0.0.1:{upstream.port}/ok", safe="")
    with Server(wasmhost_bin, FETCH_APP, args, start_timeout=600) as server:
        results: list = []
        params = dict(url=f"http://127.0.0.1:{holder.port}/", n=200, settle_ms=300, hold_ms=2500)
        floods = [threading.Thread(target=lambda: results.append(burst(server, **params))) for _ in range(2)]
        for thread in floods:
            thread.start()
        try:
            held = holder.wait_open(20, timeout=30)
            refused = server.request("GET", f"/get?url={normal}")
        finally:
            for thread in floods:
                thread.join(60)
        assert held == 20
        assert (refused[0], json.loads(refused[2])) == (502, {"error": "ConnectionLimitReached"})
        rounds = [r for result in results for r in result]
        assert sum(r.get("pending", 0) for r in rounds) == 20, rounds
        assert sum(r.get("ConnectionLimitReached", 0) for r in rounds) == 380, rounds
        assert all(r.get("pending", 0) <= 16 for r in rounds), rounds
        by_reason = {
            reason: metric(server, "wasmhost_outbound_rejected_total", app="app", reason=reason)
            for reason in ("instance_limit", "app_limit")
        }
        assert sum(by_reason.values()) == 381 and by_reason["app_limit"] >= 1, by_reason
        assert holder.wait_open(0) == 0
        assert server.request("GET", f"/get?url={normal}")[0] == 200


@pytest.fixture(scope="module")
def budget_server(wasmhost_bin, holder, staller, blackhole):
    """The `fetch` app on one instance, with the default bounds, allowed to
    reach the holding, stalling and never-accepting services."""
    ports = [holder.port, staller.port, blackhole.getsockname()[1]]
    allow = [arg for port in ports for arg in ("--allow-outbound", f"http://127.0.0.1:{port}")]
    with Server(wasmhost_bin, FETCH_APP, [*allow, "--max-instances", "1"], start_timeout=600) as server:
        yield server


def test_abandoned_outbound_requests_give_their_connections_back(budget_server, holder, staller):
    """What a guest starts and abandons stops counting: futures it drops
    (at the end of its request), responses it drops unread. Controls: while
    it keeps them, a second round of 16 is refused."""
    server = budget_server
    silent = f"http://127.0.0.1:{holder.port}/"
    stall = f"http://127.0.0.1:{staller.port}/"
    # Kept futures hold their connections; dropped ones give them back.
    assert burst(server, url=silent, n=16, rounds=2) == [{"pending": 16}, {"ConnectionLimitReached": 16}]
    assert holder.wait_open(0) == 0, "the dropped requests' sockets are still open"
    assert burst(server, url=silent, n=16) == [{"pending": 16}]
    assert holder.wait_open(0) == 0
    assert wait_released(server) == 0
    # Kept responses hold their connections; dropped ones give them back.
    assert burst(server, url=stall, n=16, rounds=2, body="keep") == [{"response": 16}, {"ConnectionLimitReached": 16}]
    assert staller.wait_open(0) == 0, "the dropped responses' sockets are still open"
    assert wait_released(server) == 0
    assert burst(server, url=stall, n=16, rounds=2, body="drop") == [{"response": 16}, {"response": 16}]
    assert staller.wait_open(0) == 0, "the dropped responses' sockets are still open"
    assert wait_released(server) == 0


def test_timeouts_bound_how_long_a_connection_is_held(budget_server, holder, staller, blackhole):
    """The connect, first-byte and between-bytes timeouts end a request's
    hold on its connection even while the guest keeps everything: after a
    round of 16 that timed out, a second round of 16 is sent, where after 16
    that are still waiting (the control) it is refused."""
    server = budget_server
    silent = f"http://127.0.0.1:{holder.port}/"
    assert burst(server, url=silent, n=16, rounds=2) == [{"pending": 16}, {"ConnectionLimitReached": 16}]
    assert holder.wait_open(0) == 0 and wait_released(server) == 0
    hang = f"http://127.0.0.1:{blackhole.getsockname()[1]}/"
    rounds = burst(server, url=hang, n=16, rounds=2, timeout_ms=300, settle_ms=1000)
    for states in rounds:
        assert set(states) <= {"ConnectionTimeout", "ConnectionReadTimeout"} and sum(states.values()) == 16, rounds
    stall = f"http://127.0.0.1:{staller.port}/"
    rounds = burst(server, url=stall, n=16, rounds=2, timeout_ms=200, body="read")
    assert rounds == [{"body-failed": 16}, {"body-failed": 16}], rounds
    assert staller.wait_open(0) == 0
