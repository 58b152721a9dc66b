"""The admin listener: health, readiness, introspection and Prometheus
metrics that add up to what the server actually did."""

from __future__ import annotations

import json
import signal
import time

from wasmhost_testing import BackgroundRequest, metric_value as value, parse_metrics


def test_health_readiness_and_apps(make_server):
    with make_server("hello") as server:
        assert server.admin_request("GET", "/healthz")[0] == 200
        assert server.admin_request("GET", "/readyz")[0] == 200
        status, _, body = server.admin_request("GET", "/apps")
        assert status == 200
        (app,) = json.loads(body)["apps"]
        assert app["module"] == str(server.app)
        assert len(app["digest"]) == 64
        assert server.admin_request("POST", "/healthz")[0] == 405
        assert server.admin_request("GET", "/nope")[0] == 404


def test_readiness_turns_false_while_draining(make_server):
    with make_server("faults", "--drain-timeout", "10s") as server:
        slow = BackgroundRequest(server, "GET", "/sleep?ms=2000")
        server.wait_for_busy(1)
        server.send_signal(signal.SIGTERM)
        server.wait_for_log("stopped accepting", timeout=5)
        status, _, body = server.admin_request("GET", "/readyz")
        assert (status, body) == (503, b"draining\n")
        assert slow.join(10)[0] == 200


def test_metrics_add_up(make_server):
    with make_server("faults", "--request-timeout", "1s", "--max-body-size", "1KiB") as server:
        for path, expected in [("/ok", 200), ("/ok", 200), ("/raise", 500), ("/loop", 504)]:
            assert server.request("GET", path)[0] == expected
        assert server.request("POST", "/ok", body=b"x" * 2048)[0] == 413
        server.wait_for_log(r"wasmhost::access: .*status=413")
        status, headers, body = server.admin_request("GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        samples = parse_metrics(body.decode())
        app = json.loads(server.admin_request("GET", "/apps")[2])["apps"][0]
        name = app["name"]
        assert value(samples, "wasmhost_requests_total", app=name, status_class="2xx") == 2
        assert value(samples, "wasmhost_requests_total", app=name, status_class="5xx") == 2
        assert value(samples, "wasmhost_requests_total", app=name, status_class="4xx") == 1
        assert value(samples, "wasmhost_request_duration_seconds_count", app=name) == 5
        assert value(samples, "wasmhost_guest_failures_total", app=name, kind="trap") == 1
        assert value(samples, "wasmhost_guest_failures_total", app=name, kind="timeout") == 1
        assert value(samples, "wasmhost_instances_retired_total", app=name, reason="failure") == 2
        assert value(samples, "wasmhost_rejected_requests_total", app=name, status="413") == 1
        assert value(samples, "wasmhost_queue_wait_seconds_count", app=name) == 4
        assert value(samples, "wasmhost_instantiation_seconds_count", app=name) >= 3
        assert value(samples, "wasmhost_module_info", app=name, digest=app["digest"]) == 1
        assert value(samples, "wasmhost_instances", app=name, state="busy") == 0
        assert value(samples, "wasmhost_queue_depth", app=name) == 0
        assert value(samples, "process_resident_memory_bytes") > 0


def test_requests_refused_before_routing_are_counted(make_server):
    """hyper answers an oversized head (431) and a malformed one (400)
    before any app sees them; they still show in the metrics, as app `-`."""
    from wasmhost_testing import raw_request, request_head

    with make_server("hello", "--max-header-size", "8KiB") as server:
        big = request_head("GET", "/", {"x-pad": "a" * 20_000})
        assert raw_request(server, big).status == 431
        assert raw_request(server, b"GET / HTTP/1.1\r\nHost: x\r\nbad header\r\n\r\n").status == 400
        assert raw_request(server, b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n").status == 400
        deadline = time.monotonic() + 5
        while True:
            samples = parse_metrics(server.admin_request("GET", "/metrics")[2].decode())
            counts = [value(samples, "wasmhost_rejected_requests_total", app="-", status=s) for s in ("431", "400")]
            if counts == [1, 2] or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert counts == [1, 2], counts


def test_access_log_says_a_bodyless_response_completed(make_server):
    """hyper never polls the body of a HEAD response: the log line must still
    say `complete`, not `client-gone`."""
    with make_server("hello") as server:
        assert server.request("GET", "/with-body")[0] == 200
        assert server.request("HEAD", "/without-body")[0] == 200
        server.wait_for_log(r'wasmhost::access: .*method=GET path=/with-body status=200 .*end="complete"')
        server.wait_for_log(r'wasmhost::access: .*method=HEAD path=/without-body status=200 .*end="complete"')


def test_access_log_template(make_server):
    """`--access-log TEMPLATE` writes one line per request from the template."""
    with make_server("hello", "--access-log", '{app} "{method} {path}" {status} {bytes}B id={request_id}') as server:
        status, _, body = server.request("GET", "/templated", headers={"x-request-id": "tmpl-1"})
        assert status == 200
        server.wait_for_log(rf'wasmhost::access: hello-[0-9a-f]+ "GET /templated" 200 {len(body)}B id=tmpl-1')
    with make_server("hello", "--access-log", "off") as server:
        server.request("GET", "/quiet")
        server.stop()
        assert "wasmhost::access" not in server.log(), server.log()
