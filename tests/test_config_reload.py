"""Reloading `wasmhost serve --config FILE`: apps added, removed, changed
and moved while the process keeps serving; a bad file, a bad module or a
file the process has no room for is refused and the old apps keep serving.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from wasmhost_testing import Server


def app_table(name: str, module: Path, prefix: str, extra: str = "") -> str:
    return f'[[app]]\nname = "{name}"\nmodule = "{module}"\nprefix = "{prefix}"\nstrip_prefix = true\n{extra}\n'


def reload(server: Server) -> tuple[int, dict]:
    status, _, body = server.admin_request("POST", "/admin/reload", timeout=120)
    return status, json.loads(body)


def get(server: Server, path: str) -> tuple[int, bytes]:
    status, _, body = server.request("GET", path)
    return status, body


@pytest.fixture
def config(tmp_path) -> Path:
    return tmp_path / "wasmhost.toml"


def count(server: Server, path: str) -> int:
    """The request counter of the `hello` instance that serves `path`."""
    status, body = get(server, path)
    assert status == 200, body
    return int(body.decode().removeprefix("count="))


def test_apps_serving_one_module_share_its_code_but_not_their_state(wasmhost_bin, guests, config):
    # Two tenants on the same component: it is compiled and linked once (the
    # second load says `source=shared`), each app keeps its own instances,
    # and reloading one leaves the other's instance serving.
    one = "max_instances = 1"
    config.write_text(app_table("a", guests["hello"], "/a", one) + app_table("b", guests["hello"], "/b", one))
    with Server(wasmhost_bin, "", ["--no-watch"], subcommand="serve", config=config) as server:
        server.wait_for_log(r'component compiled.*source="?shared"?')
        assert [count(server, "/a/count"), count(server, "/a/count"), count(server, "/b/count")] == [1, 2, 1]

        config.write_text(
            app_table("a", guests["hello"], "/a", one + '\nenv = { X = "1" }') + app_table("b", guests["hello"], "/b", one)
        )
        status, report = reload(server)
        assert status == 200, report
        assert len(re.findall(r'component compiled.*source="?shared"?', server.log())) == 2, "the new `a` shares it too"
        assert count(server, "/a/count") == 1, "`a` was reloaded: a new instance"
        assert count(server, "/b/count") == 2, "`b` kept its instance"


def test_apps_are_added_changed_moved_and_removed(wasmhost_bin, guests, config):
    # `hello` has one instance, so its request counter shows whether the
    # instance that served before a reload still serves after it.
    one = "max_instances = 1"
    config.write_text(app_table("hello", guests["hello"], "/h", one) + app_table("v", guests["version"], "/v"))
    with Server(wasmhost_bin, "", ["--no-watch"], subcommand="serve", config=config) as server:
        assert get(server, "/v/") == (200, b"version=1")
        assert get(server, "/h/") == (200, b"hello from wasmhost\n")
        hello_before = count(server, "/h/count")
        assert hello_before == 2

        # Add `faults`, move `hello` to /hello, give `v` an env var (a
        # change: it is reloaded), and drop nothing yet.
        config.write_text(
            app_table("hello", guests["hello"], "/hello", one)
            + app_table("v", guests["version"], "/v", 'env = { X = "1" }')
            + app_table("faults", guests["faults"], "/f")
        )
        status, report = reload(server)
        assert status == 200, report
        changes = report["config"]["changes"]
        assert changes == {"added": ["faults"], "changed": ["v"], "removed": [], "kept": ["hello"]}, report
        assert get(server, "/f/ok") == (200, b"ok")
        assert count(server, "/hello/count") == hello_before + 1, "the kept app lost its warm instance"
        assert get(server, "/h/")[0] == 404
        assert get(server, "/v/") == (200, b"version=1")

        # Remove `faults`.
        config.write_text(app_table("hello", guests["hello"], "/hello", one) + app_table("v", guests["version"], "/v"))
        status, report = reload(server)
        assert status == 200 and report["config"]["changes"]["removed"] == ["faults"], report
        assert get(server, "/f/ok")[0] == 404
        apps = json.loads(server.admin_request("GET", "/apps")[2])
        assert sorted(app["name"] for app in apps["apps"]) == ["hello", "v"], apps
        assert "wasmhost_config_reloads_total{result=\"applied\"} 2" in server.admin_request("GET", "/metrics")[2].decode()


@pytest.mark.parametrize(
    "broken, message",
    [
        pytest.param('[[app]]\nname = "x"\nmodule = "x.wasm"\nmax_instancs = 1\n', "max_instancs", id="unknown-key"),
        pytest.param("not toml [", "invalid config", id="parse-error"),
        pytest.param("{bad_module}", "cannot serve", id="bad-module"),
        pytest.param("{same_route}", "both serve prefix", id="route-clash"),
        pytest.param("{too_big}", "restart wasmhost", id="over-capacity"),
    ],
)
def test_a_bad_config_is_refused_and_the_old_apps_keep_serving(wasmhost_bin, guests, config, tmp_path, broken, message):
    good = app_table("v", guests["version"], "/v")
    config.write_text(good)
    not_wasm = tmp_path / "broken.wasm"
    not_wasm.write_bytes(b"\0asm but not really")
    broken = broken.format(
        bad_module=good + app_table("bad", not_wasm, "/bad"),
        same_route=good + app_table("w", guests["hello"], "/v"),
        too_big=app_table("v", guests["version"], "/v", "max_instances = 500"),
    )
    with Server(wasmhost_bin, "", ["--no-watch"], subcommand="serve", config=config) as server:
        config.write_text(broken)
        status, report = reload(server)
        assert status == 422, report
        assert report["config"]["result"] == "refused" and message in report["config"]["error"], report
        assert get(server, "/v/") == (200, b"version=1")
        server.wait_for_log("config reload refused, the previous apps keep serving")
        # The same file, fixed, applies.
        config.write_text(good + app_table("h", guests["hello"], "/h"))
        status, report = reload(server)
        assert status == 200 and report["config"]["changes"]["added"] == ["h"], report


def test_saving_the_config_file_reloads_it(wasmhost_bin, guests, config):
    config.write_text(app_table("v", guests["version"], "/v"))
    with Server(wasmhost_bin, "", [], subcommand="serve", config=config) as server:
        assert get(server, "/h/")[0] == 404
        config.write_text(app_table("v", guests["version"], "/v") + app_table("h", guests["hello"], "/h"))
        deadline = time.monotonic() + 30
        while get(server, "/h/")[0] != 200:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.1)
        assert server.wait_for_log(r"trigger=\"?file change\"?.*config reloaded|config reloaded.*file change")
