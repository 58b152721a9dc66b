"""SQLAlchemy 2 on the host database: examples/sqlalchemy-notes (Flask,
the ORM and Core) through the real binary, on real SQLite files in a
temporary data directory.

What is promised: ``create_engine("wasmhost:///default")`` needs nothing
registered by hand; ORM relations, ``IntegrityError``, sessions and Core
aggregates work; writes are shared by instances, none is lost under
concurrent writers, and they survive a restart; a ``sqlite:///`` URL of a
file in the app's directory is the app's file database on the host.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, SHARED_CACHE_DIR, Server, dies_with_parent

NOTES = ROOT / "examples" / "sqlalchemy-notes"
START = 900
"""Seconds a first build may take (SQLAlchemy and Flask are installed)."""


def notes_server(wasmhost_bin, data_dir: Path, *args: str) -> Server:
    return Server(wasmhost_bin, NOTES / "app.py", ["--data-dir", str(data_dir), "--database", "default", *args],
                  start_timeout=START)


def call(server: Server, method: str, path: str, data=None) -> tuple[int, object]:
    body = None if data is None else json.dumps(data).encode()
    status, _, answer = server.request(method, path, body=body, headers={"content-type": "application/json"})
    return status, json.loads(answer) if answer[:1] in (b"{", b"[") else answer.decode()


@pytest.mark.time_limit(START)
def test_orm_and_core_on_the_declared_database_shared_and_persistent(wasmhost_bin, tmp_path):
    with notes_server(wasmhost_bin, tmp_path, "--max-requests-per-instance", "2") as server:
        assert call(server, "GET", "/notes") == (200, [])
        assert call(server, "POST", "/authors", {"name": "ann"}) == (201, {"id": 1, "name": "ann"})
        assert call(server, "POST", "/authors", {"name": "bob"})[0] == 201
        assert call(server, "POST", "/authors", {"name": "ann"}) == (409, {"error": "author ann exists"})
        for author, text in [("ann", "first"), ("bob", "second"), ("ann", "third")]:
            status, note = call(server, "POST", "/notes", {"author": author, "text": text})
            assert status == 201 and note["author"] == author and note["created"][:2] == "20", note
        assert call(server, "POST", "/notes", {"author": "nobody", "text": "x"})[0] == 400
        status, listed = call(server, "GET", "/notes")
        assert status == 200 and [note["text"] for note in listed] == ["first", "second", "third"]
        assert call(server, "GET", "/authors/ann") == (200, {"name": "ann", "notes": ["first", "third"]})
        assert call(server, "GET", "/stats") == (200, {"notes": 3, "by_author": {"ann": 2, "bob": 1}})
        assert call(server, "GET", "/search?pattern=%5E(f%7Ct)") == (200, ["first", "third"])
        status, answer = call(server, "GET", "/search?pattern=(unclosed")
        assert status == 400 and answer["error"].startswith("bad pattern"), answer
    with sqlite3.connect(tmp_path / "app" / "sql" / "default.sqlite3") as native:
        assert native.execute("SELECT count(*) FROM note").fetchone() == (3,)
    with notes_server(wasmhost_bin, tmp_path, "--max-instances", "4", "--min-instances", "4") as server:
        assert call(server, "GET", "/stats")[1] == {"notes": 3, "by_author": {"ann": 2, "bob": 1}}
        failures: list[object] = []

        def client(n: int) -> None:
            for i in range(25):
                status, note = call(server, "POST", "/notes", {"author": "bob", "text": f"{n}-{i}"})
                if status != 201:
                    failures.append((status, note))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert call(server, "GET", "/stats")[1] == {"notes": 103, "by_author": {"ann": 2, "bob": 101}}


@pytest.mark.time_limit(START)
def test_a_sqlite_url_of_a_file_in_the_app_directory_is_kept_by_the_host(wasmhost_bin, tmp_path):
    code = """
from sqlalchemy import create_engine, text
engine = create_engine("sqlite:///local.sqlite")
with engine.begin() as connection:
    connection.execute(text("CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v INTEGER)"))
    connection.execute(text("INSERT INTO kv VALUES (:k, :v) ON CONFLICT (k) DO UPDATE SET v = v + 1"), {"k": "a", "v": 1})
with engine.connect() as connection:
    print(connection.execute(text("SELECT v FROM kv WHERE k = 'a'")).scalar_one())
"""
    command = [str(wasmhost_bin), "run", "--cache-dir", str(SHARED_CACHE_DIR), "--data-dir", str(tmp_path),
               "--database", "default", str(NOTES / "app.py"), "--", "-c", code]
    for expected in ("1", "2"):
        result = subprocess.run(dies_with_parent(command), capture_output=True, text=True, timeout=START)
        assert (result.returncode, result.stdout.strip()) == (0, expected), result.stderr
    assert (tmp_path / "app" / "sql" / "files" / "local.sqlite").is_file()
    assert not (NOTES / "local.sqlite").exists()
