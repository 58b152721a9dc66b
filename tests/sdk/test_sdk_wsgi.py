"""The WSGI adapter: environ building and start_response semantics."""

from __future__ import annotations

import sys

import pytest

from wasmhost._wsgi import build_environ, run_wsgi


def environ_for(method: str = "GET", target: str = "/", headers=(), body: bytes = b"", **kwargs):
    return build_environ(method, target, list(headers), body, **kwargs)


def test_environ_basics() -> None:
    env = environ_for(
        "post",
        "/caf%C3%A9/x%2Fy?a=1&b=%20",
        [
            ("content-type", b"application/json"),
            ("content-length", "2"),
            ("x-forwarded-for", "1.2.3.4"),
            ("accept", "text/html"),
            ("accept", "application/json"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            ("x_sneaky", "dropped"),
        ],
        b"{}",
        scheme="https",
        authority="shop.example:8443",
    )
    assert env["REQUEST_METHOD"] == "POST"
    assert env["SCRIPT_NAME"] == ""
    # PEP 3333: the decoded path as latin-1 "bytes in str".
    assert env["PATH_INFO"] == "/caf\u00c3\u00a9/x/y"
    assert env["PATH_INFO"].encode("latin-1").decode("utf-8") == "/café/x/y"
    assert env["QUERY_STRING"] == "a=1&b=%20"
    assert env["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert env["SERVER_NAME"] == "shop.example"
    assert env["SERVER_PORT"] == "8443"
    assert env["HTTP_HOST"] == "shop.example:8443"
    assert env["CONTENT_TYPE"] == "application/json"
    assert env["CONTENT_LENGTH"] == "2"
    assert "HTTP_CONTENT_TYPE" not in env
    assert env["HTTP_X_FORWARDED_FOR"] == "1.2.3.4"
    assert env["HTTP_ACCEPT"] == "text/html, application/json"
    assert env["HTTP_COOKIE"] == "a=1; b=2"
    assert "HTTP_X_SNEAKY" not in env
    assert env["REMOTE_ADDR"] == "127.0.0.1"
    assert env["wsgi.version"] == (1, 0)
    assert env["wsgi.url_scheme"] == "https"
    assert env["wsgi.errors"] is sys.stderr
    assert env["wsgi.multithread"] is False
    assert env["wsgi.multiprocess"] is True
    assert env["wsgi.run_once"] is False
    assert env["wsgi.input"].read() == b"{}"


def test_environ_defaults_and_ipv6_host() -> None:
    env = environ_for(remote_addr="10.0.0.9")
    assert env["PATH_INFO"] == "/"
    assert env["QUERY_STRING"] == ""
    assert env["SERVER_NAME"] == "localhost"
    assert env["SERVER_PORT"] == "80"
    assert env["REMOTE_ADDR"] == "10.0.0.9"
    assert "CONTENT_LENGTH" not in env
    env = environ_for(authority="[::1]:9000")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("[::1]", "9000")
    env = environ_for(authority="example.com", scheme="https")
    assert (env["SERVER_NAME"], env["SERVER_PORT"]) == ("example.com", "443")


def test_input_is_lazy_and_file_like() -> None:
    calls = []

    def reader() -> bytes:
        calls.append(1)
        return b"line1\nline2\n"

    env = build_environ("POST", "/", [], reader)
    assert calls == []
    stream = env["wsgi.input"]
    assert stream.readline() == b"line1\n"
    assert stream.read(3) == b"lin"
    assert list(stream) == [b"e2\n"]
    assert calls == [1]


# --------------------------------------------------------------------------
# Calling apps


class Closing:
    """An iterable with close(), recording what happened."""

    def __init__(self, chunks, log):
        self.chunks = chunks
        self.log = log

    def __iter__(self):
        for chunk in self.chunks:
            self.log.append(("yield", chunk))
            yield chunk

    def close(self):
        self.log.append("close")


def test_simple_app() -> None:
    def app(environ, start_response):
        start_response("201 Created", [("Content-Type", "text/plain"), ("X-Path", environ["PATH_INFO"])])
        return [b"made ", b"it"]

    response = run_wsgi(app, environ_for(target="/thing"))
    assert response.status == 201
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["x-path"] == "/thing"
    assert not response.is_stream
    assert response.body == b"made it"


def test_streamed_iterable_is_closed() -> None:
    log: list = []

    def app(environ, start_response):
        start_response("200 OK", [])
        return Closing([b"", b"a", b"b"], log)

    response = run_wsgi(app, environ_for())
    assert response.is_stream
    # Only the first non-empty chunk was produced before the headers.
    assert log == [("yield", b""), ("yield", b"a")]
    assert list(response.chunks) == [b"a", b"b"]
    response.chunks.close()
    response.chunks.close()
    assert log[-1] == "close"
    assert log.count("close") == 1


def test_a_body_known_to_be_complete_is_not_streamed() -> None:
    """An iterable whose first chunk matches the declared Content-Length
    (what Flask/Werkzeug return), or that ends without a non-empty chunk,
    is sent in one piece; its close() is called at once."""
    log: list = []

    def declared(environ, start_response):
        start_response("200 OK", [("Content-Length", "5")])
        return Closing([b"hello", b"never pulled"], log)

    response = run_wsgi(declared, environ_for())
    assert not response.is_stream and response.body == b"hello"
    assert log == [("yield", b"hello"), "close"]

    def empty(environ, start_response):
        start_response("204 No Content", [])
        return Closing([b""], log)

    log.clear()
    response = run_wsgi(empty, environ_for())
    assert not response.is_stream and response.body == b""
    assert log == [("yield", b""), "close"]


def test_a_body_that_may_go_on_is_streamed() -> None:
    """Without a matching Content-Length the first chunk may not be all:
    the rest is streamed, and nothing is pulled ahead of the headers."""

    def shorter(environ, start_response):
        start_response("200 OK", [("Content-Length", "6")])
        return iter([b"abc", b"def"])

    def undeclared(environ, start_response):
        start_response("200 OK", [("Content-Length", "many")])
        return iter([b"abc", b"def"])

    for app in (shorter, undeclared):
        response = run_wsgi(app, environ_for())
        assert response.is_stream
        assert list(response.chunks) == [b"abc", b"def"]


def test_write_callable_comes_first() -> None:
    def app(environ, start_response):
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"one ")
        write(b"two ")
        return iter([b"three"])

    response = run_wsgi(app, environ_for())
    assert response.read() == b"one two three"


def test_write_with_list_result() -> None:
    def app(environ, start_response):
        start_response("200 OK", [])("first ")  # type: ignore[operator]
        return [b"second"]

    def app_bytes(environ, start_response):
        start_response("200 OK", [])(b"first ")
        return [b"second"]

    assert run_wsgi(app, environ_for()).status == 500  # write() takes bytes
    assert run_wsgi(app_bytes, environ_for()).body == b"first second"


def test_exception_before_start_response_is_500(capsys) -> None:
    def app(environ, start_response):
        raise RuntimeError("no database")

    response = run_wsgi(app, environ_for(headers=[("x-request-id", "req-9")]))
    assert response.status == 500
    assert b"no database" not in response.read()
    err = capsys.readouterr().err
    assert "no database" in err and "req-9" in err


def test_exception_before_first_chunk_is_500_and_closes(capsys) -> None:
    log: list = []

    class Failing(Closing):
        def __iter__(self):
            raise ValueError("broken iterable")

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html")])
        return Failing([], log)

    response = run_wsgi(app, environ_for())
    assert response.status == 500
    assert log == ["close"]
    assert "broken iterable" in capsys.readouterr().err


def test_missing_start_response_is_500(capsys) -> None:
    response = run_wsgi(lambda environ, start_response: [b"x"], environ_for())
    assert response.status == 500
    assert "start_response" in capsys.readouterr().err


def test_exc_info_replaces_headers_before_they_are_sent() -> None:
    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html")])
        try:
            raise KeyError("x")
        except KeyError:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info())
        return [b"sorry"]

    response = run_wsgi(app, environ_for())
    assert response.status == 503
    assert response.headers.getlist("content-type") == ["text/plain"]
    assert response.body == b"sorry"


def test_second_start_response_without_exc_info_is_an_error() -> None:
    def app(environ, start_response):
        start_response("200 OK", [])
        start_response("500 Oops", [])
        return [b""]

    assert run_wsgi(app, environ_for()).status == 500


def test_exc_info_after_headers_sent_reraises() -> None:
    log: list = []
    holder = {}

    def app(environ, start_response):
        holder["start_response"] = start_response
        start_response("200 OK", [])

        def body():
            yield b"first"
            try:
                raise KeyError("late")
            except KeyError:
                holder["start_response"]("500 Error", [], sys.exc_info())
            yield b"never"  # pragma: no cover

        return body()

    response = run_wsgi(app, environ_for())
    assert response.status == 200
    chunks = iter(response.chunks)
    assert next(chunks) == b"first"
    with pytest.raises(KeyError, match="late"):
        next(chunks)
    assert log == []


def test_invalid_status_and_headers_are_500() -> None:
    def bad_status(environ, start_response):
        start_response("OK", [])
        return [b""]

    def bad_headers(environ, start_response):
        start_response("200 OK", [("X-A", 1)])
        return [b""]

    assert run_wsgi(bad_status, environ_for()).status == 500
    assert run_wsgi(bad_headers, environ_for()).status == 500


def test_non_bytes_chunk_is_500() -> None:
    def app(environ, start_response):
        start_response("200 OK", [])
        return iter(["text"])

    assert run_wsgi(app, environ_for()).status == 500


def test_flask_style_app_reads_input_without_content_length() -> None:
    def app(environ, start_response):
        assert environ["wsgi.input_terminated"] is True
        data = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Length", str(len(data)))])
        return [data]

    response = run_wsgi(app, environ_for("POST", body=b"chunked body"))
    assert response.body == b"chunked body"
    assert response.headers["content-length"] == "12"
