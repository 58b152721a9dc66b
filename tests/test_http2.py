"""HTTP/2 over cleartext (h2c, prior knowledge): requests, the 128-stream
limit per connection, and clients that reset a stream mid-way.

The client is the `h2` package (pure-Python HTTP/2 state machine, pinned in
the Makefile) over a raw socket to 127.0.0.1, so a test decides exactly
which frames are sent and when, and sees every frame that comes back.
"""

from __future__ import annotations

import socket
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest

from wasmhost_testing import KIB, Server

HELLO_BODY = b"hello from wasmhost\n"
MAX_STREAMS = 128
"""The README's limit: HTTP/2 at most 128 concurrent streams per connection."""


class Stream:
    """What came back on one stream."""

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.ended = False
        self.reset: int | None = None
        """The error code of a RST_STREAM from the server."""

    @property
    def done(self) -> bool:
        return self.ended or self.reset is not None


class H2Client:
    """One h2c connection: requests on streams, frames pumped by hand."""

    def __init__(self, server: Server, timeout: float = 10.0) -> None:
        self.sock = server.open_raw(timeout)
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.streams: dict[int, Stream] = {}
        self.server_settings: dict[int, int] = {}
        self.terminated: h2.events.ConnectionTerminated | None = None
        self.flush()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "H2Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def start(self, method: str, path: str, headers: dict[str, str] | None = None, end_stream: bool = True) -> int:
        """Sends a request head on a new stream (not flushed); its id."""
        stream_id = self.conn.get_next_available_stream_id()
        fields = [(":method", method), (":scheme", "http"), (":authority", "localhost"), (":path", path)]
        fields += list((headers or {}).items())
        self.conn.send_headers(stream_id, fields, end_stream=end_stream)
        self.streams[stream_id] = Stream()
        return stream_id

    def send_body(self, stream_id: int, data: bytes, end_stream: bool = True) -> None:
        self.conn.send_data(stream_id, data, end_stream=end_stream)
        self.flush()

    def reset(self, stream_id: int) -> None:
        self.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        self.flush()

    def request(self, method: str, path: str, body: bytes | None = None, timeout: float = 10.0) -> Stream:
        """One whole request; waits for its whole response."""
        stream_id = self.start(method, path, end_stream=body is None)
        if body is not None:
            self.conn.send_data(stream_id, body, end_stream=True)
        self.flush()
        self.pump(lambda: self.streams[stream_id].done, timeout)
        return self.streams[stream_id]

    def pump(self, until, timeout: float = 10.0) -> None:
        """Reads and handles frames until `until()` is true; fails after
        `timeout` s or if the connection ends first."""
        deadline = time.monotonic() + timeout
        while not until():
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"timed out after {timeout} s; streams: {self.describe()}"
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(256 * KIB)
            except socket.timeout:
                continue
            assert data, f"the server closed the connection; streams: {self.describe()}"
            self.handle(self.conn.receive_data(data))
            self.flush()

    def handle(self, events) -> None:
        for event in events:
            if isinstance(event, h2.events.ResponseReceived):
                stream = self.streams[event.stream_id]
                stream.headers = dict(event.headers)
                stream.status = int(stream.headers[":status"])
            elif isinstance(event, h2.events.DataReceived):
                self.streams[event.stream_id].body += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                self.streams[event.stream_id].ended = True
            elif isinstance(event, h2.events.StreamReset):
                self.streams[event.stream_id].reset = event.error_code
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self.server_settings.update({code: setting.new_value for code, setting in event.changed_settings.items()})
            elif isinstance(event, h2.events.ConnectionTerminated):
                self.terminated = event

    def describe(self) -> str:
        done = {i: (s.status, s.reset) for i, s in self.streams.items() if s.done}
        return f"{len(self.streams)} opened, {len(done)} done {list(done.items())[:5]}, terminated={self.terminated}"


def test_h2c_requests_on_one_connection(hello_server):
    """A client speaking HTTP/2 from its first byte is served: several
    requests, one after another and ten at once, on one connection, with
    request bodies, and the request id in every response. The server
    announces the 128-stream limit."""
    with H2Client(hello_server) as client:
        response = client.request("GET", "/")
        assert (response.status, bytes(response.body)) == (200, HELLO_BODY)
        assert response.headers["x-request-id"]
        assert client.server_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] == MAX_STREAMS
        payload = bytes(range(256)) * 64
        response = client.request("POST", "/echo", body=payload)
        assert (response.status, bytes(response.body)) == (200, payload)

        ids = [client.start("GET", "/count") for _ in range(10)]
        client.flush()
        client.pump(lambda: all(client.streams[i].done for i in ids))
        streams = [client.streams[i] for i in ids]
        assert [s.status for s in streams] == [200] * 10, client.describe()
        counts = sorted(int(bytes(s.body).decode().removeprefix("count=")) for s in streams)
        # One instance (HELLO_ARGS) served all ten, each once.
        assert counts == list(range(counts[0], counts[0] + 10)), counts
        assert len({s.headers["x-request-id"] for s in streams}) == 10
        assert client.terminated is None


def test_h2c_stream_limit(hello_server):
    """A client that ignores the server's limit and opens 129 streams at
    once (sent before it reads the server's settings) gets the 129th
    refused (RST_STREAM REFUSED_STREAM) while the first 128 stay open; the
    connection goes on, and once a stream ends a new one is served.

    Each of the 128 is a POST declaring a 10-byte body it has not sent, so
    it waits in the host (small bodies are read before a request takes an
    instance) without costing an instance."""
    with H2Client(hello_server, timeout=30) as client:
        held = [client.start("POST", "/echo", {"content-length": "10"}, end_stream=False) for _ in range(MAX_STREAMS)]
        extra = client.start("POST", "/echo", {"content-length": "10"}, end_stream=False)
        client.flush()
        client.pump(lambda: client.streams[extra].done)
        assert client.streams[extra].reset == h2.errors.ErrorCodes.REFUSED_STREAM, client.describe()
        assert not any(client.streams[i].done for i in held), client.describe()

        client.send_body(held[0], b"0123456789")
        client.pump(lambda: client.streams[held[0]].done)
        first = client.streams[held[0]]
        assert (first.status, bytes(first.body)) == (200, b"0123456789"), client.describe()
        response = client.request("GET", "/")
        assert (response.status, bytes(response.body)) == (200, HELLO_BODY), client.describe()
        assert client.terminated is None
    status, _, body = hello_server.request("GET", "/")
    assert (status, body) == (200, HELLO_BODY)


def test_h2c_client_reset_during_the_request_body(hello_server):
    """A client that resets a stream while the guest reads its streamed
    request body frees the only instance (HELLO_ARGS) at once: the next
    request on the same connection is served promptly, not after the 30 s
    request timeout."""
    with H2Client(hello_server, timeout=30) as client:
        upload = client.start("POST", "/echo", end_stream=False)
        client.send_body(upload, b"x" * 1000, end_stream=False)
        hello_server.wait_for_busy(1)
        client.reset(upload)
        started = time.monotonic()
        response = client.request("GET", "/", timeout=10)
        elapsed = time.monotonic() - started
        assert (response.status, bytes(response.body)) == (200, HELLO_BODY), client.describe()
        assert elapsed < 2.0, f"the next request took {elapsed:.2f} s after the reset"
        assert client.terminated is None


def test_h2c_client_reset_during_the_response_body(make_server):
    """A client that resets a stream while a 64 MiB response streams to it
    frees the only instance at once (the next request on the same
    connection is served promptly, with the default 30 s request timeout),
    the connection goes on, and the access log says the client went away."""
    with make_server("faults", "--max-instances", "1") as server:
        with H2Client(server, timeout=30) as client:
            big = client.start("GET", "/big?mb=64")
            client.flush()
            client.pump(lambda: len(client.streams[big].body) >= 256 * KIB)
            client.reset(big)
            started = time.monotonic()
            response = client.request("GET", "/ok", timeout=10)
            elapsed = time.monotonic() - started
            assert (response.status, bytes(response.body)) == (200, b"ok"), client.describe()
            assert elapsed < 2.0, f"the next request took {elapsed:.2f} s after the reset"
            assert client.terminated is None
        server.wait_for_log(r'wasmhost::access: .*path=/big status=200 .*end="?client-gone"?')
