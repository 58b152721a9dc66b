"""Test app `fetch`: calls out with `wasmhost.fetch`, the SDK's outgoing HTTP.

Routes:
  GET  /get?url=URL   -> {"status", "body", "type"} of a GET to URL, or 502
                         {"error": code} when the host refuses or it fails
  POST /post?url=URL  -> the same for a POST of the request's JSON body
  GET  /burst?url=URL&n=N[&rounds=R][&settle_ms=S][&timeout_ms=T][&body=drop|keep|read][&hold_ms=H]
                      -> starts N GETs to URL without waiting for any, R times
                         (default 1); each round then waits S ms (default 300),
                         looks at every request's state, handles the responses
                         that arrived as `body` says (drop them at once; keep
                         them unread; read their bodies, keeping them), and
                         waits S ms more. T sets all three wasi:http timeouts.
                         Everything started stays alive until the end (plus H
                         ms), then is dropped. Answers {"rounds": [{state:
                         count}, ...]} with states `pending`, `response`,
                         `body-complete`, `body-failed` or the error code.
"""

import time
from collections import Counter
from urllib.parse import urlsplit

from componentize_py_types import Err, Ok
from wit_world.imports import outgoing_handler
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import Fields, OutgoingBody, OutgoingRequest, RequestOptions, Scheme_Http

import wasmhost

app = wasmhost.App()


def outcome(call) -> wasmhost.Response:
    try:
        response = call()
    except wasmhost.OutboundError as err:
        return wasmhost.Response.json({"error": err.code}, status=502)
    return wasmhost.Response.json(
        {"status": response.status, "body": response.text(), "type": response.headers.get("content-type")}
    )


@app.get("/get")
def get(request: wasmhost.Request) -> wasmhost.Response:
    return outcome(lambda: wasmhost.fetch(request.query.first("url", ""), timeout=5))


@app.post("/post")
def post(request: wasmhost.Request) -> wasmhost.Response:
    return outcome(lambda: wasmhost.fetch(request.query.first("url", ""), method="POST", json=request.json(), timeout=5))


def start(url: str, timeout_ms: int | None):
    """Sends a GET to `url` through wasi:http; the future of its response."""
    parts = urlsplit(url)
    request = OutgoingRequest(Fields())
    request.set_scheme(Scheme_Http())
    request.set_authority(parts.netloc)
    request.set_path_with_query(parts.path or "/")
    options = None
    if timeout_ms is not None:
        options = RequestOptions()
        for set_timeout in (options.set_connect_timeout, options.set_first_byte_timeout, options.set_between_bytes_timeout):
            set_timeout(timeout_ms * 1_000_000)
    OutgoingBody.finish(request.body(), None)
    return outgoing_handler.handle(request, options)


def states_of(futures: list) -> list:
    """Each future's result so far (None while pending). The host settles a
    future when its pollable is polled; one poll can miss a result that is
    there (tokio's cooperative budget, ~128 polls between yields), so the
    futures still pending are polled again after a pause, until none change."""
    states = [None] * len(futures)
    pending = list(range(len(futures)))
    while pending:
        still = []
        for i in pending:
            with futures[i].subscribe() as pollable:
                pollable.ready()
            states[i] = futures[i].get()
            if states[i] is None:
                still.append(i)
        if len(still) == len(pending):
            break
        pending = still
        time.sleep(0.02)
    return states


def read_to_end(stream) -> str:
    """Reads an incoming body stream until it ends or fails."""
    while True:
        try:
            stream.blocking_read(65536)
        except Err as err:
            return "body-complete" if isinstance(err.value, StreamError_Closed) else "body-failed"


def drop(resource) -> None:
    """Drops a wasi resource now rather than when Python collects it."""
    resource.__exit__(None, None, None)


@app.get("/burst")
def burst(request: wasmhost.Request) -> wasmhost.Response:
    query = request.query
    url = query.first("url", "")
    n = int(query.first("n", "1"))
    rounds = int(query.first("rounds", "1"))
    settle = int(query.first("settle_ms", "300")) / 1000
    timeout = query.first("timeout_ms")
    timeout_ms = int(timeout) if timeout is not None else None
    body_mode = query.first("body", "drop")
    kept = []  # every resource, children after their parents, dropped at the end in reverse
    results = []
    for _ in range(rounds):
        futures = [start(url, timeout_ms) for _ in range(n)]
        kept.extend(futures)
        time.sleep(settle)
        states = Counter()
        for state in states_of(futures):
            if state is None:
                states["pending"] += 1
            elif isinstance(state.value, Err):
                states[type(state.value.value).__name__.removeprefix("ErrorCode_")] += 1
            else:
                response = state.value.value
                if body_mode == "drop":
                    states["response"] += 1
                    drop(response)
                elif body_mode == "keep":
                    states["response"] += 1
                    kept.append(response)
                else:
                    body = response.consume()
                    stream = body.stream()
                    kept.extend([response, body, stream])
                    states[read_to_end(stream)] += 1
        results.append(dict(states))
        time.sleep(settle)
    time.sleep(int(query.first("hold_ms", "0")) / 1000)
    for resource in reversed(kept):
        drop(resource)
    return wasmhost.Response.json({"rounds": results})
