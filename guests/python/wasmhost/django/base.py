"""`DatabaseWrapper` for ``ENGINE = "wasmhost.django"``: Django's SQLite
backend over `wasmhost.db`.

What differs from `django.db.backends.sqlite3`:

* The connection is ``wasmhost.db.connect(NAME)``; ``NAME`` names a
  declared database, not a file. ``OPTIONS`` takes ``init_command`` and
  ``transaction_mode``; a transaction holds the database's write lock from
  its start whatever the mode (the host's ``begin`` is ``IMMEDIATE``), so
  concurrent instances never lose an update and never fail with "database
  is locked" at commit.
* Django's SQLite backend registers Python functions on its connection
  (``django_date_extract``, ``django_date_trunc``, ``REGEXP``, ``MD5``,
  ``SHA1``...). The host's SQLite cannot call into the guest, so queries
  that need them (``__year``/``__month`` lookups, ``Trunc*``/``Extract*``,
  ``dates()``/``datetimes()``, ``__regex``, ``MD5()``/``SHA*()``) raise
  `django.db.OperationalError` ("no such function"). Everything else of the
  ORM works: models, relations, aggregates, ``atomic`` blocks and
  savepoints, migrations.
* The SQLite version is the host's (``get_database_version``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.sqlite3 import base as sqlite

from .. import db as Database  # noqa: N812 - the name Django's backends give their DB-API module

_PYFORMAT = re.compile(r"%\((\w+)\)s|%%|%s")


def _convert(query: str, params: Any) -> tuple[str, list[Any] | Any]:
    """`query` and `params` in Django's ``format`` (``%s``) or ``pyformat``
    (``%(name)s``) style, as ``qmark`` (``?``) and a list."""
    if params is None:
        return query, None
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "%%":
            return "%"
        if match.group(1) is not None:
            names.append(match.group(1))
        return "?"

    converted = _PYFORMAT.sub(placeholder, query)
    if isinstance(params, Mapping):
        try:
            return converted, [params[name] for name in names]
        except KeyError as missing:
            raise Database.ProgrammingError(f"no parameter named {missing} was given") from None
    return converted, params


class CursorWrapper(Database.Cursor):
    """A `wasmhost.db` cursor taking Django's placeholder styles."""

    def execute(self, query: str, params: Any = None) -> CursorWrapper:
        query, params = _convert(query, params)
        return super().execute(query, params)

    def executemany(self, query: str, param_list: Any) -> CursorWrapper:
        batches = list(param_list)
        if not batches:
            return self
        converted, _ = _convert(query, batches[0])
        return super().executemany(converted, [_convert(query, params)[1] for params in batches])


class DatabaseWrapper(sqlite.DatabaseWrapper):
    """Django's SQLite `DatabaseWrapper` on a host database."""

    display_name = "SQLite (wasmhost)"
    Database = Database

    def get_connection_params(self) -> dict[str, Any]:
        name = self.settings_dict["NAME"]
        if not name or not isinstance(name, str):
            raise ImproperlyConfigured(
                f"settings.DATABASES[{self.alias!r}]['NAME'] must name a database the app declares "
                "(databases = [\"default\"] in wasmhost.toml, --database default), such as \"default\""
            )
        options = dict(self.settings_dict["OPTIONS"])
        mode = options.pop("transaction_mode", None)
        if mode is not None and str(mode).upper() not in self.transaction_modes:
            raise ImproperlyConfigured(
                f"settings.DATABASES[{self.alias!r}]['OPTIONS']['transaction_mode'] is {mode!r}; "
                f"use one of {', '.join(sorted(self.transaction_modes))}, or None"
            )
        self.transaction_mode = str(mode).upper() if mode else None
        self.init_commands = str(options.pop("init_command", "")).split(";")
        if options:
            raise ImproperlyConfigured(
                f"settings.DATABASES[{self.alias!r}]['OPTIONS'] has {', '.join(sorted(options))}, "
                "which the wasmhost backend does not take (only init_command and transaction_mode)"
            )
        return {"database": name}

    def get_new_connection(self, conn_params: dict[str, Any]) -> Database.Connection:
        connection = Database.connect(conn_params["database"], autocommit=True)
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("PRAGMA legacy_alter_table = OFF")
        for command in self.init_commands:
            if command := command.strip():
                connection.execute(command)
        return connection

    def get_database_version(self) -> tuple[int, ...]:
        with self.temporary_connection() as cursor:
            cursor.execute("SELECT sqlite_version()")
            (version,) = cursor.fetchone()
        return tuple(int(part) for part in str(version).split("."))

    def create_cursor(self, name: str | None = None) -> CursorWrapper:
        return CursorWrapper(self.connection)

    def _set_autocommit(self, autocommit: bool) -> None:
        with self.wrap_database_errors:
            self.connection.autocommit = autocommit
