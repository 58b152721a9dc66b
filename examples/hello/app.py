"""Hello world for wasmhost, written with the wasmhost Python SDK.

Serve it (from the repository root)::

    wasmhost serve examples/hello/app.py

then try::

    curl -i http://127.0.0.1:8080/
    curl -i http://127.0.0.1:8080/hello/world

`wasmhost serve app.py` builds the component (componentize-py, cached)
and serves it; `wasmhost dev examples/hello/app.py` serves it with instant
reload on save. Import everything at module top level: the interpreter is
snapshotted after the import at build time.
"""

import wasmhost

app = wasmhost.App()


@app.get("/")
def index(request: wasmhost.Request) -> str:
    """A plain-text greeting."""
    return "Hello from wasmhost!\n"


@app.get("/hello/{name}")
def hello(request: wasmhost.Request, name: str) -> dict[str, str]:
    """A JSON greeting for `name` (percent-decoded from the path)."""
    return {"message": f"Hello, {name}!", "request_id": request.request_id or ""}
