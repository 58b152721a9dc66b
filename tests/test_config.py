"""`wasmhost serve --config FILE`: several apps in one process, routed by
Host header and longest path prefix, each with its own limits, isolated
from each other's load."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, SHARED_CACHE_DIR, Server, dies_with_parent


def write_config(path: Path, guests: dict[str, Path], extra: str = "") -> Path:
    path.write_text(
        f"""
[server]
drain_timeout = "5s"

[[app]]
name = "hello"
module = "{guests['hello']}"
prefix = "/"
max_instances = 2
max_body_size = "1KiB"

[[app]]
name = "faults"
module = "{guests['faults']}"
prefix = "/faults"
strip_prefix = true
max_instances = 1
max_queue = 4
queue_timeout = "100ms"
request_timeout = "1s"
max_body_size = "1MiB"

[[app]]
name = "version"
module = "{guests['version']}"
hosts = ["v.example"]
env = {{ TENANT = "v" }}
{extra}
"""
    )
    return path


@pytest.fixture(scope="module")
def tenants(wasmhost_bin, guests, tmp_path_factory):
    config = write_config(tmp_path_factory.mktemp("config") / "wasmhost.toml", guests)
    with Server(wasmhost_bin, "", [], subcommand="serve", start_timeout=300, config=config) as server:
        yield server


def test_routes_by_prefix_and_host(tenants):
    assert tenants.request("GET", "/")[2] == b"hello from wasmhost\n"
    assert tenants.request("GET", "/faults/ok")[2] == b"ok", "longest prefix wins"
    assert tenants.request("GET", "/faultsx")[2] == b"hello from wasmhost\n", "prefixes match whole segments"
    assert tenants.request("GET", "/x", headers={"host": "v.example"})[2] == b"version=1"
    assert tenants.request("GET", "/faults/ok", headers={"host": "V.Example:8080"})[2] == b"version=1"
    status, _, body = tenants.request("GET", "/", headers={"host": "other.example"})
    assert status == 200 and body == b"hello from wasmhost\n", "unnamed hosts go to apps without hosts"


def test_apps_have_their_own_limits(tenants):
    big = b"x" * 2048
    assert tenants.request("POST", "/echo", body=big)[0] == 413, "hello: 1 KiB body limit"
    assert tenants.request("POST", "/faults/ok", body=big)[0] == 200, "faults: 1 MiB body limit"
    status, _, _ = tenants.request("GET", "/faults/loop", timeout=30)
    assert status == 504, "faults: 1 s request timeout"
    status, _, body = tenants.admin_request("GET", "/apps")
    apps = {app["name"]: app for app in json.loads(body)["apps"]}
    assert set(apps) == {"hello", "faults", "version"}
    assert apps["faults"]["limits"]["max_instances"] == 1
    assert apps["hello"]["limits"]["max_instances"] == 2


def p99(server: Server, path: str, count: int) -> float:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        status, _, _ = server.request("GET", path)
        latencies.append(time.perf_counter() - started)
        assert status == 200
    return statistics.quantiles(latencies, n=100)[98]


FLOOD = """
import http.client, sys, threading, time
port, path, seconds = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
counts = {}
lock = threading.Lock()
def run():
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", path)
            status = conn.getresponse().status
            conn.close()
        except OSError:
            status = -1
        with lock:
            counts[status] = counts.get(status, 0) + 1
        if status == 503:
            # Backs off so the clients, which share the server's two cores
            # here but would not in production, do not burn them.
            time.sleep(0.05)
threads = [threading.Thread(target=run) for _ in range(16)]
for t in threads: t.start()
for t in threads: t.join()
print(" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
"""

FLOOD_SLEEP = 0.2  # seconds the flooded tenant's guest sleeps per request
FLOOD_SECONDS = 4.0  # 1 s to saturate, then the loaded measurement (< 1 s)
ROUNDS = 3


def flooded_round(server: Server) -> tuple[float, float]:
    """One unloaded p99 of `hello`, then one while `faults` is flooded."""
    unloaded = p99(server, "/", 300)
    flood = subprocess.Popen(
        dies_with_parent(
            [sys.executable, "-c", FLOOD, str(server.port), f"/faults/sleep?ms={int(FLOOD_SLEEP * 1000)}", str(FLOOD_SECONDS)]
        ),
        stdout=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1)
        loaded = p99(server, "/", 300)
        assert flood.poll() is None, "the flood ended before the loaded measurement did"
        out, _ = flood.communicate(timeout=30)
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.communicate(timeout=10)
    counts = dict(item.split("=") for item in out.split())
    assert "503" in counts, f"the flooded tenant was saturated (its queue overflowed): {out}"
    assert set(counts) <= {"200", "503"}, out
    # Starvation, i.e. a `hello` request waiting in `faults`' queue, for its
    # instance, or on a runtime thread a `faults` request blocks, costs part
    # of the 200 ms that guest sleeps: never allowed, in any round.
    assert loaded < FLOOD_SLEEP / 4, f"starved: p99 unloaded {unloaded * 1000:.2f} ms, loaded {loaded * 1000:.2f} ms"
    return unloaded, loaded


@pytest.mark.time_limit(180)
def test_a_flooded_tenant_does_not_starve_another(tenants):
    """Tenant `faults` is flooded far past its one instance and short queue
    (its guest sleeps 200 ms per request) by 16 clients in another process;
    tenant `hello` sees no errors and its p99 stays within 2x of unloaded,
    the bound README.md states.

    A p99 of 300 requests is the third-slowest one, so on a 2-core machine
    shared with the clients one preemption by another process can decide it.
    Such noise is transient and unfairness is systematic, so a round that
    misses the 2x bound is measured again, up to three rounds; every round
    must still be free of errors and starvation."""
    p99(tenants, "/", 50)  # warm up
    rounds = []
    for _ in range(ROUNDS):
        unloaded, loaded = flooded_round(tenants)
        rounds.append(f"{unloaded * 1000:.2f} -> {loaded * 1000:.2f} ms")
        if loaded <= 2 * unloaded:
            return
    pytest.fail(f"p99 of hello (unloaded -> loaded) exceeded 2x in every round: {'; '.join(rounds)}")


@pytest.mark.parametrize(
    "extra, message",
    [
        pytest.param("max_instancs = 2", "max_instancs", id="unknown-key"),
        pytest.param('memory_limit = "lots"', "memory_limit", id="bad-size"),
        pytest.param('prefix = "api"', "prefix", id="bad-prefix"),
        pytest.param('allowed_outbound = ["ftp://files.example"]', "http, https or tcp", id="bad-outbound"),
        pytest.param('\n[[app]]\nname = "hello"\nmodule = "x.wasm"', "unique", id="duplicate-name"),
    ],
)
def test_config_errors_name_the_file_line_and_key(wasmhost_bin, guests, tmp_path, extra, message):
    config = write_config(tmp_path / "wasmhost.toml", guests, extra)
    result = subprocess.run(
        [str(wasmhost_bin), "serve", "--config", str(config), "--addr", "127.0.0.1:0", "--no-admin",
         "--cache-dir", str(SHARED_CACHE_DIR)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert str(config) in result.stderr and message in result.stderr, result.stderr
    if extra.startswith(("max_", "memory", "allowed_")):
        line = config.read_text().splitlines().index(extra) + 1
        assert f"line {line}" in result.stderr, result.stderr
