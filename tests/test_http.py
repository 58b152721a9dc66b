"""HTTP front: serving, request ids, instance state, guest logs, and the
protocol limits (request head, header timeout, body size, disconnects).

Most tests share the module's `hello` server (see conftest.HELLO_ARGS:
one instance, 8 KiB head limit); the header timeout and body size tests
have servers of their own.
"""

import json
import re
import time

import pytest

from wasmhost_testing import (
    KIB,
    unique_id,
    chunked,
    raw_request,
    read_response,
    recv_until_eof,
    request_head,
)

HELLO_BODY = b"hello from wasmhost\n"
VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


# -- serving and request ids ------------------------------------------------


@pytest.mark.parametrize(
    "sent_id, echoed",
    [
        pytest.param("client-id.1:a_b", True, id="valid-id-echoed"),
        pytest.param(None, False, id="absent-id-generated"),
        pytest.param("has space", False, id="invalid-chars-replaced"),
        pytest.param("x" * 129, False, id="too-long-replaced"),
    ],
)
def test_hello_and_request_id(hello_server, sent_id, echoed):
    """`/` answers 200 with the app's body; `x-request-id` is the client's
    when it is valid and a generated one otherwise, and the access log line
    carries the same id."""
    headers = {"x-request-id": sent_id} if sent_id is not None else {}
    status, response_headers, body = hello_server.request("GET", "/", headers=headers)
    assert (status, body) == (200, HELLO_BODY)
    request_id = response_headers["x-request-id"]
    assert request_id, "response has no x-request-id"
    if echoed:
        assert request_id == sent_id
    else:
        assert request_id != sent_id
        assert VALID_ID.fullmatch(request_id), f"generated id {request_id!r} is not a valid id"
        _, again, _ = hello_server.request("GET", "/", headers=headers)
        assert again["x-request-id"] != request_id, "generated ids repeat"
    hello_server.wait_for_log(
        rf"wasmhost::access: .*path=/ status=200 .*request_id={re.escape(request_id)}\b"
    )


@pytest.mark.parametrize(
    "isolation, expected_counts",
    [("reuse", [1, 2, 3]), ("fresh", [1, 1, 1])],
    ids=["reuse", "fresh"],
)
def test_isolation_mode_and_instance_state(make_server, isolation, expected_counts):
    """With one instance, `reuse` keeps module state between requests (the
    counter climbs) and `fresh` never shows a request a used instance."""
    with make_server("hello", "--isolation", isolation, "--max-instances", "1") as server:
        counts = []
        for _ in expected_counts:
            status, _, body = server.request("GET", "/count")
            assert status == 200, body
            counts.append(int(body.decode().removeprefix("count=")))
    assert counts == expected_counts


def test_instance_survives_clients_closing_right_after_the_body(make_server):
    """A client that closes its connection as soon as it has read a
    Content-Length body must not cost the guest its instance: the guest may
    still be flushing when hyper has sent the last byte. 200 such requests on
    one instance count 1..200 and no guest failure is logged."""
    with make_server("hello", "--max-instances", "1") as server:
        counts = []
        for _ in range(200):
            status, _, body = server.request("GET", "/count")
            assert status == 200, body
            counts.append(int(body.decode().removeprefix("count=")))
        assert counts == list(range(1, 201))
        assert "guest failed" not in server.log()


def test_guest_output_logged_with_request_id(hello_server):
    """Lines the guest writes to stdout and stderr become log events tagged
    with the id of the request that wrote them."""
    request_id = unique_id("print")
    status, _, body = hello_server.request("GET", "/print", headers={"x-request-id": request_id})
    assert (status, body) == (200, b"printed\n")
    for stream, marker in [("stdout", "guest-stdout-marker"), ("stderr", "guest-stderr-marker")]:
        hello_server.wait_for_log(
            rf'wasmhost::guest: {marker}\b.*\brequest_id={request_id}\b.*\bstream="{stream}"'
        )
    assert "guest-stdout-marker" not in hello_server.stdout(), "guest stdout leaked to the host's stdout"


@pytest.mark.parametrize("sent_id", ["client-id.7:x_y", None], ids=["client-id", "generated-id"])
def test_request_id_reaches_the_guest(hello_server, sent_id):
    """The guest receives the request's id as `x-request-id`: the client's
    when it sent a sane one, else the generated one the response carries."""
    headers = {"x-request-id": sent_id} if sent_id else {}
    status, response_headers, body = hello_server.request("GET", "/request-id", headers=headers)
    assert status == 200, body
    assert body.decode() == response_headers["x-request-id"]
    if sent_id:
        assert body.decode() == sent_id


def test_guest_sees_the_env_flags_and_nothing_else_of_the_host(make_server):
    """`--env NAME=VALUE` sets the guest's environment, values with `=` and
    empty values included, and that is all it holds: the server's own
    environment (here with a marker variable, and PATH, HOME...) never
    reaches the guest."""
    flags = ["--env", "APP_MODE=test", "--env", "DSN=a=b;c=d", "--env", "EMPTY="]
    with make_server("hello", *flags, extra_env={"WASMHOST_TEST_HOST_SECRET": "must-not-leak"}) as server:
        status, _, body = server.request("GET", "/env")
    assert status == 200, body
    assert json.loads(body) == {"APP_MODE": "test", "DSN": "a=b;c=d", "EMPTY": ""}


def test_slow_small_body_gets_408_within_the_request_timeout(faults_server):
    """A body that declares at most 1 MiB is read by the host before the
    request takes an instance; one that stalls (10 of 100 bytes, then
    nothing) gets `408` once --request-timeout (1 s) is up, and the guest
    never sees the request."""
    before = faults_count(faults_server)
    head = request_head("POST", "/count", {"content-length": "100"})
    with faults_server.open_raw(timeout=10) as sock:
        started = time.monotonic()
        sock.sendall(head + b"0123456789")
        response = read_response(sock, timeout=10)
        elapsed = time.monotonic() - started
    assert response.status == 408, response
    assert 0.9 <= elapsed <= 2.0, f"408 after {elapsed:.2f} s, expected about 1 s"
    assert faults_count(faults_server) == before + 1, "the stalled request reached the guest"


def faults_count(server) -> int:
    """The counter of the `faults` instance serving `/count` (counts itself)."""
    status, _, body = server.request("GET", "/count")
    assert status == 200, body
    return int(body.decode().removeprefix("count="))


# -- request head limits ----------------------------------------------------


@pytest.mark.parametrize(
    "raw, expected_status",
    [
        pytest.param(b"GARBAGE\r\n\r\n", 400, id="malformed-request-line"),
        pytest.param(
            request_head("GET", "/", {"x-padding": "a" * (9 * KIB)}), 431, id="head-over-8KiB"
        ),
        pytest.param(
            request_head("GET", "/" + "a" * (9 * KIB)),
            431,
            id="uri-over-8KiB",
        ),
    ],
)
def test_bad_request_head_rejected(hello_server, raw, expected_status):
    """A malformed request line gets 400, a request head over
    --max-header-size (8 KiB) gets 431 (414 when it is the URI that is too
    long, says the README), and the server keeps serving."""
    response = raw_request(hello_server, raw, timeout=5)
    assert response.status == expected_status, response
    status, _, body = hello_server.request("GET", "/")
    assert (status, body) == (200, HELLO_BODY)


@pytest.fixture(scope="module")
def one_connection_server(make_server):
    """A `hello` server that holds one connection at a time and gives each
    1 s to send its request head."""
    with make_server("hello", "--max-connections", "1", "--header-read-timeout", "1s") as server:
        yield server


@pytest.mark.parametrize(
    "first_request, stall_with",
    [
        pytest.param(False, b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Partial: ", id="partial-head"),
        pytest.param(True, b"", id="idle-keep-alive"),
        pytest.param(False, b"", id="nothing-sent"),
        pytest.param(False, b"PRI * HTTP/2.0\r\n", id="partial-h2-preface"),
    ],
)
def test_stalled_connection_closed_after_header_timeout(one_connection_server, first_request, stall_with):
    """A connection that stalls before completing a request head (part of a
    head, nothing at all, or nothing after a keep-alive response) is closed
    after --header-read-timeout (1 s), which frees its slot under
    --max-connections 1: the next client is served."""
    server = one_connection_server
    with server.open_raw() as sock:
        if first_request:
            sock.sendall(request_head("GET", "/"))
            assert read_response(sock).status == 200
        sock.sendall(stall_with)
        _, elapsed = recv_until_eof(sock, timeout=4)
    assert 0.5 <= elapsed <= 3.0, f"connection closed after {elapsed:.2f} s, expected about 1 s"
    status, _, body = server.request("GET", "/", timeout=5)
    assert (status, body) == (200, HELLO_BODY)


@pytest.mark.parametrize(
    "declared",
    [pytest.param(100_000, id="buffered-by-host"), pytest.param(2 * 1024 * KIB, id="streamed-to-guest")],
)
def test_client_gone_mid_body_releases_instance(hello_server, declared):
    """A client that closes its connection after 10 bytes of a request body
    does not keep the only instance busy: the next request is served at once.
    Bodies up to 1 MiB are read by the host before the request takes an
    instance; larger ones stream to the guest, which sees the body fail."""
    request_id = unique_id("gone")
    head = request_head("POST", "/echo", {"content-length": str(declared), "x-request-id": request_id})
    with hello_server.open_raw() as sock:
        sock.sendall(head + b"0123456789")
    elapsed, status, _, body = hello_server.timed_request("GET", "/", timeout=10)
    assert (status, body) == (200, HELLO_BODY)
    assert elapsed < 3.0, f"next request took {elapsed:.2f} s"
    hello_server.wait_for_log(rf"wasmhost::access: .*path=/echo .*request_id={request_id}\b")


def test_slow_upload_does_not_hold_an_instance(hello_server):
    """While a client trickles a small body (10 of 1000 bytes, then nothing),
    other requests are served by the only instance: the host buffers small
    bodies before the request takes an instance."""
    head = request_head("POST", "/echo", {"content-length": "1000"})
    with hello_server.open_raw() as sock:
        sock.sendall(head + b"0123456789")
        for _ in range(3):
            elapsed, status, _, body = hello_server.timed_request("GET", "/", timeout=10)
            assert (status, body) == (200, HELLO_BODY)
            assert elapsed < 1.0, f"request took {elapsed:.2f} s behind a slow upload"


# -- request body limit -----------------------------------------------------

BODY_LIMIT = 1 * KIB


@pytest.fixture(scope="module")
def body_limit_server(make_server):
    """A `hello` server with --max-body-size 1KiB."""
    with make_server("hello", "--max-body-size", "1KiB") as server:
        yield server


@pytest.mark.parametrize("declared", [BODY_LIMIT + 1, 4 * KIB])
def test_declared_body_over_limit_rejected_early(body_limit_server, declared):
    """A Content-Length over --max-body-size gets 413 before the client sends
    any of the body."""
    head = request_head("POST", "/echo", {"content-length": str(declared)})
    response = raw_request(body_limit_server, head, timeout=5)
    assert response.status == 413, response
    assert response.complete


def test_chunked_body_over_limit_rejected(body_limit_server):
    """A chunked body that grows past --max-body-size (4 KiB in 1 KiB chunks)
    gets 413 rather than reaching the app whole."""
    data = request_head("POST", "/echo", {"transfer-encoding": "chunked"})
    data += chunked([b"z" * KIB] * 4)
    response = raw_request(body_limit_server, data, timeout=10)
    assert response.status == 413, response


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_body_within_limit_echoed(body_limit_server, framing):
    """A body of exactly --max-body-size reaches the app intact, however
    framed."""
    payload = bytes(range(256)) * (BODY_LIMIT // 256)
    assert len(payload) == BODY_LIMIT
    body = payload if framing == "content-length" else iter([payload[:500], payload[500:]])
    status, _, echoed = body_limit_server.request(
        "POST", "/echo", body=body, headers={"content-type": "application/octet-stream"}
    )
    assert (status, echoed) == (200, payload)
