"""Isolation between requests and between apps, through the real binary and
the `state` guest (tests/guests/state/app.py).

What one request may leave behind for the next:

* `--isolation fresh`: nothing. Module globals, environment changes, memory
  written in place or allocated, and files all start pristine on every
  request.
* `--isolation reuse` (default): the state of one app's instance carries
  over to the next request it serves, by design (the README says so, and
  the tests check the documentation is true) — but never to another app,
  even one served from the same module file, and never past an instance
  that was retired for a trap, a timeout, memory exhaustion, or memory
  growth past --recycle-memory.
* Files, in both modes: the guest only has read-only preopened directories,
  so a write is refused and nothing a request tries to write survives it,
  on the guest side or on the host.

Every server here runs `--max-instances 1`, so in `reuse` mode all requests
reach the same instance unless it was retired.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wasmhost_testing import Server, metric_value

PRISTINE = {"count": 1, "global": None, "env": None, "buffer": [0], "hoard_mib": 0, "hoard_bytes": []}
"""`/state` of an instance that served no request before it (its own
request is count 1)."""

SEED = "seed file, read-only for the guest\n"
"""Content of the one file in the guest's `/data` directory."""


def get_json(server: Server, path: str, expected_status: int = 200, timeout: float = 30.0) -> dict:
    """GET `path`, require `expected_status` and return the JSON body."""
    status, _, body = server.request("GET", path, timeout=timeout)
    assert status == expected_status, (path, status, body)
    return json.loads(body)


def state(server: Server, prefix: str = "") -> dict:
    """The `/state` snapshot of the instance that serves the request."""
    return get_json(server, f"{prefix}/state")


def dirty(server: Server, prefix: str = "", value: str = "dirty", byte: int = 7, mib: int = 16) -> dict:
    """Leaves state behind in every way the guest can, one request each:
    a module global and an environment variable set to `value`, the 1 MiB
    module-level buffer overwritten in place with `byte`, and a `mib` MiB
    allocation filled with `byte + 1` kept alive. Returns the `/state` the
    same instance should answer next if state carries over."""
    assert get_json(server, f"{prefix}/set?value={value}") == {"ok": True}
    assert get_json(server, f"{prefix}/buffer?byte={byte}") == {"ok": True}
    assert get_json(server, f"{prefix}/hoard?mb={mib}&byte={byte + 1}") == {"ok": True}
    return {
        "count": 4,
        "global": value,
        "env": value,
        "buffer": [byte],
        "hoard_mib": mib,
        "hoard_bytes": [byte + 1],
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A host directory with one file, shown to the guest read-only as /data."""
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "seed.txt").write_text(SEED)
    return directory


def state_server(make_server, data_dir: Path, isolation: str, *args: str) -> Server:
    """An unstarted `state` server with one instance and `data_dir` as /data."""
    return make_server(
        "state", "--isolation", isolation, "--max-instances", "1", "--dir", f"{data_dir}::/data", *args
    )


# -- within one app -----------------------------------------------------------


@pytest.mark.parametrize("isolation", ["fresh", "reuse"])
def test_state_between_requests(make_server, data_dir, isolation):
    """After requests that set a global and an environment variable,
    overwrite a module-level buffer in place and keep an 8 MiB allocation,
    the next request sees none of it in `fresh` mode (three rounds, so a
    recycled pool slot would show) and all of it in `reuse` mode, where
    module state lives as long as the instance, as documented."""
    with state_server(make_server, data_dir, isolation) as server:
        hoarded: list[int] = []
        for round_ in range(3):
            carried = dirty(server, value=f"round{round_}", byte=10 * round_, mib=8)
            if isolation == "fresh":
                assert state(server) == PRISTINE, f"round {round_}: a fresh request saw earlier state"
            else:
                # Earlier rounds' requests and allocations are still there.
                hoarded.append(10 * round_ + 1)
                carried.update(count=4 * (round_ + 1), hoard_mib=8 * (round_ + 1), hoard_bytes=hoarded)
                assert state(server) == carried, f"round {round_}: reuse lost the instance's state"


WRITE_TARGETS = [
    pytest.param("/data/new.txt", id="new-file-in-readonly-dir"),
    pytest.param("/data/seed.txt", id="overwrite-readonly-file"),
    pytest.param("/tmp/x.txt", id="tmp"),
    pytest.param("/x.txt", id="root"),
    pytest.param("x.txt", id="relative"),
]


@pytest.mark.parametrize("isolation", ["fresh", "reuse"])
@pytest.mark.parametrize("path", WRITE_TARGETS)
def test_file_writes_refused_and_never_persist(make_server, data_dir, isolation, path):
    """A guest cannot write a file anywhere: in its read-only /data the
    write is refused (`EPERM`-like), and there is no /tmp, root or working
    directory to write to (`ENOENT`). The next request cannot read what was
    attempted, the seed file is intact, and the host directory is unchanged."""
    with state_server(make_server, data_dir, isolation) as server:
        result = get_json(server, f"/write?path={path}")
        assert result["ok"] is False, f"write to {path} succeeded: {result}"
        if path.startswith("/data/"):
            assert result["error"] in {"EPERM", "EACCES", "EROFS", "ENOTCAPABLE"}, result
        else:
            assert result["error"] == "ENOENT", result
        read = get_json(server, f"/read?path={path}")
        if path == "/data/seed.txt":
            assert read == {"ok": True, "content": SEED}
        else:
            assert read["ok"] is False, f"{path} readable after a refused write: {read}"
        assert get_json(server, "/listdir?path=/data") == {"ok": True, "entries": ["seed.txt"]}
        assert get_json(server, "/listdir?path=/")["ok"] is False, "the guest can list a root directory"
    assert sorted(p.name for p in data_dir.iterdir()) == ["seed.txt"]
    assert (data_dir / "seed.txt").read_text() == SEED


# -- between apps ---------------------------------------------------------------


def write_two_app_config(path: Path, module: Path) -> Path:
    """Apps `a` and `b`, both serving `module` in `reuse` mode with one
    instance each, under /a and /b (prefix stripped)."""
    apps = "".join(
        f"""
[[app]]
name = "{name}"
module = "{module}"
prefix = "/{name}"
strip_prefix = true
isolation = "reuse"
max_instances = 1
"""
        for name in ("a", "b")
    )
    path.write_text('[server]\ndrain_timeout = "5s"\n' + apps)
    return path


def test_reuse_state_never_crosses_apps(wasmhost_bin, guests, tmp_path):
    """Two apps served from the same module file in one process keep
    separate instances: what app `a` leaves behind (global, environment,
    buffer written in place, big allocation) shows in `a`'s next request but
    never in `b`'s, and the other way round."""
    config = write_two_app_config(tmp_path / "wasmhost.toml", guests["state"])
    with Server(wasmhost_bin, "", [], config=config) as server:
        carried_a = dirty(server, "/a", value="tenant-a", byte=20)
        assert state(server, "/b") == PRISTINE, "app b saw app a's state"
        assert state(server, "/a") == carried_a
        carried_b = dirty(server, "/b", value="tenant-b", byte=40)
        carried_b["count"] += 1  # b's earlier /state
        assert state(server, "/b") == carried_b
        carried_a["count"] += 1  # a's earlier /state
        assert state(server, "/a") == carried_a, "app a saw app b's state"


# -- after an instance was retired ---------------------------------------------


@pytest.mark.parametrize(
    "kind, status",
    [
        pytest.param("raise", 500, id="uncaught-exception"),
        pytest.param("loop", 504, id="timeout"),
        pytest.param("oom", 500, id="memory-exhausted"),
    ],
)
def test_reuse_state_reset_after_fault(make_server, data_dir, kind, status):
    """In `reuse` mode, once an instance with state fails (a trap, a
    timeout, memory exhausted at --memory-limit), the next request runs on a
    pristine instance: the failed one and its state are gone."""
    args = ["--request-timeout", "1s", "--memory-limit", "64MiB"]
    with state_server(make_server, data_dir, "reuse", *args) as server:
        carried = dirty(server)
        assert state(server) == carried, "the instance had no state to lose"
        got, _, body = server.request("GET", f"/fault?kind={kind}", timeout=30)
        assert got == status, body
        assert state(server) == PRISTINE, f"state survived a {kind} fault"


def retired(server: Server, reason: str) -> float:
    """`wasmhost_instances_retired_total` of the server's one app for `reason`."""
    (app,) = json.loads(server.admin_request("GET", "/apps")[2])["apps"]
    return metric_value(server.metrics(), "wasmhost_instances_retired_total", app=app["name"], reason=reason)


def test_reuse_state_reset_after_memory_recycle(make_server, data_dir):
    """An instance whose memory grew past --recycle-memory (32 MiB) is
    retired after the request that grew it (which is answered normally):
    the 48 MiB it kept is gone, and so is the rest of its state, and the
    metrics say why. A smaller allocation (8 MiB) keeps the instance, as a
    control."""
    with state_server(make_server, data_dir, "reuse", "--recycle-memory", "32MiB") as server:
        carried = dirty(server, mib=8)
        assert state(server) == carried, "an instance under --recycle-memory was retired"
        assert retired(server, "memory") == 0
        assert get_json(server, "/hoard?mb=48") == {"ok": True}
        assert state(server) == PRISTINE, "an instance past --recycle-memory kept serving"
        assert retired(server, "memory") == 1


QUOTA = 100
"""--max-requests-per-instance in the quota test: instances retire after
90 to 110 requests (±10%)."""


def test_reuse_instance_retired_after_its_request_quota(make_server):
    """An instance is retired after about --max-requests-per-instance
    requests (100 here), with ±10% jitter so that instances started together
    do not all retire together: with one instance, its request counter
    climbs 1, 2, ... to somewhere in 90..110 and starts again at 1 on a new
    instance, four times over, and not always at the same count (all four
    equal has a chance of 1 in 21³ ≈ 10⁻⁴ with the jitter; it is certain
    without). The metrics count each retirement as `request_quota`."""
    args = ["--max-instances", "1", "--max-requests-per-instance", str(QUOTA)]
    with make_server("hello", *args) as server:
        lifetimes: list[int] = []
        previous = 0
        conn = server.connection(timeout=10)
        try:
            for _ in range(5 * QUOTA):
                conn.request("GET", "/count")
                response = conn.getresponse()
                body = response.read()
                assert response.status == 200, body
                current = int(body.decode().removeprefix("count="))
                if current == 1 and previous:
                    lifetimes.append(previous)
                    if len(lifetimes) == 4:
                        break
                else:
                    assert current == previous + 1, f"count {current} after {previous}: an unexpected new instance"
                previous = current
        finally:
            conn.close()
        assert len(lifetimes) == 4, f"instances served {lifetimes} requests, then {previous} without retiring"
        assert all(QUOTA * 0.9 <= served <= QUOTA * 1.1 for served in lifetimes), lifetimes
        assert len(set(lifetimes)) > 1, f"every instance retired after exactly {lifetimes[0]} requests: no jitter"
        assert retired(server, "request_quota") == 4
