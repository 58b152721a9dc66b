"""State for a wasmhost app: a hit counter, sessions and config, kept by the
host in key-value buckets that outlive requests, instances and restarts.

Serve it (from the repository root)::

    wasmhost serve examples/counter/app.py --key-value default --key-value sessions \\
        --config-value GREETING=Hello

then try::

    curl http://127.0.0.1:8080/hits                       # {"hits": 1}, 2, 3...
    curl -X POST http://127.0.0.1:8080/sessions -d '{"user": "ada"}'
    curl http://127.0.0.1:8080/sessions/ID                # what was stored
    curl http://127.0.0.1:8080/                           # GREETING from config

The buckets live in ``$WASMHOST_DATA_DIR/app/kv.sqlite3`` (default
``~/.local/share/wasmhost``): stop the server, start it again, and the count
goes on. ``/hits`` is one atomic ``increment``: eight clients hitting it at
once never lose a count, however many instances serve them.
"""

import json
import secrets

import wasmhost

app = wasmhost.App()

hits = wasmhost.kv.open("default")
sessions = wasmhost.kv.open("sessions")


@app.get("/")
def index(request: wasmhost.Request) -> str:
    """A greeting from the app's config (`--config-value GREETING=...`)."""
    return f"{wasmhost.config.get('GREETING', 'Hello')} from wasmhost!\n"


@app.get("/hits")
def count(request: wasmhost.Request) -> dict[str, int]:
    """Counts this request, atomically, and answers the count so far."""
    return {"hits": hits.increment("hits")}


@app.post("/sessions")
def create_session(request: wasmhost.Request) -> tuple[dict[str, str], int]:
    """Stores the JSON body under a new session id."""
    session_id = secrets.token_hex(16)
    sessions.set(session_id, request.body)
    return {"id": session_id}, 201


@app.get("/sessions/{session_id}")
def read_session(request: wasmhost.Request, session_id: str) -> object:
    """The session's data, or 404."""
    data = sessions.get(session_id)
    if data is None:
        raise wasmhost.NotFound(f"no session {session_id}")
    return json.loads(data)


@app.delete("/sessions/{session_id}")
def end_session(request: wasmhost.Request, session_id: str) -> tuple[str, int]:
    """Deletes the session."""
    sessions.delete(session_id)
    return "", 204
