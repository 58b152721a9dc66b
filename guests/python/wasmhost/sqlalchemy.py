"""A SQLAlchemy 2.x dialect for the app's host databases::

    from sqlalchemy import create_engine

    engine = create_engine("wasmhost:///default")   # the declared database "default"

``wasmhost:///NAME`` opens the database ``NAME`` the app declares
(``databases = ["default"]`` in ``wasmhost.toml``, ``--database default``),
kept by the host, persistent and shared by all instances. Core and the ORM
work as on SQLite (the dialect is SQLAlchemy's ``sqlite+pysqlite`` over
the host's connections; the SQL is SQLite's). An app that keeps a
``sqlite:///path`` URL of a file in its directory gets the app's file
database of that path instead (see `wasmhost._sqlite3_on_host`): both
persist.

The SDK registers the dialect when the app's build finds SQLAlchemy
installed, before the app is imported, so nothing needs importing or
registering by hand. Isolation levels: ``SERIALIZABLE`` (the default) and
``AUTOCOMMIT``; a transaction holds the database's write lock from its
start (see `wasmhost.db`). SQLAlchemy's Python ``regexp`` and ``floor``
functions are never called (the host's SQLite cannot call into the guest):
``regexp_match`` and ``func.floor`` run on the host's ``REGEXP`` and
SQLite's math functions.
"""

from __future__ import annotations

import types
from typing import Any

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL

from . import _sqlite3_on_host


def _dbapi() -> types.ModuleType:
    """`sqlite3` with a ``connect`` that opens declared databases."""
    import sqlite3  # noqa: PLC0415

    module = types.ModuleType("wasmhost.sqlalchemy.dbapi", "sqlite3's DB-API on the app's declared databases")
    module.__dict__.update({name: value for name, value in vars(sqlite3).items() if not name.startswith("__")})
    module.connect = _sqlite3_on_host.connect_declared  # type: ignore[attr-defined]
    return module


class WasmhostDialect(SQLiteDialect_pysqlite):
    """``wasmhost://``: SQLite's dialect on a database the host keeps."""

    name = "wasmhost"
    driver = "wasmhost"
    supports_statement_cache = True
    _isolation_lookup = {"SERIALIZABLE": 0, "AUTOCOMMIT": None}  # type: ignore[dict-item]  # noqa: RUF012

    @classmethod
    def import_dbapi(cls) -> Any:
        return _dbapi()

    @classmethod
    def get_pool_class(cls, url: URL) -> Any:
        from sqlalchemy import pool  # noqa: PLC0415

        return pool.QueuePool

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        if url.username or url.password or url.host or url.port or url.query:
            raise ValueError(
                f"invalid wasmhost URL {url.render_as_string(hide_password=True)!r}: use wasmhost:///NAME "
                "for the app's declared database NAME"
            )
        return [url.database or "default"], {}

    def set_isolation_level(self, dbapi_connection: Any, level: Any) -> None:
        if level not in self._isolation_lookup:
            raise ValueError(f"isolation level {level!r} is not supported: use SERIALIZABLE or AUTOCOMMIT")
        dbapi_connection.isolation_level = None if level == "AUTOCOMMIT" else ""

    def get_isolation_level(self, dbapi_connection: Any) -> str:
        return "SERIALIZABLE"


def register() -> None:
    """Makes ``wasmhost://`` URLs use `WasmhostDialect`."""
    registry.register("wasmhost", "wasmhost.sqlalchemy", "WasmhostDialect")
