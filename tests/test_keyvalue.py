"""Key-value buckets (`wasi:keyvalue`, `wasmhost.kv`) and config values and
secrets (`wasi:config`, `wasmhost.config`), through the real binary and a
real SDK guest (tests/apps/state), with the embedded backend's real SQLite
file in a temporary data directory and the Redis backend on a real
`redis-server` (Debian's package) that the tests start on 127.0.0.1 and stop.

What is promised: writes persist across requests, instances, reloads and
restarts (also after `kill -9`); `increment` is atomic across instances;
limits give the guest a clear exception and its instance keeps serving; an
app opens only the buckets it declared and never sees another app's data or
secrets; secrets never show in `/apps` or the log.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, Redis, Server

APP = ROOT / "tests" / "apps" / "state" / "app.py"
EXAMPLE = ROOT / "examples" / "counter" / "app.py"
START = 600


def state_server(wasmhost_bin, data_dir: Path, *args: str, **kwargs) -> Server:
    return Server(
        wasmhost_bin, APP, ["--data-dir", str(data_dir), "--key-value", "default", *args], start_timeout=START, **kwargs
    )


def body_json(response) -> object:
    status, _, body = response
    return status, json.loads(body) if body else None


def increment(server: Server, key: str = "hits", by: int = 1) -> dict:
    status, _, body = server.request("POST", f"/kv/default/{key}/incr?by={by}")
    assert status == 200, body
    return json.loads(body)


def test_values_round_trip_as_bytes_text_batches_and_a_mapping(wasmhost_bin, tmp_path):
    with state_server(wasmhost_bin, tmp_path) as server:
        binary = bytes(range(256)) * 4
        assert server.request("PUT", "/kv/default/blob", body=binary)[0] == 204
        status, headers, body = server.request("GET", "/kv/default/blob")
        assert (status, body) == (200, binary)
        assert server.request("PUT", "/kv/default/greeting", body="grüß dich".encode())[0] == 204
        assert server.request("GET", "/kv/default/greeting?text=1")[2].decode() == "grüß dich"
        assert server.request("GET", "/kv/default/absent")[0] == 404
        assert server.request("PUT", "/kv/default/empty", body=b"")[0] == 204
        assert server.request("GET", "/kv/default/empty")[:3:2] == (200, b"")

        batch = {f"user:{i}": f"u{i}" for i in range(5)}
        assert server.request("POST", "/kv/default?many=set", body=json.dumps(batch).encode())[0] == 204
        assert body_json(server.request("GET", "/kv/default?prefix=user:")) == (200, sorted(batch))
        wanted = json.dumps(["user:1", "user:4", "nope"]).encode()
        assert body_json(server.request("POST", "/kv/default?many=get", body=wanted)) == (
            200,
            {"user:1": "u1", "user:4": "u4"},
        )
        assert body_json(server.request("GET", "/kv/default/user:2/dict")) == (
            200,
            {"in": True, "value": "u2", "len": 3 + 5},
        )
        gone = json.dumps(["user:0", "user:1", "never-set"]).encode()
        assert server.request("POST", "/kv/default?many=delete", body=gone)[0] == 204
        assert body_json(server.request("GET", "/kv/default?prefix=user:"))[1] == ["user:2", "user:3", "user:4"]
        assert server.request("DELETE", "/kv/default/user:2")[0] == 204
        assert server.request("DELETE", "/kv/default/user:2")[0] == 204, "deleting an absent key is no error"
        assert server.request("GET", "/kv/default/user:2")[0] == 404

        samples = server.metrics()
        ops = {
            dict(labels)["operation"]: value
            for (name, labels), value in samples.items()
            if name == "wasmhost_kv_operations_total" and ("result", "ok") in labels and ("bucket", "default") in labels
        }
        assert ops["set"] == 3 and ops["set-many"] == 1 and ops["get-many"] == 1, ops
        keys = [value for (name, _), value in samples.items() if name == "wasmhost_kv_keys"]
        assert keys == [5.0], keys
        written = sum(
            value
            for (name, labels), value in samples.items()
            if name == "wasmhost_kv_bytes_total" and ("direction", "written") in labels
        )
        assert written >= len(binary) + len("grüß dich".encode()) + 10


def test_counts_persist_across_instances_a_restart_and_kill_9(wasmhost_bin, tmp_path):
    args = ["--max-instances", "3", "--min-instances", "3", "--max-requests-per-instance", "5"]
    with state_server(wasmhost_bin, tmp_path, *args) as server:
        answers = [increment(server) for _ in range(30)]
        assert [answer["value"] for answer in answers] == list(range(1, 31))
        # Instances are retired after ~5 requests: many instances counted.
        assert len({answer["instance"] for answer in answers}) >= 4
    assert (tmp_path / "app" / "kv.sqlite3").is_file()
    with state_server(wasmhost_bin, tmp_path) as server:
        assert increment(server)["value"] == 31
        assert server.request("PUT", "/kv/default/last", body=b"written before kill -9")[0] == 204
        server.send_signal(signal.SIGKILL)
        server.wait_exit()
    with state_server(wasmhost_bin, tmp_path) as server:
        assert increment(server)["value"] == 32
        assert server.request("GET", "/kv/default/last")[2] == b"written before kill -9"


def test_concurrent_increments_from_many_instances_are_exact(wasmhost_bin, tmp_path):
    clients, each = 8, 100
    with state_server(wasmhost_bin, tmp_path, "--max-instances", "4", "--min-instances", "4") as server:
        seen: list[int] = []
        instances: Counter[str] = Counter()
        errors: list[str] = []
        lock = threading.Lock()

        def client() -> None:
            try:
                for _ in range(each):
                    answer = increment(server, "race")
                    with lock:
                        seen.append(answer["value"])
                        instances[answer["instance"]] += 1
            except Exception as err:  # noqa: BLE001 (reported below)
                errors.append(repr(err))

        threads = [threading.Thread(target=client) for _ in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors[:3]
        assert sorted(seen) == list(range(1, clients * each + 1)), "every increment got its own value"
        assert len(instances) >= 2, f"the increments ran on one instance only: {instances}"
        assert server.request("GET", "/kv/default/race?text=1")[2] == str(clients * each).encode()


def test_limits_raise_clear_exceptions_and_the_instance_keeps_serving(wasmhost_bin, tmp_path):
    limits = ["--kv-max-key-size", "16B", "--kv-max-value-size", "1KiB", "--kv-max-keys", "3", "--max-instances", "1"]
    with state_server(wasmhost_bin, tmp_path, *limits) as server:
        instance = server.request("GET", "/pid")[2]
        status, body = body_json(server.request("PUT", "/kv/default/" + "k" * 17, body=b"x"))
        assert (status, body["error"]) == (413, "LimitExceeded") and "kv_max_key_size" in body["message"], body
        status, body = body_json(server.request("PUT", "/kv/default/big", body=b"x" * 1025))
        assert (status, body["error"]) == (413, "LimitExceeded") and "kv_max_value_size" in body["message"], body
        assert server.request("PUT", "/kv/default/fits", body=b"x" * 1024)[0] == 204
        for key in ("b", "c"):
            assert server.request("PUT", f"/kv/default/{key}", body=b"1")[0] == 204
        status, body = body_json(server.request("PUT", "/kv/default/d", body=b"1"))
        assert (status, body["error"]) == (413, "LimitExceeded") and "quota of 3 keys" in body["message"], body
        assert server.request("GET", "/kv/default/d")[0] == 404, "the refused write left nothing"
        status, body = body_json(server.request("POST", "/kv/default?many=set", body=b'{"c": "2", "e": "3"}'))
        assert status == 413 and "quota" in body["message"], body
        assert server.request("GET", "/kv/default/c")[2] == b"1", "a refused batch writes nothing"
        assert server.request("PUT", "/kv/default/b", body=b"overwrite")[0] == 204, "overwriting is within quota"
        status, body = body_json(server.request("POST", "/kv/default/b/incr"))
        assert (status, body["error"]) == (409, "KeyValueError") and "not a decimal integer" in body["message"]
        assert server.request("DELETE", "/kv/default/c")[0] == 204
        assert increment(server, "n")["value"] == 1, "a deleted key frees quota"
        assert server.request("GET", "/pid")[2] == instance, "the instance kept serving"
        refused = sum(
            value
            for (name, labels), value in server.metrics().items()
            if name == "wasmhost_kv_operations_total" and ("result", "refused") in labels
        )
        assert refused == 5


def test_an_app_opens_only_the_buckets_it_declared(wasmhost_bin, tmp_path):
    with state_server(wasmhost_bin, tmp_path) as server:
        for name in ("sessions", "..%2Fother%2Fdefault", "DEFAULT", "default%00"):
            status, body = body_json(server.request("GET", f"/kv/{name}/k"))
            assert (status, body["error"]) == (404, "NoSuchBucket"), (name, body)
            assert "not declared" in body["message"]
        assert server.request("PUT", "/kv/default/k", body=b"v")[0] == 204


def write_config(
    path: Path, data_dir: Path, secret_file: Path, extra_b: str = "", buckets_b: str = '["default"]'
) -> None:
    path.write_text(
        f"""
[server]
data_dir = "{data_dir}"

[[app]]
name = "a"
module = "app.py"
dir = "{APP.parent}"
prefix = "/a"
strip_prefix = true
key_value = ["default", "sessions"]

[app.config]
MODE = "alpha"
API_KEY = {{ from_env = "WASMHOST_TEST_SECRET_A" }}
DB_PASSWORD = {{ from_file = "{secret_file}" }}

[[app]]
name = "b"
module = "app.py"
dir = "{APP.parent}"
prefix = "/b"
strip_prefix = true
key_value = {buckets_b}
{extra_b}
"""
    )


def two_apps(wasmhost_bin, tmp_path: Path, file_secret: str, env_secret: str) -> tuple[Server, Path]:
    """A server for the config `write_config` writes, with the two secrets;
    and the secret file."""
    config, secret_file = tmp_path / "wasmhost.toml", tmp_path / "db-password"
    secret_file.write_text(file_secret)
    write_config(config, tmp_path / "data", secret_file)
    env = {"WASMHOST_TEST_SECRET_A": env_secret}
    return Server(wasmhost_bin, "", ["--no-watch"], config=config, extra_env=env, start_timeout=START), secret_file


def test_apps_never_see_each_others_data_or_secrets(wasmhost_bin, tmp_path):
    server, _ = two_apps(wasmhost_bin, tmp_path, "s3cr3t-from-file\n", "s3cr3t-from-env")
    data = tmp_path / "data"
    with server:
        assert server.request("PUT", "/a/kv/default/shared-name", body=b"a's value")[0] == 204
        assert server.request("GET", "/b/kv/default/shared-name")[0] == 404, "b has its own default bucket"
        assert server.request("PUT", "/b/kv/default/shared-name", body=b"b's value")[0] == 204
        assert server.request("GET", "/a/kv/default/shared-name")[2] == b"a's value"
        assert body_json(server.request("GET", "/b/kv/sessions/x"))[1]["error"] == "NoSuchBucket"
        assert (data / "a" / "kv.sqlite3").is_file() and (data / "b" / "kv.sqlite3").is_file()

        assert body_json(server.request("GET", "/a/config/API_KEY")) == (200, {"value": "s3cr3t-from-env"})
        assert body_json(server.request("GET", "/a/config/DB_PASSWORD")) == (200, {"value": "s3cr3t-from-file"})
        assert body_json(server.request("GET", "/a/config/MODE")) == (200, {"value": "alpha"})
        for key in ("API_KEY", "DB_PASSWORD", "MODE"):
            assert body_json(server.request("GET", f"/b/config/{key}")) == (200, {"value": None}), key
        keys_a = body_json(server.request("GET", "/a/config"))[1]
        assert {"API_KEY", "DB_PASSWORD", "MODE"} <= set(keys_a)

        status, _, apps = server.admin_request("GET", "/apps")
        assert status == 200
        listed = {app["name"]: app for app in json.loads(apps)["apps"]}
        assert listed["a"]["key_value"]["buckets"] == ["default", "sessions"]
        assert sorted(listed["a"]["config_keys"]) == ["API_KEY", "DB_PASSWORD", "MODE"]
        assert listed["b"]["config_keys"] == []
        for secret in (b"s3cr3t-from-env", b"s3cr3t-from-file"):
            assert secret not in apps
            assert secret.decode() not in server.log()
            assert secret not in server.admin_request("GET", "/metrics")[2]


def test_a_reload_keeps_the_data_and_a_bad_bucket_is_refused(wasmhost_bin, tmp_path):
    server, secret_file = two_apps(wasmhost_bin, tmp_path, "first", "x")
    data, config = tmp_path / "data", tmp_path / "wasmhost.toml"
    with server:
        assert server.request("POST", "/b/kv/default/n/incr?by=7")[0] == 200
        secret_file.write_text("rotated")
        write_config(config, data, secret_file, extra_b="max_instances = 1")
        status, _, body = server.admin_request("POST", "/admin/reload", timeout=120)
        assert status == 200, body
        assert body_json(server.request("POST", "/b/kv/default/n/incr"))[1]["value"] == 8
        assert body_json(server.request("GET", "/a/config/DB_PASSWORD"))[1] == {"value": "rotated"}

        write_config(config, data, secret_file, buckets_b='["../a"]')
        status, _, body = server.admin_request("POST", "/admin/reload", timeout=120)
        report = json.loads(body)
        assert status == 422 and "bucket names" in report["config"]["error"], report
        assert body_json(server.request("POST", "/b/kv/default/n/incr"))[1]["value"] == 9, "the old config serves"


def test_the_counter_example(wasmhost_bin, tmp_path):
    args = ["--data-dir", str(tmp_path), "--key-value", "default", "--key-value", "sessions"]
    args += ["--config-value", "GREETING=Howdy"]
    with Server(wasmhost_bin, EXAMPLE, args, start_timeout=START) as server:
        assert server.request("GET", "/")[2] == b"Howdy from wasmhost!\n"
        assert [body_json(server.request("GET", "/hits"))[1]["hits"] for _ in range(3)] == [1, 2, 3]
        status, created = body_json(server.request("POST", "/sessions", body=b'{"user": "ada"}'))
        assert status == 201
        assert body_json(server.request("GET", f"/sessions/{created['id']}")) == (200, {"user": "ada"})
        assert server.request("DELETE", f"/sessions/{created['id']}")[0] == 204
        assert server.request("GET", f"/sessions/{created['id']}")[0] == 404


@pytest.mark.parametrize(
    "args, message",
    [
        (["--key-value", "../escape"], "bucket names"),
        (["--key-value", "a", "--key-value", "a"], "declared twice"),
        (["--key-value", "cache=rediss://user:hunter2@127.0.0.1:6379"], "not supported yet"),
        (["--key-value", "cache=memcached://127.0.0.1"], "must be a redis://"),
        (["--config-secret-env", "K=WASMHOST_TEST_NOT_SET"], "WASMHOST_TEST_NOT_SET"),
    ],
)
def test_bad_state_flags_are_refused_at_start(wasmhost_bin, tmp_path, args, message):
    server = Server(wasmhost_bin, APP, ["--data-dir", str(tmp_path), *args], start_timeout=START)
    with pytest.raises(Exception):
        server.start()
    assert server.wait_exit() != 0
    assert message in server.log(), server.log()


# -- the Redis backend ---------------------------------------------------------


@pytest.fixture
def redis(tmp_path):
    server = Redis(tmp_path).start()
    yield server
    server.stop()


def redis_server(wasmhost_bin, data_dir: Path, redis: Redis, *args: str) -> Server:
    return Server(
        wasmhost_bin,
        APP,
        ["--data-dir", str(data_dir), "--key-value", f"default={redis.url}", *args],
        start_timeout=START,
    )


def test_replicas_sharing_redis_count_exactly(wasmhost_bin, tmp_path, redis):
    """Two wasmhost processes (two replicas) on one Redis: 2 x 4 clients x
    100 increments give exactly 800, every value once."""
    seen: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()
    args = ("--max-instances", "4", "--min-instances", "2")
    with redis_server(wasmhost_bin, tmp_path / "r1", redis, *args) as one, redis_server(
        wasmhost_bin, tmp_path / "r2", redis, *args
    ) as two:

        def client(server: Server) -> None:
            try:
                for _ in range(100):
                    value = increment(server, "race")["value"]
                    with lock:
                        seen.append(value)
            except Exception as err:  # noqa: BLE001 (reported below)
                errors.append(repr(err))

        threads = [threading.Thread(target=client, args=(server,)) for server in (one, two) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert not errors, errors[:3]
        assert sorted(seen) == list(range(1, 801))
        assert one.request("GET", "/kv/default/race?text=1")[2] == b"800"
        assert two.request("PUT", "/kv/default/from-two", body=b"\x00\xffbinary")[0] == 204
        assert one.request("GET", "/kv/default/from-two")[2] == b"\x00\xffbinary"
        assert sorted(body_json(one.request("GET", "/kv/default"))[1]) == ["from-two", "race"], "SCAN order"
    assert redis.keys() == [b"wasmhost:app:#keys", b"wasmhost:app:default:from-two", b"wasmhost:app:default:race"]
    assert not (tmp_path / "r1" / "app").exists(), "a Redis-only app writes no embedded file"


def test_redis_limits_and_an_outage_fail_the_call_not_the_instance(wasmhost_bin, tmp_path, redis):
    limits = ("--kv-max-keys", "2", "--kv-max-value-size", "10B", "--max-instances", "1")
    with redis_server(wasmhost_bin, tmp_path, redis, *limits) as server:
        instance = server.request("GET", "/pid")[2]
        assert server.request("PUT", "/kv/default/a", body=b"1")[0] == 204
        assert increment(server, "n")["value"] == 1
        status, body = body_json(server.request("PUT", "/kv/default/c", body=b"1"))
        assert status == 413 and "quota of 2 keys" in body["message"], body
        status, body = body_json(server.request("POST", "/kv/default?many=set", body=b'{"a": "2", "d": "3"}'))
        assert status == 413 and "quota" in body["message"], body
        assert server.request("GET", "/kv/default/a")[2] == b"1", "the refused batch wrote nothing"
        assert body_json(server.request("PUT", "/kv/default/a", body=b"x" * 11))[0] == 413
        assert server.request("PUT", "/kv/default/a", body=b"abc")[0] == 204
        status, body = body_json(server.request("POST", "/kv/default/a/incr"))
        assert status == 409 and "not a decimal integer" in body["message"], body
        assert server.request("POST", "/kv/default?many=delete", body=b'["a", "nope"]')[0] == 204
        assert server.request("PUT", "/kv/default/c", body=b"1")[0] == 204, "a delete frees quota"

        redis.stop()
        status, body = body_json(server.request("GET", "/kv/default/c", timeout=30))
        assert (status, body["error"]) == (409, "KeyValueError") and "redis error" in body["message"], body
        assert server.request("GET", "/pid")[2] == instance, "the instance kept serving"
        redis.start()
        deadline = time.monotonic() + 20
        while server.request("GET", "/kv/default/c", timeout=30)[0] != 404:  # a fresh Redis: the key is gone
            assert time.monotonic() < deadline, "the connection did not come back"
            time.sleep(0.2)
        assert server.request("PUT", "/kv/default/c", body=b"back")[0] == 204
        assert server.request("GET", "/pid")[2] == instance
        server.wait_for_log("redis error")


def test_apps_sharing_a_redis_never_see_each_others_keys(wasmhost_bin, tmp_path, redis):
    config = tmp_path / "wasmhost.toml"
    config.write_text(
        f"""
[server]
data_dir = "{tmp_path / 'data'}"

[[app]]
name = "a"
module = "app.py"
dir = "{APP.parent}"
prefix = "/a"
strip_prefix = true
key_value = ["default={redis.url}"]

[[app]]
name = "b"
module = "app.py"
dir = "{APP.parent}"
prefix = "/b"
strip_prefix = true
key_value = ["default={redis.url}", "local"]
"""
    )
    with Server(wasmhost_bin, "", ["--no-watch"], config=config, start_timeout=START) as server:
        assert server.request("PUT", "/a/kv/default/k", body=b"a")[0] == 204
        assert server.request("GET", "/b/kv/default/k")[0] == 404
        assert server.request("PUT", "/b/kv/default/k", body=b"b")[0] == 204
        assert server.request("PUT", "/b/kv/local/k", body=b"embedded")[0] == 204
        assert [server.request("GET", f"/{app}/kv/default/k")[2] for app in "ab"] == [b"a", b"b"]
        assert body_json(server.request("GET", "/a/kv/default"))[1] == ["k"]
        assert body_json(server.request("GET", "/a/kv/local/k"))[1]["error"] == "NoSuchBucket"
        apps = {app["name"]: app for app in json.loads(server.admin_request("GET", "/apps")[2])["apps"]}
        assert apps["b"]["key_value"]["backends"] == {"default": redis.url, "local": "embedded"}
    assert b"wasmhost:a:default:k" in redis.keys() and b"wasmhost:b:default:k" in redis.keys()
