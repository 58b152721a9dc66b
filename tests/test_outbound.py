"""Outbound HTTP from guests: denied by default, allowed per app by an
allow-list, private and loopback addresses refused after DNS unless listed,
and the authority always the one the guest wrote (never the inbound Host).

An upstream `http.server` on 127.0.0.1 plays the allowed service; the
`outbound` guest fetches what a test asks for and reports the status, or
the `wasi:http` error code the host gave it.
"""

from __future__ import annotations

import http.server
import re
import threading
import urllib.parse

import pytest

import json

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
