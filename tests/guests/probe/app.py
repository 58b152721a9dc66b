"""Test guest `probe`: a plain wasi:http guest that sends whatever response
head and body it is told to, through raw `wasi:http/types` calls, to check
that the host owns the framing of every response (tests/test_security.py).

Routes (any method):
  /respond?status=N&cl=V&write=M&body=0|1
      a response with status N (default 200) and, when `cl` is given, the
      header ``content-length: V`` (sent as written, even if not a number);
      with body=1 (default) it opens the body, writes M bytes of ``x``
      (default 0) and finishes it; with body=0 it never opens a body.
      Writes the host refuses end the write loop; the guest still tries to
      finish the body, and answers nothing more.
  /print?lines=N&size=M&text=T
      writes N lines (default 1) of M bytes of ``x`` (default 100), or of
      the text T when given, to stdout, then answers ``printed``
  other   -> ``path=P authority=A``: the path and query, and the
             authority, that the guest sees
"""

from urllib.parse import parse_qs, urlsplit

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

import wasmhost_http as http

TEXT = {"content-type": "text/plain"}


def param(query: dict[str, list[str]], name: str, default: str | None = None) -> str | None:
    """The first value of query parameter `name`, or `default`."""
    values = query.get(name)
    return values[0] if values else default


def respond_raw(response_out: ResponseOutparam, query: dict[str, list[str]]) -> None:
    """Send the response head and body the query describes (see module doc)."""
    pairs: list[tuple[str, bytes]] = [("content-type", b"text/plain")]
    declared = param(query, "cl")
    if declared is not None:
        pairs.append(("content-length", declared.encode()))
    response = OutgoingResponse(Fields.from_list(pairs))
    response.set_status_code(int(param(query, "status", "200")))
    if param(query, "body", "1") == "0":
        ResponseOutparam.set(response_out, Ok(response))
        return
    body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    remaining = int(param(query, "write", "0"))
    with body.write() as sink:
        while remaining > 0:
            chunk = b"x" * min(remaining, 4096)
            try:
                sink.blocking_write_and_flush(chunk)
            except Err:
                break
            remaining -= len(chunk)
    try:
        OutgoingBody.finish(body, None)
    except Err:
        pass


class IncomingHandler(exports.IncomingHandler):
    """The `wasi:http/incoming-handler` export."""

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        """Route the request by path."""
        url = urlsplit(http.path(request))
        query = parse_qs(url.query)
        if url.path == "/respond":
            respond_raw(response_out, query)
        elif url.path == "/print":
            text = param(query, "text")
            line = text if text is not None else "x" * int(param(query, "size", "100"))
            for _ in range(int(param(query, "lines", "1"))):
                print(line)
            print(end="", flush=True)
            http.respond(response_out, 200, b"printed", TEXT)
        else:
            seen = f"path={http.path(request)} authority={request.authority() or ''}"
            http.respond(response_out, 200, seen.encode(), TEXT)
