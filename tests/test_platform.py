"""The host's JSON and JSON-Schema imports, called from a real SDK guest
(tests/apps/platform), and route-level validation before the guest runs.

Every hostile input must come back as data (an error the guest can show),
never as a trap, and the server must keep serving.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from wasmhost_testing import ROOT, BackgroundRequest, Server

APP = ROOT / "tests" / "apps" / "platform" / "app.py"
JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def server(wasmhost_bin):
    """The platform test app with one instance, so a request that took an
    instance is visible to the next one."""
    with Server(wasmhost_bin, APP, ["--max-instances", "1", "--request-timeout", "10s"], start_timeout=600) as server:
        yield server


def call(server: Server, path: str, body: bytes | str, headers=JSON) -> dict:
    data = body.encode() if isinstance(body, str) else body
    status, _, answer = server.request("POST", path, body=data, headers=headers)
    assert status == 200, answer
    return json.loads(answer)


def test_check_accepts_json_and_locates_errors(server):
    assert call(server, "/json/check", '{"a": [1, 2, {"b": null}]}') == {"ok": True}
    bad = call(server, "/json/check", '{\n  "a": [1, 2,\n  }')
    assert bad["ok"] is False and "syntax" in bad["kind"].lower()
    assert bad["line"] == 3 and bad["column"] > 0, bad


@pytest.mark.parametrize(
    "document, kind",
    [
        pytest.param(b'"\xff\xfe"', "syntax", id="invalid-utf8"),
        pytest.param(b"{} {}", "syntax", id="trailing-data"),
        pytest.param(b"", "syntax", id="empty"),
        pytest.param(b"[" * 100_000, "deep", id="100k-deep-array"),
        pytest.param(b'{"a":' * 100_000, "deep", id="100k-deep-object"),
    ],
)
def test_hostile_documents_are_errors_not_traps(server, document, kind):
    result = call(server, "/json/check", document)
    assert result["ok"] is False and kind in result["kind"].lower(), result
    assert call(server, "/json/check", "[]") == {"ok": True}, "the instance still serves"


@pytest.mark.parametrize("number", ["1e400", "-1e400", "1" * 400, "0." + "1" * 400])
def test_huge_numbers_never_crash(server, number):
    """`check` never interprets numbers (docs: they are copied as written),
    so numbers beyond f64 are well-formed JSON."""
    result = call(server, "/json/check", f"[{number}]")
    assert result == {"ok": True}
    assert call(server, "/json/check", "[]") == {"ok": True}


def test_minify_keeps_or_sorts_keys(server):
    document = '{ "b" : 1,\n "a" : [ 1 , 2 ] , "c": {"z": "x y", "y": null} }'
    status, _, out = server.request("POST", "/json/minify", body=document.encode(), headers=JSON)
    assert status == 200 and out == b'{"b":1,"a":[1,2],"c":{"z":"x y","y":null}}'
    status, _, out = server.request("POST", "/json/minify?sort=1", body=document.encode(), headers=JSON)
    assert status == 200 and out == b'{"a":[1,2],"b":1,"c":{"y":null,"z":"x y"}}'


def test_extract_by_pointer(server):
    document = json.dumps({"a": {"b/c": [10, {"d": "e"}], "m~n": True}, "": 0})
    result = call(server, "/json/extract?p=/a/b~1c/1&p=/a/m~0n&p=/missing&p=/a/b~1c/9&p=/", document)
    assert result == {"ok": True, "values": ['{"d":"e"}', "true", None, None, "0"]}
    bad = call(server, "/json/extract?p=no-slash", document)
    assert bad["ok"] is False and "pointer" in bad["kind"].lower(), bad


@pytest.mark.parametrize(
    "schema, words",
    [
        pytest.param('{"type": 12}', ["type"], id="invalid-keyword"),
        pytest.param("{not json", [], id="malformed"),
        pytest.param('{"$ref": "https://example.com/schema.json"}', [], id="remote-ref"),
        pytest.param('{"items":' * 100_000, [], id="100k-deep"),
    ],
)
def test_bad_schemas_are_refused_with_a_reason(server, schema, words):
    result = call(server, "/schema/compile", schema)
    assert result["ok"] is False and result["message"], result
    for word in words:
        assert word in result["message"]
    assert call(server, "/schema/compile", '{"type": "object"}') == {"ok": True}


def test_validation_lists_every_error(server):
    result = call(server, "/schema/validate/order", '{"sku": "bad", "qty": 0, "extra": 1}')
    paths = sorted(error["instance_path"] for error in result["errors"])
    assert result["ok"] and paths == ["", "/qty", "/sku"], result
    assert call(server, "/schema/validate/order", '{"sku": "ABC-123", "qty": 2}') == {"ok": True, "errors": []}


def test_recursive_schema_validates_nested_documents(server):
    document = '{"children": [' * 60 + "{}" + "]}" * 60  # 120 levels, within the 128 limit
    assert call(server, "/schema/validate/tree", document) == {"ok": True, "errors": []}
    invalid = '{"children": [' * 50 + '{"children": 1}' + "]}" * 50
    result = call(server, "/schema/validate/tree", invalid)
    assert len(result["errors"]) == 1 and result["errors"][0]["instance_path"].endswith("/children"), result


def test_catastrophic_regex_finishes(server):
    started = time.monotonic()
    result = call(server, "/schema/validate/evil-regex", json.dumps("a" * 5000 + "!"))
    assert len(result["errors"]) == 1, result
    # A backtracking engine would take longer than the universe; the linear
    # one takes milliseconds. (The 10 s request timeout would turn a
    # backtracking run into a 504, so that is no bound to test against.)
    elapsed = time.monotonic() - started
    assert elapsed < 1, f"validation took {elapsed:.2f} s"


def pattern_heavy_schema(seed: int, patterns: int, atom: str) -> bytes:
    """A schema of `patterns` distinct patterns `^<seed>x<i><atom>$`;
    `seed` makes it distinct from the other schemas of a test."""
    properties = {f"p{i}": {"pattern": f"^{seed}x{i}{atom}$"} for i in range(patterns)}
    return json.dumps({"type": "object", "properties": properties}).encode()


def keep_schema(server: Server, schema: bytes) -> dict:
    """Compiles `schema` in the guest and keeps its handle alive."""
    status, _, answer = server.request("POST", "/schema/keep", body=schema, headers=JSON, timeout=60)
    assert status == 200, answer
    return json.loads(answer)


SCHEMA_HOST_MEMORY_BOUND_MIB = 250
"""How much the host's memory (outside guest linear memory) may grow while
a guest compiles and keeps the schemas of the attack below: the app's
64 MiB of compiled schemas, one compile's transient memory and the
allocator's slack. Before the fix it grew by ~650 MiB."""


def test_compiled_schemas_cannot_take_the_host_memory(wasmhost_bin):
    """Issue 11, finding 4: compiled schemas live in the host's heap,
    outside any guest's `--memory-limit`. A guest compiling many distinct
    pattern-heavy schemas and keeping them alive gets error values naming
    the limit it hit, the host's memory stays bounded, and the instance
    keeps serving."""
    with Server(wasmhost_bin, APP, ["--max-instances", "1", "--request-timeout", "60s"]) as server:
        # Warm-up: the first compile sets up jsonschema's meta-schemas.
        assert keep_schema(server, b'{"type": "object"}')["ok"]
        assert call(server, "/schema/release", b"") == {"released": 1}
        before = server.memory().host_kib
        # Patterns whose automata are ~230 KB each: ~140 MB per schema
        # under the old 2 MiB-per-pattern limit.
        heavy = [keep_schema(server, pattern_heavy_schema(seed, 600, r"\S{100}")) for seed in range(4)]
        # Schemas within every per-schema budget, ~9 MiB each: more of them
        # than the app's 64 MiB.
        many = [keep_schema(server, pattern_heavy_schema(seed, 1000, "[a-z]{30}")) for seed in range(4, 14)]
        grown_mib = (server.memory().host_kib - before) / 1024
        assert grown_mib < SCHEMA_HOST_MEMORY_BOUND_MIB, (
            f"the host's memory grew by {grown_mib:.0f} MiB; answers: {[a['ok'] for a in heavy + many]}"
        )
        for answer in heavy:
            assert not answer["ok"], answer
            assert "600 distinct patterns share the host's budget of 8 MiB" in answer["message"], answer
        kept = [answer for answer in many if answer["ok"]]
        refused = [answer for answer in many if not answer["ok"]]
        assert len(kept) >= 4 and refused, many
        for answer in refused:
            assert "of the host's limit of 64 MiB of compiled schemas per app" in answer["message"], answer
        # The same instance (its module state is intact) keeps serving, and
        # dropping the schemas gives their memory back to the app.
        assert call(server, "/schema/release", b"") == {"released": len(kept)}
        assert all(keep_schema(server, pattern_heavy_schema(seed, 1000, "[a-z]{30}"))["ok"] for seed in (4, 5))
        assert call(server, "/schema/validate/order", ORDER_OK) == {"ok": True, "errors": []}
        status, _, _ = server.request("POST", "/orders", body=ORDER_OK.encode(), headers=JSON)
        assert status == 201
        status, _, _ = server.request("POST", "/orders", body=b'{"sku": "bad", "qty": 2}', headers=JSON)
        assert status == 422


ORDER_OK = '{"sku": "ABC-123", "qty": 2}'


def reached(server: Server) -> int:
    status, _, body = server.request("GET", "/count")
    assert status == 200
    return json.loads(body)["orders"]


def test_route_validation_happens_before_python(server):
    before = reached(server)
    status, headers, body = server.request("POST", "/orders", body=ORDER_OK.encode(), headers=JSON)
    assert status == 201 and json.loads(body) == {"sku": "ABC-123", "qty": 2}

    status, headers, body = server.request("POST", "/orders", body=b'{"sku": "ABC-123",', headers=JSON)
    assert status == 400 and headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 400 and problem["title"] and "line 1" in problem["detail"], problem

    status, headers, body = server.request("POST", "/orders", body=b'{"sku": "abc", "qty": 0}', headers=JSON)
    assert status == 422 and headers["content-type"] == "application/problem+json"
    problem = json.loads(body)
    assert problem["status"] == 422
    assert sorted(e["instancePath"] for e in problem["errors"]) == ["/qty", "/sku"], problem
    assert all(e["schemaPath"] and e["message"] for e in problem["errors"]), problem

    status, _, body = server.request("POST", "/orders", body=ORDER_OK.encode(), headers={"content-type": "text/plain"})
    assert status == 415, body
    assert reached(server) == before + 1, "only the valid order reached Python"


def test_invalid_bodies_never_wait_for_an_instance(server):
    """With the only instance busy for 3 s, an invalid order is refused at
    once: it never queues for an instance."""
    slow = BackgroundRequest(server, "GET", "/slow?ms=3000")
    server.wait_for_busy(1)
    started = time.monotonic()
    status, _, _ = server.request("POST", "/orders", body=b'{"qty": "x"}', headers=JSON)
    elapsed = time.monotonic() - started
    assert status == 422 and elapsed < 1.5, elapsed
    assert not slow.done(), "the slow request ended before the invalid one was sent"
    assert slow.join(10)[0] == 200


def test_unhandled_exception_is_a_500_from_the_sdk(server):
    """The SDK answers an exception with its own `application/problem+json`
    500 (not the host's, which would mean the guest trapped) and the
    instance, with its state, keeps serving."""
    assert server.request("POST", "/orders", body=ORDER_OK.encode(), headers=JSON)[0] == 201
    before = reached(server)
    status, headers, body = server.request("GET", "/boom")
    assert status == 500
    assert headers["content-type"] == "application/problem+json", (headers, body)
    assert json.loads(body)["status"] == 500, body
    assert b"boom" not in body, "the traceback goes to the log, not the client"
    assert server.wait_for_log(r"boom: an unhandled exception", timeout=5)
    assert reached(server) == before, "the instance (and its count of orders) did not survive"


# wasmhost:platform/exchange: the SDK reads request heads and bodies and
# sends responses in one host call each.


@pytest.mark.parametrize(
    "size, chunked",
    [
        pytest.param(0, False, id="empty"),
        pytest.param(100_000, False, id="buffered-by-the-host"),
        pytest.param(2 << 20, False, id="over-1MiB-streamed"),
        pytest.param(300_000, True, id="chunked-streamed"),
    ],
)
def test_the_app_reads_every_body_whole(server, size, chunked):
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    sent = [body[i : i + 65536] for i in range(0, len(body), 65536)] if chunked else body
    status, _, answer = server.request("POST", "/body/digest", body=sent)
    assert status == 200, answer
    assert json.loads(answer) == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def test_the_app_sees_the_request_head_as_sent(server):
    conn = server.connection(10)
    try:
        conn.putrequest("GET", "/headers?x=1", skip_accept_encoding=True)
        for name, value in [("X-Multi", "one"), ("Accept", "*/*"), ("x-multi", "two"), ("X-Latin", "caf\xe9")]:
            conn.putheader(name, value.encode("latin-1"))
        conn.putheader("Connection", "keep-alive")
        conn.endheaders()
        response = conn.getresponse()
        status, answer = response.status, response.read()
    finally:
        conn.close()
    assert status == 200, answer
    pairs = [tuple(pair) for pair in json.loads(answer)["headers"]]
    assert [p for p in pairs if p[0] == "x-multi"] == [("x-multi", "one"), ("x-multi", "two")], "repeats kept, in order"
    assert ("x-latin", "caf\xe9") in pairs, "values decoded as latin-1"
    names = {name for name, _ in pairs}
    assert "host" not in names and "connection" not in names, "wasi:http hides these, and so does the one-call head"


def test_a_response_the_host_refuses_is_a_500_and_the_app_goes_on(server):
    status, _, body = server.request("GET", "/bad-header")
    assert status == 500
    assert b"never sent" not in body
    assert server.wait_for_log(r"the host refused the response.*invalid value for header x-bad", timeout=5)
    assert server.request("GET", "/count")[0] == 200, "the instance keeps serving"
