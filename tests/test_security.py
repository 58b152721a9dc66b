"""Regression tests for the security review of issue 11 (docs/reliability.md,
"Security review"): response framing owned by the host (findings 1 and 7),
the admin API's Host, Origin and token checks (5), guest log volume and
control characters (6), and ambiguous routing targets (9).

Every test here failed on the binary before the fixes; the assertion that
failed is named in docs/reliability.md.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import time
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, Server, _SocketReader, read_responses, request_head

PROBE_APP = ROOT / "tests" / "apps" / "probe" / "app.py"


def config_text(guests: dict[str, Path]) -> str:
    """Five tenants: the SDK probe (c.test), the raw wasi:http probe
    (r.test), hello (a.test), the raw probe under /b with its prefix
    stripped, and hello for everything else."""
    return f"""
[server]
header_read_timeout = "5s"

[[app]]
name = "c"
module = "app.py"
dir = "{PROBE_APP.parent}"
hosts = ["c.test"]

[[app]]
name = "r"
module = "{guests['probe']}"
hosts = ["r.test"]

[[app]]
name = "a"
module = "{guests['hello']}"
hosts = ["a.test"]

[[app]]
name = "b"
module = "{guests['probe']}"
prefix = "/b"
strip_prefix = true

[[app]]
name = "root"
module = "{guests['hello']}"
prefix = "/"
"""


@pytest.fixture(scope="module")
def tenants(wasmhost_bin, guests, tmp_path_factory):
    config = tmp_path_factory.mktemp("security") / "wasmhost.toml"
    config.write_text(config_text(guests))
    with Server(wasmhost_bin, "", [], config=config, start_timeout=600) as server:
        yield server


def pipelined(server: Server, *requests: bytes, count: int | None = None):
    """Sends `requests` at once on one connection; the responses read back."""
    with server.open_raw() as sock:
        sock.sendall(b"".join(requests))
        return read_responses(sock, count or len(requests))


HELLO = b"hello from wasmhost\n"
NEXT = request_head("GET", "/", host="a.test")
"""The request after the one under test: tenant a's plain answer."""


# -- findings 1 and 7: the host owns the framing -----------------------------


@pytest.mark.parametrize(
    "host, target, reason",
    [
        pytest.param("c.test", "/respond?cl=300", "content-length 300 does not match", id="sdk-exchange"),
        pytest.param("r.test", "/respond?cl=300&body=0", "content-length 300 does not match", id="wasi-http-no-body"),
        pytest.param("c.test", "/respond?cl=abc&body=hi", "invalid content-length", id="sdk-not-a-number"),
        pytest.param("r.test", "/respond?status=204&cl=12&body=0", "204 response", id="wasi-http-204-with-length"),
    ],
)
def test_a_declared_length_cannot_swallow_the_next_tenants_response(tenants, host, target, reason):
    first, second = pipelined(tenants, request_head("GET", target, host=host), NEXT)
    assert first.status == 500, (first, second)
    assert "x-request-id" in first.headers, "the host's 500 carries the request id"
    assert first.body.startswith(b"500 Internal Server Error"), first.body
    assert (second.status, second.body) == (200, HELLO), "tenant a's response stays its own"
    tenants.wait_for_log(re.escape(reason) + ".*" + re.escape(first.headers["x-request-id"]) + "|" +
                         re.escape(first.headers["x-request-id"]) + ".*" + re.escape(reason))


@pytest.mark.parametrize("status", [100, 101, 103])
@pytest.mark.parametrize("host", ["c.test", "r.test"])
def test_an_informational_status_is_not_a_response(tenants, host, status):
    target = f"/respond?status={status}" + ("&body=0" if host == "r.test" else "")
    first, second = pipelined(tenants, request_head("GET", target, host=host), NEXT)
    assert first.status == 500 and "x-request-id" in first.headers, first
    assert (second.status, second.body) == (200, HELLO), "the connection keeps serving"


def test_lengths_the_host_accepts_frame_the_connection_correctly(tenants):
    # A matching length, a 304 with its representation's length, a 204 with
    # a zero length (Django's CommonMiddleware adds one): all pass, and the
    # next response on the connection is still tenant a's.
    for host, target, status in [
        ("c.test", "/respond?cl=5&body=hello", 200),
        ("r.test", "/respond?cl=5&write=5", 200),
        ("c.test", "/respond?status=304&cl=300", 304),
        ("r.test", "/respond?status=304&cl=300&body=0", 304),
        ("c.test", "/respond?status=204&cl=0", 204),
    ]:
        first, second = pipelined(tenants, request_head("GET", target, host=host), NEXT)
        assert first.status == status, (target, first)
        assert (second.status, second.body) == (200, HELLO), target
        if status == 204:
            assert "content-length" not in first.headers, "no length on a 204"


@pytest.mark.parametrize("host, target", [("c.test", "/respond?cl=300"), ("r.test", "/respond?cl=300&body=0")])
def test_a_head_response_keeps_its_length_and_sends_no_body(tenants, host, target):
    with tenants.open_raw() as sock:
        sock.sendall(request_head("HEAD", target, host=host) + NEXT)
        reader = _SocketReader(sock, 10)
        head = reader.until(b"\r\n\r\n")
        assert head is not None and head.startswith(b"HTTP/1.1 200"), head
        assert b"content-length: 300\r\n" in head.lower()
        rest = reader.until(b"\r\n\r\n")
        assert rest is not None and rest.startswith(b"HTTP/1.1 200"), "the next response follows at once"


def test_a_streamed_body_never_runs_past_its_declared_length(tenants):
    # The guest declares 5 bytes and writes 100: the client gets the 5
    # declared bytes and then the next response, nothing the guest wrote
    # beyond them (hyper cuts a body at its length; the guest's write fails).
    with tenants.open_raw() as sock:
        sock.sendall(request_head("GET", "/respond?cl=5&write=100", host="r.test") + NEXT)
        reader = _SocketReader(sock, 10)
        head = reader.until(b"\r\n\r\n")
        rest = reader.rest()
    assert head is not None and head.startswith(b"HTTP/1.1 200") and b"content-length: 5\r\n" in head, head
    body, after = rest[:5], rest[5:]
    assert body == b"xxxxx", rest[:200]
    assert not after or after.startswith(b"HTTP/1.1 200") and after.endswith(HELLO), rest[:200]
    # One that declares more than it writes is cut short (the connection is
    # aborted), never padded out by the next response.
    with tenants.open_raw() as sock:
        sock.sendall(request_head("GET", "/respond?cl=300&write=10", host="r.test") + NEXT)
        data = _SocketReader(sock, 10).rest()
    head, _, body = data.partition(b"\r\n\r\n")
    assert not data or head.startswith(b"HTTP/1.1 200") and body == b"x" * 10, data[:300]
    assert HELLO not in data, "the connection ended with the broken response"


# -- finding 9: ambiguous routing targets ------------------------------------


def probe_path(server: Server, target: str, host: str = "x.test") -> tuple[int, bytes]:
    (response,) = pipelined(server, request_head("GET", target, host=host))
    return response.status, response.body


def test_dot_segments_are_removed_before_routing_and_stripping(tenants):
    # `/b/../path` is `/path`: the root app's, never the /b app's `/../path`.
    assert probe_path(tenants, "/b/../path") == (200, HELLO)
    assert probe_path(tenants, "/b/%2e%2e/path") == (200, HELLO)
    assert probe_path(tenants, "/b/x/../path?q=1") == (200, b"path=/path?q=1 authority=x.test")
    assert probe_path(tenants, "/b/./path") == (200, b"path=/path authority=x.test")


def test_a_stripped_prefix_never_leaves_a_network_path(tenants):
    # `/b//evil.example/x` must not reach the app as `//evil.example/x`,
    # which URL parsers read as host `evil.example`.
    assert probe_path(tenants, "/b//evil.example/path") == (200, b"path=/evil.example/path authority=x.test")


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET /path HTTP/1.1\r\nHost: a.test,c.test\r\n\r\n", id="two-hosts-in-one"),
        pytest.param(b"GET /path HTTP/1.1\r\nHost: user@c.test\r\n\r\n", id="userinfo-in-host"),
        pytest.param(b"GET http://user@c.test/path HTTP/1.1\r\nHost: c.test\r\n\r\n", id="userinfo-absolute-form"),
        pytest.param(b"GET http://a.test,c.test/path HTTP/1.1\r\nHost: c.test\r\n\r\n", id="comma-absolute-form"),
    ],
)
def test_ambiguous_authorities_are_refused(tenants, request_bytes):
    (response,) = pipelined(tenants, request_bytes)
    assert response.status == 400, response


def h2_request(port: int, authority: str, path: str) -> int:
    """The `:status` of one HTTP/2 (h2c, prior knowledge) GET, written with
    literal HPACK fields; 0 when the server resets the stream instead."""

    def literal(name: bytes, value: bytes) -> bytes:
        return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value

    block = (
        literal(b":method", b"GET")
        + literal(b":scheme", b"http")
        + literal(b":authority", authority.encode())
        + literal(b":path", path.encode())
    )
    frame = lambda kind, flags, stream, payload: struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack(">I", stream) + payload
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"") + frame(1, 0x5, 1, block))
        data = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            while len(data) >= 9:
                length = int.from_bytes(data[:3], "big")
                if len(data) < 9 + length:
                    break
                kind, stream, payload = data[3], int.from_bytes(data[5:9], "big") & 0x7FFFFFFF, data[9:9 + length]
                data = data[9 + length:]
                if kind == 1 and stream == 1:
                    # `:status` is the first field; hyper sends it indexed
                    # (static table: 8 = 200, 12 = 400, 13 = 404, 14 = 500).
                    return {0x88: 200, 0x8C: 400, 0x8D: 404, 0x8E: 500}.get(payload[0], -payload[0])
                if kind == 3 and stream == 1:
                    return 0
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    raise AssertionError("no HTTP/2 response")


def test_userinfo_in_an_h2_authority_is_refused(tenants):
    assert h2_request(tenants.port, "a.test", "/") == 200, "control: a plain h2 request is served"
    assert h2_request(tenants.port, "user@a.test", "/") == 400


# -- finding 5: the admin API ------------------------------------------------


def admin_raw(server: Server, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items()), f"Content-Length: {len(body)}"]
    with socket.create_connection(("127.0.0.1", server.admin_port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        (response,) = read_responses(sock, 1, timeout=30)
    return response.status, response.body


def test_a_cross_origin_simple_post_cannot_reload(tenants):
    host = {"Host": f"127.0.0.1:{tenants.admin_port}"}
    reloads = tenants.log().count("config reloaded")
    # What a web page can send without a preflight: text/plain, with its Origin.
    page = {**host, "Origin": "http://evil.example", "Content-Type": "text/plain"}
    assert admin_raw(tenants, "POST", "/admin/reload", page, b"{}")[0] == 403
    assert admin_raw(tenants, "POST", "/admin/reload", {**host, "Content-Type": "text/plain"})[0] == 415
    assert admin_raw(tenants, "POST", "/admin/reload", {**host, "Sec-Fetch-Site": "cross-site",
                                                        "Content-Type": "application/json"})[0] == 403
    assert tenants.log().count("config reloaded") == reloads, "no refused request reloaded anything"
    status, body = admin_raw(tenants, "POST", "/admin/reload", {**host, "Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["reloads"], body
    deadline = time.monotonic() + 5
    while tenants.log().count("config reloaded") == reloads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tenants.log().count("config reloaded") == reloads + 1


def test_a_dns_rebound_host_gets_nothing(tenants):
    for path in ["/apps", "/metrics", "/healthz"]:
        status, body = admin_raw(tenants, "GET", path, {"Host": f"rebound.evil.example:{tenants.admin_port}"})
        assert status == 421 and b"digest" not in body, (path, status, body)
    for host in [f"localhost:{tenants.admin_port}", f"127.0.0.1:{tenants.admin_port}"]:
        assert admin_raw(tenants, "GET", "/apps", {"Host": host})[0] == 200, host


def test_an_admin_token_guards_all_but_the_probes(make_server, tmp_path):
    token = "0123456789abcdef-test-token"
    (tmp_path / "token").write_text(token + "\n")
    with make_server("hello", "--admin-token-file", str(tmp_path / "token")) as server:
        host = {"Host": "localhost"}
        assert admin_raw(server, "GET", "/healthz", host)[0] == 200
        assert admin_raw(server, "GET", "/readyz", host)[0] == 200
        assert admin_raw(server, "GET", "/apps", host)[0] == 401
        assert admin_raw(server, "GET", "/metrics", {**host, "Authorization": "Bearer wrong-token-xxxxxxxx"})[0] == 401
        bearer = {**host, "Authorization": f"Bearer {token}"}
        assert admin_raw(server, "GET", "/apps", bearer)[0] == 200
        assert admin_raw(server, "POST", "/admin/reload", {**bearer, "Content-Type": "application/json"})[0] == 200
        assert token not in server.log(), "the token is never logged"


def test_an_open_admin_address_is_warned_about(make_server):
    # Bound to every interface for the moment the test takes.
    with make_server("hello", admin_addr="0.0.0.0:0") as server:
        server.wait_for_log("admin API listens beyond this machine without --admin-token-file")
    with make_server("hello") as server:
        assert "without --admin-token-file" not in server.log(), "no warning for loopback"


# -- finding 6: guest log volume and control characters ---------------------


@pytest.fixture(scope="module")
def probe_server(wasmhost_bin):
    with Server(wasmhost_bin, PROBE_APP, ["--max-instances", "1"], start_timeout=600) as server:
        yield server


def guest_log_bytes(server: Server) -> int:
    return sum(len(line) for line in server.log().splitlines() if "wasmhost::guest" in line and "app=app" in line)


def test_a_flood_of_guest_output_is_capped_and_counted(probe_server):
    before = guest_log_bytes(probe_server)
    # 20,000 lines of 1,000 bytes: 20 MB, in about a second.
    status, _, body = probe_server.request("GET", "/print?lines=20000&size=1000", timeout=60)
    assert (status, body) == (200, b"printed")
    logged = guest_log_bytes(probe_server) - before
    # The default budget is 1 MiB/s with a 2 MiB burst.
    assert logged < 6 * 2**20, f"{logged} bytes of guest output logged"
    probe_server.wait_for_log("guest output exceeds its budget")
    _, _, metrics = probe_server.admin_request("GET", "/metrics")
    dropped = re.search(rb'wasmhost_guest_output_dropped_bytes_total\{app="app"\} (\d+)', metrics)
    assert dropped and int(dropped.group(1)) > 10 * 2**20, metrics[-2000:]
    assert probe_server.request("GET", "/path")[0] == 200, "the app keeps serving"


def test_guest_control_characters_are_escaped(probe_server):
    time.sleep(2.5)  # let the budget refill after the flood test
    status, _, _ = probe_server.request("GET", "/print?text=" + "abc%0Ddef%1B%5B31mred")
    assert status == 200
    line = probe_server.wait_for_log(r"abc.*def.*red", timeout=5).group(0)
    assert "\r" not in line and "\x1b" not in line, repr(line)
    assert "abc\\rdef\\x1b[31mred" in line, repr(line)
