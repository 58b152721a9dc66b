"""Django on the host database: examples/django-blog, unmodified Django 5.2
with ``ENGINE = "wasmhost.django"``, migrated with ``wasmhost run`` and
served with ``wasmhost serve`` through the real binary, on a real SQLite
file in a temporary data directory.

What is promised: ``wasmhost run`` runs ``manage.py`` (and ``-m``/``-c``) in
the app's sandbox with its database, terminal and exit status; migrations
create the schema; a write in one request is read by other instances and
after a restart; concurrent creates lose nothing; an ``atomic`` block that
fails leaves nothing behind; the ORM's relations and aggregates work.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from wasmhost_testing import ROOT, SHARED_CACHE_DIR, Server, dies_with_parent

BLOG = ROOT / "examples" / "django-blog"
TARGET = "mysite.wsgi:application"
APP_ARGS = ["--interface", "wsgi", "--database", "default"]
START = 900
"""Seconds a first build may take: Django is installed and compiled."""


def run(wasmhost_bin, data_dir: Path, *args: str, stdin: str = "", timeout: float = START):
    """``wasmhost run`` of the blog with `args` after ``--``."""
    command = [str(wasmhost_bin), "run", "--cache-dir", str(SHARED_CACHE_DIR), "--data-dir", str(data_dir),
               *APP_ARGS, TARGET, "--", *args]
    return subprocess.run(dies_with_parent(command), cwd=BLOG, input=stdin, capture_output=True, text=True,
                          timeout=timeout)


def blog_server(wasmhost_bin, data_dir: Path, *args: str) -> Server:
    return Server(wasmhost_bin, TARGET, [*APP_ARGS, "--data-dir", str(data_dir), *args], cwd=BLOG,
                  start_timeout=START)


def api(server: Server, method: str, path: str, data=None) -> tuple[int, dict]:
    body = None if data is None else json.dumps(data).encode()
    status, _, answer = server.request(method, path, body=body, headers={"content-type": "application/json"})
    return status, json.loads(answer) if answer.startswith(b"{") else {"text": answer.decode()}


@pytest.fixture(scope="module")
def migrated(wasmhost_bin, tmp_path_factory) -> Path:
    """A data directory whose blog database `manage.py migrate` created."""
    data_dir = tmp_path_factory.mktemp("django-data")
    result = run(wasmhost_bin, data_dir, "manage.py", "migrate", "--no-input")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Applying blog.0001_initial... OK" in result.stdout, result.stdout
    return data_dir


@pytest.mark.time_limit(START)
def test_run_passes_arguments_terminal_and_exit_status(wasmhost_bin, migrated):
    result = run(wasmhost_bin, migrated, "manage.py", "showmigrations", "blog")
    assert result.returncode == 0 and "[X] 0001_initial" in result.stdout, result.stdout + result.stderr
    result = run(wasmhost_bin, migrated, "-c", "import sys; print(sys.argv[1:], sys.stdin.read().upper())", "a", "b",
                 stdin="from stdin")
    assert (result.returncode, result.stdout) == (0, "['a', 'b'] FROM STDIN\n"), result.stderr
    assert run(wasmhost_bin, migrated, "-c", "raise SystemExit(3)").returncode == 3
    failed = run(wasmhost_bin, migrated, "-c", "raise ValueError('broken on purpose')")
    assert failed.returncode == 1 and "ValueError: broken on purpose" in failed.stderr, failed.stderr
    result = run(wasmhost_bin, migrated, "-m", "django", "--version")
    assert (result.returncode, result.stdout.strip()) == (0, "5.2.19"), result.stderr
    missing = run(wasmhost_bin, migrated, "nonexistent.py")
    assert missing.returncode == 2 and "nonexistent.py" in missing.stderr
    # The ORM in a one-off command writes the database the server reads.
    code = "from blog.models import Post; Post.objects.create(title='from run'); print(Post.objects.count())"
    result = run(wasmhost_bin, migrated, "-c", code)
    assert result.returncode == 0 and result.stdout.strip().isdigit(), result.stdout + result.stderr
    with blog_server(wasmhost_bin, migrated) as server:
        status, listed = api(server, "GET", "/api/posts?limit=100")
        assert status == 200 and "from run" in [post["title"] for post in listed["posts"]], listed


@pytest.mark.time_limit(START)
def test_blog_writes_are_shared_by_instances_and_survive_a_restart(wasmhost_bin, migrated):
    with blog_server(wasmhost_bin, migrated, "--max-requests-per-instance", "3") as server:
        created = [api(server, "POST", "/api/posts", {"title": f"post {i}", "body": "text"}) for i in range(6)]
        assert all(status == 201 for status, _ in created), created
        ids = [post["id"] for _, post in created]
        # The HTML views: a form with a CSRF token, a redirect, the detail
        # page counting its views in an atomic update, the list annotated
        # with comment counts.
        status, headers, page = server.request("GET", "/new/")
        assert status == 200, page
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
        cookie = headers["set-cookie"].split(";")[0]
        form = f"csrfmiddlewaretoken={token}&title=From+the+form&body=Hello".encode()
        status, headers, _ = server.request("POST", "/new/", body=form, headers={
            "content-type": "application/x-www-form-urlencoded", "cookie": cookie})
        assert status == 302, headers
        detail = headers["location"]
        assert server.request("POST", "/new/", body=form, headers={
            "content-type": "application/x-www-form-urlencoded"})[0] == 403, "no CSRF cookie: refused"
        for _ in range(3):
            status, _, page = server.request("GET", detail)
            assert status == 200 and b"From the form" in page, page
        assert b"3 views" in page
        assert api(server, "POST", f"/api/posts/{ids[0]}/comments", {"author": "ann", "text": "first"})[0] == 201
        status, comment = api(server, "POST", f"/api/posts/{ids[0]}/comments", {"author": "bob", "text": "second"})
        assert (status, comment["comments"]) == (201, 2), comment
        # A failure inside the atomic block: 500, and the comment is gone.
        status, _ = api(server, "POST", f"/api/posts/{ids[0]}/comments", {"author": "eve", "text": "x", "fail": 1})
        assert status == 500
        status, _, page = server.request("GET", "/")
        assert status == 200 and b"8 posts" in page and b"(2 comments," in page, page
        assert api(server, "GET", "/api/posts/999999/comments")[0] == 405
        assert api(server, "POST", "/api/posts/999999/comments", {"author": "a", "text": "b"})[0] == 404
        assert api(server, "POST", "/api/posts", {"body": "no title"})[0] == 400
        status, _, _ = server.request("POST", "/api/posts", body=b"{not json")
        assert status == 400
    # The database is a real SQLite file in the app's data directory...
    with sqlite3.connect(migrated / "mysite.wsgi" / "sql" / "default.sqlite3") as native:
        assert native.execute("SELECT count(*) FROM blog_comment WHERE author = 'eve'").fetchone() == (0,)
        assert native.execute("SELECT views FROM blog_post WHERE title = 'From the form'").fetchone() == (3,)
    # ...and a new server (a restart) reads what the last one wrote.
    with blog_server(wasmhost_bin, migrated) as server:
        status, _, page = server.request("GET", detail)
        assert status == 200 and b"From the form" in page and b"4 views" in page


@pytest.mark.time_limit(START)
def test_concurrent_creates_lose_nothing(wasmhost_bin, migrated):
    with blog_server(wasmhost_bin, migrated, "--max-instances", "4", "--min-instances", "4") as server:
        before = api(server, "GET", "/api/posts?limit=1")[1]["count"]
        failures: list[object] = []
        ids: list[int] = []

        def client(n: int) -> None:
            for i in range(50):
                status, post = api(server, "POST", "/api/posts", {"title": f"client {n} post {i}"})
                if status == 201:
                    ids.append(post["id"])
                else:
                    failures.append((status, post))

        threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert len(set(ids)) == 400
        assert api(server, "GET", "/api/posts?limit=1")[1]["count"] == before + 400


@pytest.mark.time_limit(START)
def test_createsuperuser_and_login_hash_passwords_on_the_host(wasmhost_bin, migrated):
    # componentize-py's CPython has no OpenSSL, so no hashlib.pbkdf2_hmac of
    # its own: the SDK's runs on the host and must match CPython's.
    code = "import hashlib; print(hashlib.pbkdf2_hmac('sha256', b'pw', b'salt', 1000).hex())"
    result = run(wasmhost_bin, migrated, "-c", code)
    assert result.stdout.strip() == hashlib.pbkdf2_hmac("sha256", b"pw", b"salt", 1000).hex(), result.stderr
    bad = run(wasmhost_bin, migrated, "-c", "import hashlib; hashlib.pbkdf2_hmac('sha256', b'p', b's', 0)")
    assert bad.returncode == 1 and "ValueError" in bad.stderr, bad.stderr
    command = [str(wasmhost_bin), "run", "--cache-dir", str(SHARED_CACHE_DIR), "--data-dir", str(migrated),
               "--env", "DJANGO_SUPERUSER_PASSWORD=correct horse", *APP_ARGS, TARGET, "--",
               "manage.py", "createsuperuser", "--no-input", "--username", "admin", "--email", "admin@example.com"]
    created = subprocess.run(dies_with_parent(command), cwd=BLOG, capture_output=True, text=True, timeout=START)
    assert created.returncode == 0 and "Superuser created successfully." in created.stdout, created.stderr
    check = ("from django.contrib.auth import authenticate; "
             "print(authenticate(username='admin', password='correct horse') is not None, "
             "authenticate(username='admin', password='wrong') is None)")
    result = run(wasmhost_bin, migrated, "-c", check)
    assert (result.returncode, result.stdout.strip()) == (0, "True True"), result.stderr
