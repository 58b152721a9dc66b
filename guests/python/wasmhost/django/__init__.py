"""A Django database backend on the app's host databases
(``wasmhost:platform/sql``, through `wasmhost.db`)::

    DATABASES = {"default": {"ENGINE": "wasmhost.django", "NAME": "default"}}

``NAME`` is one of the databases the app declares (``databases =
["default"]`` in ``wasmhost.toml``, ``--database default``). The database is
the host's SQLite file of that name, persistent and shared by every
instance of the app, so the backend is Django's own SQLite backend
(`django.db.backends.sqlite3`: its SQL, schema editor, introspection,
migrations) over that connection instead of the guest's ``sqlite3``. See
`wasmhost.django.base` for what differs.

``NAME`` may also be a path (a `pathlib.Path`, or a string with a ``/``)
of a file in the app's directory: the backend then uses the app's file
database of that path (see `wasmhost._sqlite3_on_host`). A project that
keeps Django's default ``"ENGINE": "django.db.backends.sqlite3", "NAME":
BASE_DIR / "db.sqlite3"`` gets this backend for it when the app is built
(`adopt_sqlite3_databases`), so an unmodified project's database is
persistent and shared by all instances.
"""

from __future__ import annotations

import os


def adopt_sqlite3_databases() -> None:
    """Gives each of the project's ``django.db.backends.sqlite3``
    databases whose ``NAME`` is a file in the app's directory this backend
    (``ENGINE = "wasmhost.django"``, the same SQL on the host's file
    database of that path); called once the app's settings are loaded."""
    from django.conf import settings  # noqa: PLC0415

    if not settings.configured:
        return
    from django.db import connections  # noqa: PLC0415

    from .. import _sqlite3_on_host  # noqa: PLC0415

    for alias, entry in connections.settings.items():
        if entry.get("ENGINE") != "django.db.backends.sqlite3":
            continue
        path = _sqlite3_on_host.file_database(entry.get("NAME") or "")
        if path is None:
            continue
        entry["ENGINE"] = "wasmhost.django"
        entry["NAME"] = os.path.join(_sqlite3_on_host.app_dir() or "", path)
        try:
            del connections[alias]  # a wrapper made already keeps the old backend
        except AttributeError:
            pass

