"""Request parsing."""

from __future__ import annotations

import pytest

import wasmhost
from wasmhost import Request
from wasmhost._datastructures import Headers, QueryDict


def test_method_path_and_query() -> None:
    request = Request("get", "/a%20b/c?x=1&y=2&x=3&empty=&flag")
    assert request.method == "GET"
    assert request.raw_path == "/a%20b/c"
    assert request.path == "/a b/c"
    assert request.query_string == "x=1&y=2&x=3&empty=&flag"
    assert request.query == {"x": ["1", "3"], "y": ["2"], "empty": [""], "flag": [""]}
    assert request.query["x"] == ["1", "3"]
    assert request.query.first("x") == "1"
    assert request.query.getlist("x") == ["1", "3"]
    assert request.query.first("empty") == ""
    assert "missing" not in request.query
    assert request.query.get("missing", ["d"]) == ["d"]
    assert request.query.first("missing") is None
    assert request.query.first("missing", "d") == "d"
    assert request.query.getlist("missing") == []


def test_query_decoding() -> None:
    request = Request("GET", "/?q=caf%C3%A9+au+lait&plus=%2B")
    assert request.query.first("q") == "café au lait"
    assert request.query["plus"] == ["+"]


def test_headers_are_case_insensitive_and_multi_valued() -> None:
    request = Request(
        "GET",
        "/",
        [("Content-Type", "application/json"), ("x-tag", "a"), ("X-Tag", "b"), ("x-request-id", "r-1")],
    )
    assert request.headers["content-type"] == "application/json"
    assert request.headers["CONTENT-TYPE"] == "application/json"
    assert request.headers.getlist("X-TAG") == ["a", "b"]
    assert request.headers.get("missing") is None
    assert "x-tag" in request.headers
    assert request.request_id == "r-1"
    assert request.content_type == "application/json"
    with pytest.raises(KeyError):
        request.headers["missing"]


def test_url_and_authority() -> None:
    request = Request("GET", "/p?q=1", {"host": "example.com:8080"}, scheme="https")
    assert request.url == "https://example.com:8080/p?q=1"
    request = Request("GET", "/p", authority="h.test")
    assert request.url == "http://h.test/p"


def test_body_is_read_lazily_once() -> None:
    reads = []

    def reader() -> bytes:
        reads.append(1)
        return "héllo".encode()

    request = Request("POST", "/", {"content-type": "text/plain; charset=utf-8"}, reader)
    assert reads == []
    assert request.body == "héllo".encode()
    assert request.text == "héllo"
    assert request.body == "héllo".encode()
    assert reads == [1]


def test_text_uses_charset() -> None:
    request = Request("POST", "/", {"content-type": "text/plain; charset=latin-1"}, "é".encode("latin-1"))
    assert request.charset == "latin-1"
    assert request.text == "é"


def test_json() -> None:
    request = Request("POST", "/", body=b'{"a": [1, 2.5, "x"]}')
    assert request.json() == {"a": [1, 2.5, "x"]}
    assert request.json() is request.json()


@pytest.mark.parametrize("body", [b"", b"  ", b"{", b'{"a": 1} x', b"NaN", b"\xff\xfe{", b"[" * 100000])
def test_malformed_json_is_bad_request(body: bytes) -> None:
    request = Request("POST", "/", body=body)
    with pytest.raises(wasmhost.BadRequest) as info:
        request.json()
    assert info.value.status == 400


def test_multidict_and_headers_helpers() -> None:
    query = QueryDict.from_pairs([("a", "1"), ("a", "2"), ("b", "3")])
    assert len(query) == 2 and isinstance(query, dict)
    assert query.getlist("a") is not query["a"]
    headers = Headers({"A": "1"})
    headers.add("a", "2")
    headers["B"] = "3"
    headers.set("a", "4")
    assert headers.items() == [("B", "3"), ("a", "4")]
    assert headers.setdefault("c", "5") == "5"
    del headers["C"]
    assert "c" not in headers
    with pytest.raises(ValueError):
        headers.add("x", "bad\r\nvalue")


@pytest.mark.parametrize("url", ["ftp://files.example/x", "/relative", "http://", "example.com/x"])
def test_fetch_refuses_urls_it_cannot_send(url: str) -> None:
    """Checked before anything reaches the host (so natively testable)."""
    with pytest.raises(ValueError, match="http:// or https://"):
        wasmhost.fetch(url)
