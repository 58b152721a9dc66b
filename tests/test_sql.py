"""SQL databases (`wasmhost:platform/sql`, `wasmhost.db`), through the real
binary and a real SDK guest (tests/apps/sql), on real SQLite files in a
temporary data directory.

What is promised: writes persist across requests, instances and restarts
and are seen by every instance; a transaction never loses an update under
concurrent instances; a transaction a request leaves open (it returned,
raised or timed out) is rolled back and holds no lock; bad SQL and bad
parameters are DB-API exceptions and the instance goes on; an app opens only
its declared databases and reaches no other file.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, Server, metric_value

APP = ROOT / "tests" / "apps" / "sql" / "app.py"
START = 600


def sql_server(wasmhost_bin, data_dir: Path, *args: str) -> Server:
    return Server(wasmhost_bin, APP, ["--data-dir", str(data_dir), "--database", "default", *args], start_timeout=START)


def run(server: Server, sql: str, params=(), database: str = "default", **extra) -> tuple[int, dict]:
    body = json.dumps({"sql": sql, "params": list(params), **extra}).encode()
    status, _, answer = server.request("POST", f"/sql/{database}", body=body)
    return status, json.loads(answer)


def notes(server: Server) -> dict:
    status, _, body = server.request("GET", "/notes")
    assert status == 200, body
    return json.loads(body)


@pytest.mark.time_limit(START)
def test_rows_persist_across_instances_and_restarts_with_their_types(wasmhost_bin, tmp_path):
    with sql_server(wasmhost_bin, tmp_path, "--max-requests-per-instance", "2") as server:
        assert run(server, "CREATE TABLE t (id INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB)")[0] == 200
        status, inserted = run(server, "INSERT INTO t (i, r, s, b) VALUES (?, ?, ?, ?)", [2**62, 0.25, "grüß", None])
        assert status == 200 and (inserted["rowcount"], inserted["lastrowid"]) == (1, 1), inserted
        status, selected = run(server, "SELECT i, r, s, b, x'00ff' AS blob FROM t")
        assert status == 200, selected
        assert selected["rows"] == [[2**62, 0.25, "grüß", None, {"blob": "00ff"}]]
        assert selected["columns"] == ["i", "r", "s", "b", "blob"] and selected["rowcount"] == -1
        ids = {json.loads(server.request("POST", "/notes", body=f"note {i}".encode())[2])["instance"] for i in range(6)}
        assert len(ids) >= 2, "instances were retired after 2 requests, so several wrote"
        assert notes(server)["count"] == 6
    # The file is a real SQLite database in the app's data directory...
    path = tmp_path / "app" / "sql" / "default.sqlite3"
    with sqlite3.connect(path) as native:
        assert native.execute("SELECT count(*) FROM notes").fetchone() == (6,)
    # ...and a new server (a restart) reads what the last one wrote.
    with sql_server(wasmhost_bin, tmp_path) as server:
        assert notes(server)["texts"] == [f"note {i}" for i in range(6)]


def test_concurrent_transactions_lose_no_update(wasmhost_bin, tmp_path):
    with sql_server(wasmhost_bin, tmp_path, "--max-instances", "4", "--min-instances", "4") as server:
        failures: list[object] = []

        def client() -> None:
            for _ in range(50):
                status, _, body = server.request("POST", "/counter")
                if status != 200:
                    failures.append((status, body))

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert json.loads(server.request("POST", "/counter")[2]) == {"n": 401}, "8 clients x 50, then one more"


@pytest.mark.parametrize("then, status", [("", 200), ("raise", 500), ("loop", 504)])
def test_a_transaction_left_open_is_rolled_back_and_holds_no_lock(wasmhost_bin, tmp_path, then, status):
    with sql_server(wasmhost_bin, tmp_path, "--max-instances", "1", "--request-timeout", "2s") as server:
        assert server.request("POST", "/notes", body=b"kept")[0] == 201
        assert server.request("POST", f"/open-transaction?then={then}")[0] == status
        # Nothing of it is visible, and the next write (on the same instance
        # or its replacement) gets the write lock at once.
        assert notes(server)["texts"] == ["kept"]
        assert server.request("POST", "/notes", body=b"after")[0] == 201
        assert notes(server)["texts"] == ["kept", "after"]
        if then != "loop":
            rolled_back = metric_value(server.metrics(), "wasmhost_sql_rollbacks_total", app="app")
            assert rolled_back == 1, "the host rolled back the transaction the request left open"


def test_bad_statements_are_db_api_errors_and_the_instance_goes_on(wasmhost_bin, tmp_path):
    with sql_server(wasmhost_bin, tmp_path, "--max-instances", "1") as server:
        pid = server.request("GET", "/pid")[2]
        run(server, "CREATE TABLE u (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)")
        assert run(server, "INSERT INTO u (name) VALUES (?)", ["a"])[0] == 200
        cases = [
            ("SELEC 1", [], 400, "OperationalError"),
            ("SELECT * FROM missing", [], 400, "OperationalError"),
            ("INSERT INTO u (name) VALUES (?)", ["a"], 409, "IntegrityError"),
            ("INSERT INTO u (name) VALUES (NULL)", [], 409, "IntegrityError"),
            ("SELECT ?", [], 400, "ProgrammingError"),
            ("SELECT ?", [1, 2], 400, "ProgrammingError"),
            ("SELECT 1; SELECT 2", [], 400, "ProgrammingError"),
            ("SELECT ?", [2**64], 400, "DataError"),
            ("SELECT length(zeroblob(1000000))", [], 200, None),
            ("SELECT zeroblob(100000000)", [], 400, "OperationalError"),
            ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 2000) SELECT zeroblob(40000) FROM c",
             [], 400, "OperationalError"),
        ]
        for sql, params, status, error in cases:
            got, answer = run(server, sql, params)
            assert got == status and answer.get("error") == error, (sql, answer)
        assert run(server, "SELECT count(*) FROM u")[1]["rows"] == [[1]], "the refused inserts wrote nothing"
        assert server.request("GET", "/pid")[2] == pid, "the instance kept serving"
        counted = server.metrics()
        assert metric_value(counted, "wasmhost_sql_statements_total", app="app", database="default", result="refused") >= 6


def test_an_app_reaches_only_its_own_databases(wasmhost_bin, tmp_path):
    data = tmp_path / "data"
    config = tmp_path / "wasmhost.toml"
    config.write_text(
        f'[server]\ndata_dir = "{data}"\n\n'
        f'[[app]]\nname = "a"\nmodule = "{APP}"\nprefix = "/a"\nstrip_prefix = true\ndatabases = ["default", "private"]\n\n'
        f'[[app]]\nname = "b"\nmodule = "{APP}"\nprefix = "/b"\nstrip_prefix = true\ndatabases = ["default"]\n'
    )
    with Server(wasmhost_bin, "", [], config=config, start_timeout=START) as server:
        def sql(app: str, statement: str, database: str = "default") -> tuple[int, dict]:
            body = json.dumps({"sql": statement, "database": database}).encode()
            status, _, answer = server.request("POST", f"/{app}/sql/by-body", body=body)
            return status, json.loads(answer)

        assert sql("a", "CREATE TABLE secret (x)")[0] == 200
        assert sql("a", "INSERT INTO secret VALUES ('a only')")[0] == 200
        assert sql("a", "SELECT x FROM secret", "private")[0] == 400, "another database of a's: no such table"
        # By name: b declares no `private`, and its `default` is its own file.
        assert sql("b", "SELECT 1", "private")[1]["error"] == "NoSuchDatabase"
        assert sql("b", "SELECT x FROM secret")[0] == 400
        for name in ["../a/sql/default", "a/sql/default", "/etc/passwd"]:
            assert sql("b", "SELECT 1", name)[1]["error"] == "NoSuchDatabase", name
        # By SQL: no ATTACH, no VACUUM INTO, no pragma that changes the file.
        a_file = data / "a" / "sql" / "default.sqlite3"
        for statement in [
            f"ATTACH DATABASE '{a_file}' AS a",
            f"ATTACH DATABASE 'file:{a_file}?mode=ro' AS a",
            f"VACUUM INTO '{tmp_path / 'copy.sqlite3'}'",
            "PRAGMA journal_mode = DELETE",
            "PRAGMA max_page_count = 1",
        ]:
            status, answer = sql("b", statement)
            assert status == 400 and answer["error"] in ("ProgrammingError", "OperationalError"), (statement, answer)
        assert not (tmp_path / "copy.sqlite3").exists()
        status, _, body = server.admin_request("GET", "/apps")
        listed = {app["name"]: app for app in json.loads(body)["apps"]}
        assert listed["a"]["databases"]["names"] == ["default", "private"]
        assert listed["b"]["databases"]["names"] == ["default"]
