"""The standard library's `sqlite3` on the host's databases, for apps that
call ``sqlite3.connect(path)`` themselves (the Flask tutorial's flaskr,
SQLAlchemy's ``sqlite:///`` URLs, scripts).

SQLite inside the guest cannot be shared: its file locking is a dot file,
one connection at a time, left behind when an instance is killed, and what
one instance writes no other sees. So `install` replaces
``sqlite3.connect``: a database file in the app's directory opens the
app's *file database* of that
path, a SQLite file the host keeps in the app's data directory
(``<data dir>/<app>/sql/files/``, created on first use), persistent and
shared by all instances; ``:memory:``, ``""``, ``mode=memory`` URIs and
paths outside the app's directory are opened in the guest as before. The
current directory is the app's (`install`), so a relative path is in it
unless the app changes directory.

The connection and its cursors are this module's `Connection`, `Cursor`
and `Row`, with the `sqlite3` module's API and semantics: ``execute``,
``executemany`` and ``executescript`` (on the connection or a cursor),
``?`` and named (``:name``) parameters, ``row_factory`` (`sqlite3.Row`
included), ``text_factory``, ``detect_types`` with the registered
converters, adapters and ``__conform__``, ``isolation_level`` and
``autocommit``, ``in_transaction``, ``total_changes``, ``lastrowid``,
``rowcount``, ``description``, the connection as a context manager, and
`sqlite3`'s own exception classes. What differs:

* Transactions start with ``BEGIN IMMEDIATE`` whatever the isolation
  level, so that concurrent instances never lose an update (see
  `wasmhost.db`). What a request leaves uncommitted is rolled back when it
  ends.
* Python functions, aggregates and collations (``create_function`` and
  the like) are accepted but never called: the host's SQLite cannot call
  into the guest, so SQL that uses them fails with "no such function"
  unless the host has one of that name (``REGEXP``, ``MD5``, ``SHA1``...,
  SQLite's math functions: see README.md "State").
  ``set_authorizer``, ``set_progress_handler`` and ``set_trace_callback``
  are accepted and do nothing.
* ``backup``, ``iterdump``, ``blobopen``, ``load_extension``,
  ``serialize`` and ``deserialize`` raise `sqlite3.NotSupportedError`;
  ``ATTACH`` and pragmas that change how the file is kept are refused
  (`sqlite3.ProgrammingError`), as for every host database.
* The objects are not instances of `sqlite3.Connection`/`sqlite3.Cursor`
  (a ``factory`` argument other than those is refused).
"""

from __future__ import annotations

import functools
import os
import re
import sqlite3 as _std
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from . import db

LEGACY = getattr(_std, "LEGACY_TRANSACTION_CONTROL", -1)
"""``autocommit``'s default: transactions as ``isolation_level`` says."""

_guest_connect = _std.connect
_app_dir: str | None = None


def install(app_dir: str | None) -> None:
    """Makes ``sqlite3.connect`` open files in `app_dir` (the app's
    directory as the build sees it) on the host, and makes `app_dir` the
    current directory (as for ``python app.py`` run in it), so that
    relative paths are the app's."""
    global _app_dir
    _app_dir = os.path.normpath(app_dir) if app_dir else None
    _std.connect = connect
    _std.dbapi2.connect = connect
    if _app_dir is not None and os.path.isdir(_app_dir):
        os.chdir(_app_dir)


def app_dir() -> str | None:
    """The app's directory, as the build saw it (None before `install`)."""
    return _app_dir


def file_database(database: Any, uri: bool = False) -> str | None:
    """The path, relative to the app's directory and with ``/``, of the
    file database that ``sqlite3.connect(database, uri=uri)`` opens on the
    host; None when it stays in the guest."""
    if _app_dir is None:
        return None
    path = os.fsdecode(os.fspath(database))
    if uri and path.startswith("file:"):
        path, _, query = path[5:].partition("?")
        if "mode=memory" in query.split("&"):
            return None
        path = unquote(path.removeprefix("//localhost").removeprefix("//"))
    if path in ("", ":memory:"):
        return None
    full = os.path.abspath(path)
    relative = os.path.relpath(full, _app_dir)
    if relative == os.curdir or relative.startswith(os.pardir):
        return None
    return relative.replace(os.sep, "/")


def _options(
    timeout: float = 5.0,
    detect_types: int = 0,
    isolation_level: str | None = "DEFERRED",
    check_same_thread: bool = True,
    factory: Any = None,
    cached_statements: int = 128,
    uri: bool = False,
    *,
    autocommit: Any = LEGACY,
) -> dict[str, Any]:
    """`sqlite3.connect`'s arguments after the database, by name."""
    return {
        "detect_types": detect_types,
        "isolation_level": isolation_level,
        "factory": factory,
        "uri": uri,
        "autocommit": autocommit,
    }


def connect(database: Any, *args: Any, **kwargs: Any) -> Any:
    """`sqlite3.connect`, on the host for a file in the app's directory."""
    options = _options(*args, **kwargs)
    path = file_database(database, options["uri"])
    if path is None:
        return _guest_connect(database, *args, **kwargs)
    if options["factory"] not in (None, _std.Connection):
        raise _std.NotSupportedError(
            f"sqlite3.connect({database!r}, factory=...) is not supported: the app's database files are kept by "
            "the host, through wasmhost's own connection class"
        )
    return Connection(db.Connection(path, file=True), options)


def connect_declared(database: str, *args: Any, **kwargs: Any) -> Connection:
    """A `sqlite3`-style connection to the app's declared database
    `database` (``databases = [...]``), taking `sqlite3.connect`'s
    arguments."""
    return Connection(db.Connection(database), _options(*args, **kwargs))


_ERRORS = {
    db.IntegrityError: _std.IntegrityError,
    db.ProgrammingError: _std.ProgrammingError,
    db.OperationalError: _std.OperationalError,
    db.DataError: _std.DataError,
    db.NotSupportedError: _std.NotSupportedError,
    db.InternalError: _std.InternalError,
    db.InterfaceError: _std.InterfaceError,
    db.DatabaseError: _std.DatabaseError,
}


class _Translated:
    """Re-raises `wasmhost.db`'s exceptions as `sqlite3`'s."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> bool:
        if exc_type is None or not issubclass(exc_type, db.Error):
            return False
        for mine, theirs in _ERRORS.items():
            if issubclass(exc_type, mine):
                raise theirs(str(exc)) from None
        raise _std.Error(str(exc)) from None


_translated = _Translated()


def _not_supported(name: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        raise _std.NotSupportedError(f"Connection.{name}() is not supported on a database file kept by the host")

    method.__name__ = name
    return method


def _accepted(name: str) -> Callable[..., Any]:
    def method(self: Any, *args: Any, **kwargs: Any) -> None:
        """Accepted and ignored (see the module documentation)."""

    method.__name__ = name
    return method


class Connection:
    """A `sqlite3.Connection` to one of the app's file databases."""

    Warning = _std.Warning
    Error = _std.Error
    InterfaceError = _std.InterfaceError
    DatabaseError = _std.DatabaseError
    DataError = _std.DataError
    OperationalError = _std.OperationalError
    IntegrityError = _std.IntegrityError
    InternalError = _std.InternalError
    ProgrammingError = _std.ProgrammingError
    NotSupportedError = _std.NotSupportedError

    def __init__(self, connection: db.Connection, options: Mapping[str, Any]) -> None:
        self._db = connection
        self.detect_types = int(options.get("detect_types") or 0)
        self.row_factory: Any = None
        self.text_factory: Any = str
        self._isolation_level: str | None = None
        self._autocommit = options.get("autocommit", LEGACY)
        if self._autocommit not in (LEGACY, True, False):
            raise ValueError("autocommit must be True, False, or sqlite3.LEGACY_TRANSACTION_CONTROL")
        self.isolation_level = options.get("isolation_level", "DEFERRED")
        if not self._legacy:
            self._db.autocommit = self._autocommit is True

    @property
    def _legacy(self) -> bool:
        return self._autocommit is not True and self._autocommit is not False

    def __repr__(self) -> str:
        return f"<wasmhost sqlite3.Connection to the app's file {self._db.database!r}>"

    # -- transactions --------------------------------------------------------

    @property
    def isolation_level(self) -> str | None:
        """None for autocommit, else the ``BEGIN`` kind (the host's is
        always ``IMMEDIATE``); setting None commits."""
        return self._isolation_level

    @isolation_level.setter
    def isolation_level(self, level: str | None) -> None:
        if level is not None and str(level).upper() not in ("", "DEFERRED", "IMMEDIATE", "EXCLUSIVE"):
            raise ValueError("isolation_level string must be '', 'DEFERRED', 'IMMEDIATE', or 'EXCLUSIVE'")
        self._isolation_level = level
        if self._legacy:
            self._db.autocommit = level is None
            if level is None:
                self.commit()

    @property
    def autocommit(self) -> Any:
        """`sqlite3.Connection.autocommit` (Python 3.12)."""
        return self._autocommit

    @autocommit.setter
    def autocommit(self, value: Any) -> None:
        if value not in (LEGACY, True, False):
            raise ValueError("autocommit must be True, False, or sqlite3.LEGACY_TRANSACTION_CONTROL")
        if value is True or value is False:
            self.commit()
        self._autocommit = value
        self._db.autocommit = value is True or (self._legacy and self._isolation_level is None)

    @property
    def in_transaction(self) -> bool:
        return self._db.in_transaction

    @property
    def total_changes(self) -> int:
        (changes,) = self.execute("SELECT total_changes()").fetchone()
        return int(changes)

    def _begin_if_pep249(self) -> None:
        """With ``autocommit=False`` a transaction is always open."""
        if self._autocommit is False and not self._db.in_transaction:
            with _translated:
                self._db.begin()

    def commit(self) -> None:
        with _translated:
            self._db.commit()

    def rollback(self) -> None:
        with _translated:
            self._db.rollback()

    def close(self) -> None:
        """Closes the connection; an uncommitted transaction is rolled back."""
        self._db.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: Any, exc: Any, traceback: Any) -> bool:
        if exc_type is None:
            self.commit()
        else:
            self.rollback()
        return False

    # -- statements ----------------------------------------------------------

    def _check_open(self) -> None:
        if self._db._closed:
            raise _std.ProgrammingError("Cannot operate on a closed database.")

    def cursor(self, factory: Any = None) -> Cursor:
        self._check_open()
        if factory not in (None, _std.Cursor, Cursor):
            if isinstance(factory, type) and issubclass(factory, Cursor):
                return factory(self)
            raise _std.NotSupportedError(
                "Connection.cursor(factory=...) takes a subclass of this connection's cursor class "
                "on a database file kept by the host"
            )
        return Cursor(self)

    def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        return self.cursor().execute(sql, parameters)

    def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        return self.cursor().executemany(sql, parameters)

    def executescript(self, sql_script: str) -> Cursor:
        return self.cursor().executescript(sql_script)

    create_function = _accepted("create_function")
    create_aggregate = _accepted("create_aggregate")
    create_window_function = _accepted("create_window_function")
    create_collation = _accepted("create_collation")
    set_authorizer = _accepted("set_authorizer")
    set_progress_handler = _accepted("set_progress_handler")
    set_trace_callback = _accepted("set_trace_callback")
    interrupt = _accepted("interrupt")
    backup = _not_supported("backup")
    iterdump = _not_supported("iterdump")
    blobopen = _not_supported("blobopen")
    enable_load_extension = _not_supported("enable_load_extension")
    load_extension = _not_supported("load_extension")
    serialize = _not_supported("serialize")
    deserialize = _not_supported("deserialize")

    def getlimit(self, category: int) -> int:
        raise _std.NotSupportedError("Connection.getlimit() is not supported on a database file kept by the host")

    setlimit = _not_supported("setlimit")
    getconfig = _not_supported("getconfig")
    setconfig = _not_supported("setconfig")


_NAMED = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?\*/|[:@$]([A-Za-z_]\w*)""", re.S)


@functools.lru_cache(maxsize=256)
def _named(sql: str) -> tuple[str, tuple[str, ...]]:
    """`sql` with its ``:name`` (``@name``, ``$name``) placeholders as
    ``?``, and the names in their order."""
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return match.group(0)
        names.append(name)
        return "?"

    return _NAMED.sub(placeholder, sql), tuple(names)


def _adapt(value: Any) -> Any:
    """`value` through a registered adapter or its ``__conform__``."""
    adapter = _std.adapters.get((type(value), _std.PrepareProtocol))
    if adapter is not None:
        return adapter(value)
    conform = getattr(value, "__conform__", None)
    if conform is not None:
        adapted = conform(_std.PrepareProtocol)
        if adapted is not None:
            return adapted
    return value


def _bound(sql: str, parameters: Any) -> tuple[str, list[Any]]:
    if parameters is None:
        parameters = ()
    if isinstance(parameters, Mapping):
        sql, names = _named(sql)
        try:
            values = [parameters[name] for name in names]
        except KeyError as missing:
            raise _std.ProgrammingError(f"You did not supply a value for binding parameter :{missing.args[0]}.") from None
    elif isinstance(parameters, Sequence) and not isinstance(parameters, (str, bytes)):
        values = list(parameters)
    else:
        raise _std.ProgrammingError("parameters are of unsupported type")
    return sql, [_adapt(value) for value in values]


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return str(value).encode()


_COLUMN_TYPE = re.compile(r"\[([^\]]*)\]")


def _statements(script: str) -> Iterator[str]:
    """The statements of `script`, split where SQLite would."""
    start = 0
    position = script.find(";")
    while position >= 0:
        candidate = script[start : position + 1]
        if _std.complete_statement(candidate):
            yield candidate
            start = position + 1
        position = script.find(";", position + 1)
    if script[start:].strip():
        yield script[start:]


class Cursor:
    """A `sqlite3.Cursor` on a `Connection`."""

    def __init__(self, connection: Connection) -> None:
        if not isinstance(connection, Connection):
            raise TypeError("a Cursor takes a connection to a database file kept by the host")
        self.connection = connection
        self.row_factory: Any = connection.row_factory
        self.arraysize = 1
        self._cursor = db.Cursor(connection._db)
        self._converters: list[Any] = []
        self.description: tuple[tuple[Any, ...], ...] | None = None

    def _check(self) -> None:
        self.connection._check_open()
        if self._cursor._closed:
            raise _std.ProgrammingError("Cannot operate on a closed cursor.")

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        self._check()
        if not isinstance(sql, str):
            raise TypeError(f"execute() argument 1 must be str, not {type(sql).__name__}")
        sql, values = _bound(sql, parameters)
        self.connection._begin_if_pep249()
        with _translated:
            self._cursor.execute(sql, values)
        self._describe()
        return self

    def executemany(self, sql: str, seq_of_parameters: Iterable[Any]) -> Cursor:
        self._check()
        batches = [_bound(sql, parameters) for parameters in seq_of_parameters]
        statement = batches[0][0] if batches else sql
        self.connection._begin_if_pep249()
        with _translated:
            self._cursor.executemany(statement, [values for _, values in batches])
        self._describe()
        return self

    def executescript(self, sql_script: str) -> Cursor:
        """Commits a pending transaction (unless ``autocommit=False``), then
        runs each statement of `sql_script` as it stands."""
        self._check()
        if not isinstance(sql_script, str):
            raise ValueError("script argument must be unicode.")
        if self.connection._autocommit is not False:
            self.connection.commit()
        connection = self.connection._db
        implicit, connection.autocommit = connection.autocommit, True
        try:
            with _translated:
                for statement in _statements(sql_script):
                    if db._first_words(statement):
                        self._cursor.execute(statement)
        finally:
            connection.autocommit = implicit
        self._describe()
        return self

    def _describe(self) -> None:
        """Sets `description` and the converters of the last result's columns."""
        described = self._cursor.description
        self._converters = []
        if described is None:
            self.description = None
            return
        detect = self.connection.detect_types
        names, converters = [], []
        types = self._cursor._column_types or [""] * len(described)
        for (name, *_), declared in zip(described, types):
            converter = None
            if detect & _std.PARSE_COLNAMES and (found := _COLUMN_TYPE.search(name)):
                converter = _std.converters.get(found.group(1).strip().upper())
                name = name[: found.start()].rstrip()
            if converter is None and detect & _std.PARSE_DECLTYPES and declared:
                first = re.split(r"[\s(]", declared.strip(), maxsplit=1)[0]
                converter = _std.converters.get(first.upper())
            names.append(name)
            converters.append(converter)
        self.description = tuple((name, None, None, None, None, None, None) for name in names)
        if any(converters) or self.connection.text_factory is not str:
            self._converters = converters

    def _row(self, values: tuple[Any, ...]) -> Any:
        if self._converters:
            text_factory = self.connection.text_factory
            converted = []
            for value, converter in zip(values, self._converters):
                if value is not None and converter is not None:
                    value = converter(_as_bytes(value))
                elif isinstance(value, str) and text_factory is not str:
                    value = text_factory(value.encode())
                converted.append(value)
            values = tuple(converted)
        factory = self.row_factory
        if factory is None:
            return values
        if factory is _std.Row:
            factory = Row
        return factory(self, values)

    def fetchone(self) -> Any:
        self._check()
        with _translated:
            row = self._cursor.fetchone()
        return None if row is None else self._row(row)

    def fetchmany(self, size: int | None = None) -> list[Any]:
        self._check()
        with _translated:
            rows = self._cursor.fetchmany(self.arraysize if size is None else size)
        return [self._row(row) for row in rows]

    def fetchall(self) -> list[Any]:
        self._check()
        with _translated:
            rows = self._cursor.fetchall()
        return [self._row(row) for row in rows]

    def __iter__(self) -> Cursor:
        return self

    def __next__(self) -> Any:
        row = self.fetchone()
        if row is None:
            raise StopIteration
        return row

    def close(self) -> None:
        self._cursor.close()

    def setinputsizes(self, sizes: Any) -> None:
        """Does nothing (PEP 249)."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """Does nothing (PEP 249)."""


class Row:
    """`sqlite3.Row` for the host's rows: a tuple that can also be indexed
    by column name (case-insensitively), with `keys`."""

    __slots__ = ("_keys", "_values")

    def __init__(self, cursor: Cursor, values: tuple[Any, ...]) -> None:
        self._keys = tuple(column[0] for column in cursor.description or ())
        self._values = tuple(values)

    def keys(self) -> list[str]:
        return list(self._keys)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            folded = key.casefold()
            for index, name in enumerate(self._keys):
                if name.casefold() == folded:
                    return self._values[index]
            raise IndexError("No item with that key")
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Row):
            return NotImplemented
        return self._keys == other._keys and self._values == other._values

    def __hash__(self) -> int:
        return hash((self._keys, self._values))

    def __repr__(self) -> str:
        return f"<sqlite3.Row {dict(zip(self._keys, self._values))!r}>"
