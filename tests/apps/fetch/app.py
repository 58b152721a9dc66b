"""Test app `fetch`: calls out with `wasmhost.fetch`, the SDK's outgoing HTTP.

Routes:
  GET  /get?url=URL   -> {"status", "body", "type"} of a GET to URL, or 502
                         {"error": code} when the host refuses or it fails
  POST /post?url=URL  -> the same for a POST of the request's JSON body
"""

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
