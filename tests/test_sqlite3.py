"""Unmodified ``sqlite3`` users on the host database: ``sqlite3.connect`` of
a file in the app's directory opens the app's file database, kept by the
host (``<data dir>/<app>/sql/files/``), through the real binary and real
guests, on real SQLite files in a temporary data directory.

What is promised: a flaskr-style Flask app (examples/flaskr: app factory,
``sqlite3.connect(instance_path/...)``, ``sqlite3.Row``,
``PARSE_DECLTYPES``, ``executescript``, ``flask init-db`` run with
``wasmhost run``) works unmodified, shares its writes between instances,
loses none under concurrency and keeps them across a restart; the
``sqlite3`` API behaves as CPython's own does on a file (the same script,
tests/apps/sqlite3-compat/check.py, prints the same under both); paths
outside the app's directory and ``:memory:`` stay in the guest, and the
host refuses what could reach beyond the app's own files; an unmodified
Django project on ``django.db.backends.sqlite3`` gets the host database.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, SHARED_CACHE_DIR, Server, dies_with_parent

FLASKR = ROOT / "examples" / "flaskr"
COMPAT = ROOT / "tests" / "apps" / "sqlite3-compat"
STOCK_DJANGO = ROOT / "tests" / "apps" / "django-sqlite3"
START = 900
"""Seconds a first build may take (Flask or Django is installed)."""
FORM = {"content-type": "application/x-www-form-urlencoded"}


def wasmhost_run(wasmhost_bin, cwd: Path, data_dir: Path, app_args: list[str], *args: str):
    """``wasmhost run`` in `cwd` with `args` after ``--``."""
    command = [str(wasmhost_bin), "run", "--cache-dir", str(SHARED_CACHE_DIR), "--data-dir", str(data_dir),
               *app_args, "--", *args]
    return subprocess.run(dies_with_parent(command), cwd=cwd, capture_output=True, text=True, timeout=START)


def flaskr_server(wasmhost_bin, data_dir: Path, *args: str) -> Server:
    return Server(wasmhost_bin, "wsgi:app", ["--interface", "wsgi", "--data-dir", str(data_dir), *args], cwd=FLASKR,
                  start_timeout=START)


def stats(server: Server) -> dict:
    status, _, body = server.request("GET", "/stats")
    assert status == 200, body
    return json.loads(body)


@pytest.fixture(scope="module")
def flaskr_data(wasmhost_bin, tmp_path_factory) -> Path:
    """A data directory whose flaskr database ``flask init-db`` created."""
    data_dir = tmp_path_factory.mktemp("flaskr-data")
    result = wasmhost_run(wasmhost_bin, FLASKR, data_dir, ["--interface", "wsgi", "wsgi:app"],
                          "-m", "flask", "--app", "flaskr", "init-db")
    assert (result.returncode, result.stdout) == (0, "Initialized the database.\n"), result.stderr
    return data_dir


@pytest.mark.time_limit(START)
def test_flaskr_runs_unmodified_shares_writes_and_survives_a_restart(wasmhost_bin, flaskr_data):
    with flaskr_server(wasmhost_bin, flaskr_data, "--max-requests-per-instance", "2") as server:
        status, _, body = server.request("POST", "/register", body=b"username=ann", headers=FORM)
        assert status == 201 and json.loads(body)["username"] == "ann", body
        # db.IntegrityError (the connection's attribute) is sqlite3's.
        status, _, body = server.request("POST", "/register", body=b"username=ann", headers=FORM)
        assert (status, body) == (409, b"User ann is already registered."), body
        for i in range(4):
            form = f"title=Post+{i}&body=Text+{i}&author=ann".encode()
            assert server.request("POST", "/create", body=form, headers=FORM)[0] == 302
        assert server.request("POST", "/create", body=b"title=x&author=nobody", headers=FORM)[0] == 400
        status, _, page = server.request("GET", "/")
        assert status == 200, page
        # PARSE_DECLTYPES made `created` a datetime: the template formats it.
        today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d").encode()
        assert page.count(b"by ann on " + today) == 4, page
        assert re.findall(rb"<h1>(Post \d)</h1>", page) == [b"Post 3", b"Post 2", b"Post 1", b"Post 0"]
        # Instances retire after two requests: several of them wrote.
        assert stats(server) == {"posts": 4, "authors": {"ann": 4}}
    path = flaskr_data / "wsgi" / "sql" / "files" / "instance~flaskr.sqlite"
    with sqlite3.connect(path) as native:
        assert native.execute("SELECT count(*) FROM post").fetchone() == (4,)
    with flaskr_server(wasmhost_bin, flaskr_data) as server:
        assert stats(server) == {"posts": 4, "authors": {"ann": 4}}


@pytest.mark.time_limit(START)
def test_flaskr_concurrent_writers_lose_nothing(wasmhost_bin, flaskr_data):
    with flaskr_server(wasmhost_bin, flaskr_data, "--max-instances", "4", "--min-instances", "4") as server:
        for n in range(4):
            server.request("POST", "/register", body=f"username=writer{n}".encode(), headers=FORM)
        failures: list[object] = []

        def client(n: int) -> None:
            for i in range(25):
                form = f"title=w{n}-{i}&body=b&author=writer{n}".encode()
                status, _, body = server.request("POST", "/create", body=form, headers=FORM)
                if status != 302:
                    failures.append((status, body))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        authors = stats(server)["authors"]
        assert [authors[f"writer{n}"] for n in range(4)] == [25, 25, 25, 25]


@pytest.mark.time_limit(START)
def test_the_sqlite3_api_behaves_as_cpythons_own(wasmhost_bin, tmp_path):
    native = subprocess.run([sys.executable, "check.py", str(tmp_path / "native.sqlite")], cwd=COMPAT,
                            capture_output=True, text=True, timeout=60)
    assert native.returncode == 0, native.stderr
    data_dir = tmp_path / "data"
    guest = wasmhost_run(wasmhost_bin, COMPAT, data_dir, ["app.py"], "check.py", "check.sqlite")
    assert guest.returncode == 0, guest.stderr
    assert json.loads(guest.stdout) == json.loads(native.stdout)
    kept = data_dir / "app" / "sql" / "files" / "check.sqlite"
    with sqlite3.connect(kept) as connection:
        assert connection.execute("SELECT name FROM t WHERE id = 1").fetchone() == ("semi;colon",)
    assert not (COMPAT / "check.sqlite").exists(), "the app's directory is not written"


@pytest.mark.time_limit(START)
def test_only_the_apps_own_files_reach_the_host(wasmhost_bin, tmp_path):
    data_dir = tmp_path / "data"
    code = """
import sqlite3
def outcome(path, statement="CREATE TABLE IF NOT EXISTS x (y)"):
    try:
        connection = sqlite3.connect(path)
        connection.execute(statement)
        return type(connection).__module__
    except Exception as error:
        return type(error).__name__
print(outcome(":memory:"), outcome("/tmp/outside.sqlite"), outcome("../escape.sqlite"),
      outcome("deep/a/b/c/d.sqlite"), outcome(".hidden.sqlite"), outcome("ok.sqlite"),
      outcome("ok.sqlite", "ATTACH DATABASE 'other.sqlite' AS other"),
      outcome("ok.sqlite", "PRAGMA journal_mode = DELETE"))
for n in range(20):
    last = outcome(f"many{n}.sqlite")
print(last)
"""
    result = wasmhost_run(wasmhost_bin, COMPAT, data_dir, ["app.py"], "-c", code)
    assert result.returncode == 0, result.stderr
    first, last = result.stdout.splitlines()
    assert first.split() == [
        "sqlite3",  # :memory: is the guest's own
        "OperationalError",  # outside the app's directory: the guest's sqlite3, which has no /tmp
        "OperationalError",  # the same for ../
        "ProgrammingError",  # too deep for a file database: refused by the host
        "ProgrammingError",  # hidden files are refused
        "wasmhost._sqlite3_on_host",
        "ProgrammingError",  # ATTACH: refused by the host's authorizer
        "ProgrammingError",  # a pragma that changes how the file is kept
    ], result.stdout
    assert last == "OperationalError", "at most 16 file databases per app"
    files = sorted(path.name for path in (data_dir / "app" / "sql" / "files").iterdir() if path.suffix == ".sqlite")
    assert len(files) == 16 and "ok.sqlite" in files, files
    assert not list(tmp_path.glob("**/escape.sqlite")) and not Path("/tmp/outside.sqlite").exists()


@pytest.mark.time_limit(START)
def test_a_stock_django_project_on_djangos_sqlite3_backend_gets_the_host_database(wasmhost_bin, tmp_path):
    app_args = ["--interface", "wsgi", "stock.wsgi:application"]
    migrated = wasmhost_run(wasmhost_bin, STOCK_DJANGO, tmp_path, app_args, "manage.py", "migrate", "--no-input")
    assert migrated.returncode == 0 and "Applying auth.0001_initial... OK" in migrated.stdout, migrated.stderr
    server_args = ["--interface", "wsgi", "--data-dir", str(tmp_path), "--max-requests-per-instance", "2"]
    with Server(wasmhost_bin, "stock.wsgi:application", server_args, cwd=STOCK_DJANGO, start_timeout=START) as server:
        for name in ("editors", "admins", "readers"):
            assert server.request("POST", "/groups", body=name.encode())[0] == 200
        status, _, body = server.request("GET", "/groups")
        assert status == 200, body
        assert json.loads(body) == {"groups": ["admins", "editors", "readers"], "vendor": "sqlite",
                                    "backend": "wasmhost.django.base"}
        # Date lookups, regex, MD5, duration arithmetic and StdDev/Variance
        # are SQL functions Django's backend registers; the host's SQLite has
        # them. Expected: what native Django 5.2 answers for the same project
        # (Europe/Paris, DST day).
        status, _, body = server.request("GET", "/calendar")
        assert status == 200, body
        assert json.loads(body) == {"april": 1, "week_day": 2, "day": "2024-04-01T00:00:00+02:00",
                                    "months": ["2024-04-01"], "regex": ["admins", "editors"],
                                    "md5": hashlib.md5(b"ada").hexdigest(),
                                    "later": "2024-04-01T00:30:00.000005+00:00", "spread": [0.816497, 1.0]}
    with sqlite3.connect(tmp_path / "stock.wsgi" / "sql" / "files" / "db.sqlite3") as native:
        assert native.execute("SELECT count(*) FROM auth_group").fetchone() == (3,)
    assert not (STOCK_DJANGO / "db.sqlite3").exists()
