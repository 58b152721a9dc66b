"""Hot reload: the served module is swapped in place, bad modules are refused
and the old version keeps serving, and no request fails during a swap.

Each test serves a copy of the `version` guest from its own directory and
replaces that file the way editors and build tools do. `version` answers
``version=N``; version 2 is the same guest built with ``VERSION = "2"``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, Server, metric_value, read_response, request_head

SWAP_TIMEOUT = 30.0
"""Seconds a valid new module may take to be serving (debounce, compile from
the shared cache, instantiate)."""

EMPTY_COMPONENT = b"\x00asm\x0d\x00\x01\x00"
"""A valid component of the wrong world: it exports nothing."""


@pytest.fixture(scope="module")
def versions(guests, tmp_path_factory) -> dict[int, bytes]:
    """The `version` guest as built (1) and rebuilt with VERSION = "2" (2)."""
    source = tmp_path_factory.mktemp("version2") / "version"
    shutil.copytree(ROOT / "tests" / "guests" / "version", source, ignore=shutil.ignore_patterns("__pycache__"))
    app = source / "app.py"
    app.write_text(app.read_text().replace('VERSION = "1"', 'VERSION = "2"'))
    build = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_guest.py"), str(source)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert build.returncode == 0, build.stderr
    return {1: guests["version"].read_bytes(), 2: Path(build.stdout.splitlines()[-1]).read_bytes()}


def replace_by_rename(path: Path, data: bytes) -> None:
    """Write-then-rename, as editors and build tools save."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def version_of(server: Server) -> str:
    status, _, body = server.request("GET", "/")
    assert status == 200, (status, body)
    return body.decode()


def wait_for_version(server: Server, expected: int, timeout: float = SWAP_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if version_of(server) == f"version={expected}":
            return
        time.sleep(0.1)
    pytest.fail(f"version={expected} not served within {timeout} s; log:\n{server.log()[-3000:]}")


def stays_on(server: Server, expected: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert version_of(server) == f"version={expected}"
        time.sleep(0.1)


def reload_counts(server: Server) -> dict[str, int]:
    status, _, body = server.admin_request("GET", "/apps")
    assert status == 200
    return json.loads(body)["apps"][0]["reloads"]


@pytest.fixture
def served(wasmhost_bin, versions, tmp_path):
    """Factory: ``served(*args)`` makes an unstarted server (with `args`) on a
    copy of version 1 in the test's own directory; returns (server, module)."""

    def make(*args: str) -> tuple[Server, Path]:
        module = tmp_path / "app.wasm"
        module.write_bytes(versions[1])
        return Server(wasmhost_bin, module, args), module

    return make


def test_rename_swaps_to_the_new_version(served, versions):
    server, module = served()
    with server:
        assert version_of(server) == "version=1"
        replace_by_rename(module, versions[2])
        wait_for_version(server, 2)
        assert reload_counts(server)["swapped"] == 1


def test_slow_in_place_rewrite_keeps_old_version_until_complete(served, versions):
    server, module = served()
    with server:
        data = versions[2]
        step = len(data) // 8
        with open(module, "r+b") as f:
            f.truncate(0)
            for offset in range(0, len(data), step):
                f.write(data[offset:offset + step])
                f.flush()
                assert version_of(server) == "version=1"
                time.sleep(0.1)
        wait_for_version(server, 2)


@pytest.mark.parametrize("bad", [b"garbage bytes, not wasm\n", EMPTY_COMPONENT], ids=["garbage", "wrong-world"])
def test_bad_module_is_refused_and_old_version_keeps_serving(served, versions, bad):
    server, module = served()
    with server:
        replace_by_rename(module, bad)
        server.wait_for_log("reload refused", timeout=SWAP_TIMEOUT)
        stays_on(server, 1, 1.0)
        assert server.log().count("reload refused") == 1, "a refusal is logged once"
        assert reload_counts(server)["failed"] >= 1
        replace_by_rename(module, versions[2])
        wait_for_version(server, 2)


def test_deleted_then_restored(served, versions):
    server, module = served()
    with server:
        module.unlink()
        server.wait_for_log("reload refused", timeout=SWAP_TIMEOUT)
        stays_on(server, 1, 1.0)
        module.write_bytes(versions[2])
        wait_for_version(server, 2)


def test_five_saves_in_one_second_are_debounced(served, versions):
    server, module = served()
    with server:
        for i in range(5):
            replace_by_rename(module, versions[1 + (i % 2)])
            time.sleep(0.2)
        # Saves 0.2 s apart fall inside the 0.3 s debounce window: the burst
        # is one reload (of version 1, so usually no swap at all). A slow
        # machine may split it once; five saves must never mean five reloads,
        # and none at all would mean the watcher is dead.
        deadline = time.monotonic() + SWAP_TIMEOUT
        while sum(reload_counts(server).values()) == 0:
            assert time.monotonic() < deadline, f"no reload within {SWAP_TIMEOUT} s of five saves"
            time.sleep(0.05)
        time.sleep(2)  # room for further (wrong) reloads to show
        assert version_of(server) == "version=1"
        counts = reload_counts(server)
        assert 1 <= counts["swapped"] + counts["unchanged"] + counts["failed"] <= 2, counts


def test_sighup_and_admin_reload(served, versions):
    server, module = served("--no-watch")
    with server:
        replace_by_rename(module, versions[2])
        stays_on(server, 1, 1.5)
        server.send_signal(signal.SIGHUP)
        wait_for_version(server, 2)
        replace_by_rename(module, versions[1])
        status, _, body = server.admin_request("POST", "/admin/reload")
        assert status == 200, body
        assert json.loads(body)["reloads"][0]["result"] == "swapped"
        assert version_of(server) == "version=1"
        replace_by_rename(module, b"garbage")
        status, _, body = server.admin_request("POST", "/admin/reload")
        assert status == 422
        assert json.loads(body)["reloads"][0]["result"] == "refused"
        assert version_of(server) == "version=1"


def test_requests_in_flight_finish_on_the_old_version(wasmhost_bin, guests, tmp_path):
    """A reload while a request runs: the request finishes on the version
    it started on (the `hello` guest echoing its body, finished after the
    swap), new requests get the new version (the `faults` guest, which has
    no /echo), and the old version's idle instance is dropped at the swap,
    not when the request ends (`wasmhost_instances_retired_total`,
    reason `replaced`: 1 at the swap, 2 once the busy one is released)."""
    module = tmp_path / "app.wasm"
    module.write_bytes(guests["hello"].read_bytes())
    args = ["--no-watch", "--max-instances", "2", "--min-instances", "2"]
    with Server(wasmhost_bin, module, args) as server:
        (app,) = json.loads(server.admin_request("GET", "/apps")[2])["apps"]

        def replaced() -> float:
            return metric_value(server.metrics(), "wasmhost_instances_retired_total", app=app["name"], reason="replaced")

        with server.open_raw(timeout=30) as sock:
            # A chunked upload the guest is reading: busy until it ends.
            sock.sendall(request_head("POST", "/echo", {"transfer-encoding": "chunked"}) + b"7\r\nbefore-\r\n")
            server.wait_for_busy(1)
            replace_by_rename(module, guests["faults"].read_bytes())
            status, _, body = server.admin_request("POST", "/admin/reload", timeout=60)
            assert status == 200 and json.loads(body)["reloads"][0]["result"] == "swapped", body
            assert replaced() == 1, "the old version's idle instance was not dropped at the swap"
            assert server.request("GET", "/ok")[::2] == (200, b"ok"), "a new request got the old version"
            sock.sendall(b"5\r\nafter\r\n0\r\n\r\n")
            response = read_response(sock, timeout=30)
        assert (response.status, response.body) == (200, b"before-after"), response
        deadline = time.monotonic() + 5
        while replaced() != 2:
            assert time.monotonic() < deadline, f"{replaced()} instances retired as replaced, expected 2"
            time.sleep(0.05)


@pytest.mark.time_limit(240)
def test_ten_swaps_under_load_fail_no_request(served, versions):
    """Continuous keep-alive load from 4 clients while the module is swapped
    ten times: every response is 200 and from version 1 or 2, none fails,
    and after each swap settles only the new version answers."""
    server, module = served("--no-watch", "--max-instances", "4")
    with server:
        stop = threading.Event()
        failures: list[str] = []
        seen: dict[str, int] = {}
        lock = threading.Lock()

        def client() -> None:
            conn = server.connection(timeout=30)
            try:
                while not stop.is_set():
                    try:
                        conn.request("GET", "/")
                        response = conn.getresponse()
                        body = response.read().decode()
                    except Exception as err:  # noqa: BLE001 - any socket error is a failure
                        failures.append(f"socket error: {err!r}")
                        return
                    with lock:
                        if response.status != 200 or body not in ("version=1", "version=2"):
                            failures.append(f"{response.status} {body!r}")
                        seen[body] = seen.get(body, 0) + 1
            finally:
                conn.close()

        threads = [threading.Thread(target=client) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            for swap in range(10):
                target = 2 if swap % 2 == 0 else 1
                replace_by_rename(module, versions[target])
                status, _, body = server.admin_request("POST", "/admin/reload", timeout=60)
                assert status == 200, body
                assert json.loads(body)["reloads"][0]["result"] == "swapped"
                # After the swap only the new version answers new requests.
                assert version_of(server) == f"version={target}"
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert not failures, failures[:5]
        assert seen.get("version=1", 0) > 0 and seen.get("version=2", 0) > 0, seen
        assert reload_counts(server)["swapped"] == 10
