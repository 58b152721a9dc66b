"""`DatabaseWrapper` for ``ENGINE = "wasmhost.django"``: Django's SQLite
backend over `wasmhost.db`.

What differs from `django.db.backends.sqlite3`:

* The connection is ``wasmhost.db.connect(NAME)``; ``NAME`` names a
  declared database, or is the path of a file in the app's directory (a
  `pathlib.Path` or a string with ``/``: the app's file database of that
  path, where Django's own ``OPTIONS`` for `sqlite3.connect`, such as
  ``timeout``, are ignored). ``OPTIONS`` takes ``init_command`` and
  ``transaction_mode``; a transaction holds the database's write lock from
  its start whatever the mode (the host's ``begin`` is ``IMMEDIATE``), so
  concurrent instances never lose an update and never fail with "database
  is locked" at commit.
* Django's SQLite backend registers Python functions on its connection
  (``django_date_extract``, ``django_date_trunc``, ``REGEXP``, ``MD5``,
  ``SHA1``...). The host's SQLite cannot call into the guest; it has its
  own functions of the same names and results (every one Django 5.2
  registers), so ``__month`` lookups, ``Trunc*``/``Extract*``,
  ``dates()``/``datetimes()``, ``__regex``, ``MD5()``, ``DurationField``
  arithmetic, ``Random()`` and ``StdDev``/``Variance`` work (the last two
  skip NULLs and answer NULL for too few rows, as on PostgreSQL).
* The SQLite version is the host's (``get_database_version``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.sqlite3 import base as sqlite

from .. import _sqlite3_on_host
from .. import db as Database  # noqa: N812 - the name Django's backends give their DB-API module

_SQLITE3_CONNECT_OPTIONS = frozenset(
    {"timeout", "detect_types", "isolation_level", "check_same_thread", "cached_statements", "uri", "autocommit"}
)
"""``OPTIONS`` of Django's own SQLite backend that a file database ignores."""

_PYFORMAT = re.compile(r"%\((\w+)\)s|%%|%s")


def _convert(query: str) -> tuple[str, list[str]]:
    """`query` in Django's ``format`` (``%s``) or ``pyformat``
    (``%(name)s``) style as ``qmark`` (``?``), and the names of its
    ``pyformat`` placeholders in order."""
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        text = match.group(0)
        if text == "%%":
            return "%"
        if match.group(1) is not None:
            names.append(match.group(1))
        return "?"

    return _PYFORMAT.sub(placeholder, query), names


def _bind(names: list[str], params: Any) -> Any:
    """`params` for a converted query: a mapping's values in the order of
    its placeholders `names`, any other sequence as it is."""
    if not isinstance(params, Mapping):
        return params
    try:
        return [params[name] for name in names]
    except KeyError as missing:
        raise Database.ProgrammingError(f"no parameter named {missing} was given") from None


class CursorWrapper(Database.Cursor):
    """A `wasmhost.db` cursor taking Django's placeholder styles."""

    def execute(self, query: str, params: Any = None) -> CursorWrapper:
        if params is None:
            return super().execute(query)
        converted, names = _convert(query)
        return super().execute(converted, _bind(names, params))

    def executemany(self, query: str, param_list: Any) -> CursorWrapper:
        converted, names = _convert(query)
        return super().executemany(converted, [_bind(names, params) for params in param_list])


class DatabaseWrapper(sqlite.DatabaseWrapper):
    """Django's SQLite `DatabaseWrapper` on a host database."""

    display_name = "SQLite (wasmhost)"
    Database = Database

    def get_connection_params(self) -> dict[str, Any]:
        name = self.settings_dict["NAME"]
        if isinstance(name, os.PathLike) or (isinstance(name, str) and "/" in name):
            path = _sqlite3_on_host.file_database(name)
            if path is None:
                raise ImproperlyConfigured(
                    f"settings.DATABASES[{self.alias!r}]['NAME'] is {str(name)!r}, which is not a file in the "
                    f"app's directory ({_sqlite3_on_host.app_dir()}): name a database the app declares, or a file "
                    "in its directory"
                )
            self._take_options(ignored=_SQLITE3_CONNECT_OPTIONS)
            return {"database": path, "file": True}
        if not name or not isinstance(name, str):
            raise ImproperlyConfigured(
                f"settings.DATABASES[{self.alias!r}]['NAME'] must name a database the app declares "
                "(databases = [\"default\"] in wasmhost.toml, --database default), such as \"default\""
            )
        self._take_options(ignored=frozenset())
        return {"database": name, "file": False}

    def _take_options(self, ignored: frozenset[str]) -> None:
        """Reads ``OPTIONS``: ``init_command`` and ``transaction_mode``, and
        the keys in `ignored` (what Django's own backend passes to
        `sqlite3.connect`, such as ``timeout``: the host's settings apply)."""
        options = {key: value for key, value in self.settings_dict["OPTIONS"].items() if key not in ignored}
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

    def get_new_connection(self, conn_params: dict[str, Any]) -> Database.Connection:
        connection = Database.Connection(conn_params["database"], autocommit=True, file=conn_params["file"])
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
