"""Test app `probe`: an SDK app that answers with whatever it is told to, for
the security regression tests (tests/test_security.py).

Routes:
  GET|HEAD /respond?status=N&cl=V&body=TEXT
      `wasmhost.Response(TEXT, status=N)` with, when `cl` is given, the
      header ``content-length: V`` exactly as written (through
      `wasmhost:platform/exchange`)
  GET /path    -> the request target (path and query) and authority the app sees
  GET /print?lines=N&size=M&text=T
      writes N lines (default 1) of M bytes of ``x`` (default 100), or of
      the text T, to stdout, then answers ``printed``
"""

import sys

import wasmhost

app = wasmhost.App()


@app.route("/respond", methods=["GET", "HEAD"])
def respond(request: wasmhost.Request) -> wasmhost.Response:
    query = request.query
    headers = {}
    if "cl" in query:
        headers["content-length"] = query.first("cl", "")
    return wasmhost.Response(query.first("body", ""), status=int(query.first("status", "200")), headers=headers)


@app.get("/path")
def path(request: wasmhost.Request) -> dict:
    return {"target": request.target, "authority": request.authority}


@app.get("/print")
def print_lines(request: wasmhost.Request) -> str:
    query = request.query
    text = query.first("text")
    line = text if text is not None else "x" * int(query.first("size", "100"))
    for _ in range(int(query.first("lines", "1"))):
        sys.stdout.write(line + "\n")
    sys.stdout.flush()
    return "printed"
