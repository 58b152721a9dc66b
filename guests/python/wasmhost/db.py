"""SQL databases kept by the host (``wasmhost:platform/sql``), as a PEP 249
(DB-API 2.0) module::

    import wasmhost

    @app.post("/notes")
    def add(request):
        with wasmhost.db.connect("default") as db:      # commits, or rolls back on error
            cursor = db.execute("INSERT INTO notes (text) VALUES (?)", (request.text,))
            return {"id": cursor.lastrowid}

A database is declared by the app's server (``databases = ["default"]`` in
``wasmhost.toml``, ``wasmhost serve --database default``) and kept by the
host in a SQLite file of the app's, persistent and shared by all its
instances; opening any other name raises `NoSuchDatabase`. The SQL is
SQLite's, with ``?`` placeholders (``paramstyle = "qmark"``).

Transactions follow the `sqlite3` module's default: a connection starts a
transaction before the first ``INSERT``, ``UPDATE``, ``DELETE`` or
``REPLACE`` and keeps it until `Connection.commit` or `Connection.rollback`
(``connect(name, autocommit=True)`` runs every statement on its own). A
transaction holds the database's write lock (`Connection.begin` starts one
explicitly, for a read-modify-write that must not lose an update; so does
executing ``BEGIN``); other instances wait for it (up to 5 s, then
`OperationalError`). What a request leaves uncommitted is rolled back by
the host when the request ends.

Values: ``None``, ``int``, ``float``, ``str`` and ``bytes`` map to SQLite's
null, integer, real, text and blob; ``bool`` is stored as 0/1, and
``datetime.date``, ``datetime.datetime`` and ``decimal.Decimal`` as their
ISO or decimal text. Rows are tuples.
"""

from __future__ import annotations

import datetime
import decimal
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from . import _runtime

__all__ = [
    "BINARY", "Binary", "Connection", "Cursor", "DATETIME", "DataError", "DatabaseError", "Date",
    "DateFromTicks", "Error", "IntegrityError", "InterfaceError", "InternalError", "NUMBER", "NoSuchDatabase",
    "NotSupportedError", "OperationalError", "ProgrammingError", "ROWID", "STRING", "Time", "TimeFromTicks",
    "Timestamp", "TimestampFromTicks", "Warning", "apilevel", "connect", "paramstyle", "threadsafety",
]

apilevel = "2.0"
threadsafety = 1
paramstyle = "qmark"

# The host's import exists only in components built for world `app`.
_sql: Any = _runtime.host_module("wit_world.imports.sql")
_Err: Any = getattr(_runtime.host_module("componentize_py_types"), "Err", None)


class Warning(Exception):  # noqa: A001 - the name PEP 249 gives it
    """PEP 249's warning (never raised by this module)."""


class Error(Exception):
    """Base of every error this module raises."""


class InterfaceError(Error):
    """The module was misused (a closed connection or cursor, no host)."""


class DatabaseError(Error):
    """The database refused or failed a statement."""


class DataError(DatabaseError):
    """A value cannot be stored (an int beyond 64 bits, say)."""


class OperationalError(DatabaseError):
    """The database could not run the statement: bad SQL, a missing table,
    locked for too long, a limit of the host's."""


class IntegrityError(DatabaseError):
    """A constraint refused the change (unique, foreign key, not null, check)."""


class InternalError(DatabaseError):
    """The database failed in a way that is not the statement's fault."""


class ProgrammingError(DatabaseError):
    """The call was wrong: the number of parameters, a statement the host
    refuses (``ATTACH``, most ``PRAGMA`` settings), several statements."""


class NotSupportedError(DatabaseError):
    """Something this module does not do (named parameters, say)."""


class NoSuchDatabase(OperationalError):
    """The app did not declare a database of this name."""


def _error(err: Any, database: str) -> DatabaseError:
    """The exception for the host's `error` value."""
    kind = getattr(getattr(err, "kind", None), "name", "OTHER")
    message = f"database {database!r}: {getattr(err, 'message', err)}"
    if kind == "NO_SUCH_DATABASE":
        return NoSuchDatabase(
            f"database {database!r} is not declared for this app "
            f"(add it to databases in wasmhost.toml, or pass --database {database})"
        )
    cls = {
        "SYNTAX": OperationalError,
        "CONSTRAINT": IntegrityError,
        "BUSY": OperationalError,
        "LIMIT": OperationalError,
        "REFUSED": ProgrammingError,
    }.get(kind, DatabaseError)
    return cls(message)


# -- types (PEP 249) -------------------------------------------------------

Date = datetime.date
Time = datetime.time
Timestamp = datetime.datetime
Binary = bytes


def DateFromTicks(ticks: float) -> datetime.date:  # noqa: N802 - PEP 249 names
    return Date(*time.localtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> datetime.time:  # noqa: N802
    return Time(*time.localtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> datetime.datetime:  # noqa: N802
    return Timestamp(*time.localtime(ticks)[:6])


class _TypeSet(frozenset):
    """A PEP 249 type object: equal to each of its SQLite type names."""

    def __eq__(self, other: object) -> bool:
        return other in self if isinstance(other, str) else frozenset.__eq__(self, other)

    __hash__ = frozenset.__hash__


STRING = _TypeSet({"TEXT"})
BINARY = _TypeSet({"BLOB"})
NUMBER = _TypeSet({"INTEGER", "REAL"})
DATETIME = _TypeSet({"TEXT"})
ROWID = _TypeSet({"INTEGER"})

_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1


def _param(value: Any) -> Any:
    """The host value for the Python value `value`."""
    if value is None:
        return _sql.Value_Null()
    if isinstance(value, bool):
        return _sql.Value_Integer(int(value))
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise DataError(f"{value} does not fit SQLite's 64-bit integers")
        return _sql.Value_Integer(value)
    if isinstance(value, float):
        return _sql.Value_Real(value)
    if isinstance(value, str):
        return _sql.Value_Text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _sql.Value_Blob(bytes(value))
    if isinstance(value, datetime.datetime):
        return _sql.Value_Text(value.isoformat(" "))
    if isinstance(value, (datetime.date, datetime.time)):
        return _sql.Value_Text(value.isoformat())
    if isinstance(value, decimal.Decimal):
        return _sql.Value_Text(str(value))
    raise ProgrammingError(f"parameters of type {type(value).__name__} are not supported")


def _params(params: Sequence[Any] | None) -> list[Any]:
    if params is None:
        return []
    if isinstance(params, dict):
        raise NotSupportedError("named parameters are not supported: use ? placeholders and a sequence")
    if isinstance(params, (str, bytes)) or not isinstance(params, Sequence):
        raise ProgrammingError(f"parameters are a sequence (a tuple or list), not {type(params).__name__}")
    return [_param(value) for value in params]


_IMPLICIT_BEGIN = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_BEGIN = {"BEGIN", "BEGIN TRANSACTION", "BEGIN DEFERRED", "BEGIN IMMEDIATE", "BEGIN EXCLUSIVE"}


def _first_words(statement: str) -> str:
    """The statement's leading keywords, upper case, comments skipped."""
    text = statement.lstrip()
    while text.startswith(("--", "/*")):
        end = text.find("\n") if text.startswith("--") else text.find("*/")
        text = "" if end < 0 else text[end + (1 if text.startswith("--") else 2) :].lstrip()
    return " ".join(text.rstrip().rstrip(";").split()[:2]).upper()


class Connection:
    """A connection to one declared database (see `connect`)."""

    def __init__(self, database: str, autocommit: bool = False, *, file: bool = False) -> None:
        self.database = database
        self.autocommit = autocommit
        self._file = file
        self._handle: Any = None
        self._closed = False

    def __repr__(self) -> str:
        return f"<wasmhost.db.Connection {self.database!r}>"

    def _host(self) -> Any:
        if self._closed:
            raise InterfaceError("the connection is closed")
        if _sql is None or _Err is None:
            raise InterfaceError("wasmhost.db works only in an app served by wasmhost (built with `wasmhost build`)")
        if not _runtime.serving:
            raise InterfaceError(
                f"database {self.database!r} used while the app is being built: use it in handlers, not at import"
            )
        if self._handle is None:
            try:
                opener = _sql.Connection.open_file if self._file else _sql.Connection.open
                self._handle = opener(self.database)
            except _Err as err:
                raise _error(err.value, self.database) from None
        return self._handle

    def _call(self, operation: Any, *args: Any) -> Any:
        handle = self._host()
        try:
            return operation(handle, *args)
        except _Err as err:
            raise _error(err.value, self.database) from None

    # -- transactions ------------------------------------------------------

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is in progress."""
        return self._handle is not None and not self._closed and bool(self._handle.in_transaction())

    def begin(self) -> None:
        """Starts a transaction now, holding the write lock until `commit` or
        `rollback` (for a read-then-write that must not lose an update)."""
        if not self.in_transaction:
            self._call(lambda handle: handle.begin())

    def commit(self) -> None:
        """Commits the transaction in progress, if any."""
        if self._handle is not None and not self._closed:
            self._call(lambda handle: handle.commit())

    def rollback(self) -> None:
        """Rolls back the transaction in progress, if any."""
        if self._handle is not None and not self._closed:
            self._call(lambda handle: handle.rollback())

    def close(self) -> None:
        """Closes the connection; an uncommitted transaction is rolled back."""
        if self._handle is not None and not self._closed:
            self._handle.__exit__(None, None, None)
        self._handle = None
        self._closed = True

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> None:
        """Commits when the block succeeded, rolls back when it raised (the
        connection stays open, as with `sqlite3`)."""
        if exc_type is None:
            self.commit()
        else:
            self.rollback()

    # -- statements --------------------------------------------------------

    def cursor(self) -> Cursor:
        """A new cursor on this connection."""
        if self._closed:
            raise InterfaceError("the connection is closed")
        return Cursor(self)

    def execute(self, statement: str, params: Sequence[Any] | None = None) -> Cursor:
        """`Cursor.execute` on a new cursor, which it returns."""
        return self.cursor().execute(statement, params)

    def executemany(self, statement: str, seq_of_params: Iterable[Sequence[Any]]) -> Cursor:
        """`Cursor.executemany` on a new cursor, which it returns."""
        return self.cursor().executemany(statement, seq_of_params)

    def _prepare(self, statement: str) -> bool:
        """Starts the implicit transaction `statement` needs; whether the
        statement is itself a ``BEGIN`` (which `begin` then ran)."""
        if not isinstance(statement, str):
            raise ProgrammingError(f"a statement is a str, not {type(statement).__name__}")
        words = _first_words(statement)
        if words in _BEGIN:
            self.begin()
            return True
        if not self.autocommit and words.startswith(_IMPLICIT_BEGIN):
            self.begin()
        return False


class Cursor:
    """A cursor (PEP 249): runs statements and holds the last one's rows."""

    arraysize = 1

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.description: tuple[tuple[Any, ...], ...] | None = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self._column_types: list[str] = []
        self._rows: list[tuple[Any, ...]] = []
        self._next = 0
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise InterfaceError("the cursor is closed")

    def execute(self, statement: str, params: Sequence[Any] | None = None) -> Cursor:
        """Runs one statement with `params` bound to its ``?`` placeholders."""
        self._check()
        values = _params(params)
        self._rows, self._next, self.description, self.rowcount = [], 0, None, -1
        if self.connection._prepare(statement):
            return self
        outcome = self.connection._call(lambda handle: handle.execute(statement, values))
        if outcome.columns:
            self.description = tuple((name, None, None, None, None, None, None) for name in outcome.columns)
            self._column_types = outcome.column_types
            self._rows = [tuple(value.value if hasattr(value, "value") else None for value in row) for row in outcome.rows]
        else:
            self.rowcount = outcome.rows_affected
        self.lastrowid = outcome.last_insert_id or None
        return self

    def executemany(self, statement: str, seq_of_params: Iterable[Sequence[Any]]) -> Cursor:
        """Runs one statement for each parameter sequence, all or nothing."""
        self._check()
        batches = [_params(params) for params in seq_of_params]
        self._rows, self._next, self.description = [], 0, None
        self.connection._prepare(statement)
        self.rowcount = self.connection._call(lambda handle: handle.execute_many(statement, batches))
        return self

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row, or None."""
        self._check()
        if self._next >= len(self._rows):
            return None
        row = self._rows[self._next]
        self._next += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        """The next `size` rows (`arraysize` by default)."""
        self._check()
        count = self.arraysize if size is None else size
        rows = self._rows[self._next : self._next + count]
        self._next += len(rows)
        return rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        """The remaining rows."""
        self._check()
        rows = self._rows[self._next :]
        self._next = len(self._rows)
        return rows

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        """Closes the cursor (its rows are dropped)."""
        self._rows, self._closed = [], True

    def setinputsizes(self, sizes: Any) -> None:
        """Does nothing (PEP 249)."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """Does nothing (PEP 249)."""


def connect(database: str = "default", *, autocommit: bool = False) -> Connection:
    """A connection to the declared database `database`, opened on first
    use (so `connect` is fine at module level)."""
    if not isinstance(database, str):
        raise InterfaceError(f"a database name is a str, not {type(database).__name__}")
    return Connection(database, autocommit=autocommit)
