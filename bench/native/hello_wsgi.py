"""The native reference for bench/run.sh: the same hello response as the
Python guest, as a raw WSGI app for Granian."""

BODY = b"hello from wasmhost\n"
HEADERS = [("content-type", "text/plain"), ("content-length", str(len(BODY)))]


def app(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
