"""`wasmhost.db` on native CPython: what does not need the host (PEP 249
module attributes, the exception hierarchy, parameter checks, transaction
keywords, and a clear error outside a component)."""

from __future__ import annotations

import pytest

from wasmhost import db


def test_pep_249_module_attributes_and_exception_hierarchy():
    assert (db.apilevel, db.threadsafety, db.paramstyle) == ("2.0", 1, "qmark")
    for cls in (db.InterfaceError, db.DatabaseError):
        assert issubclass(cls, db.Error)
    for cls in (db.DataError, db.OperationalError, db.IntegrityError, db.InternalError, db.ProgrammingError,
                db.NotSupportedError):
        assert issubclass(cls, db.DatabaseError)
    assert issubclass(db.NoSuchDatabase, db.OperationalError)
    assert db.NUMBER == "INTEGER" and db.NUMBER == "REAL" and db.STRING != "BLOB"
    assert db.Binary(b"x") == b"x" and db.Date(2026, 12, 2).isoformat() == "2026-12-02"


def test_parameters_are_checked_before_the_host_is_called():
    with pytest.raises(db.NotSupportedError):
        db._params({"name": 1})
    with pytest.raises(db.ProgrammingError):
        db._params("abc")
    with pytest.raises(db.DataError):
        db._params([2**63])
    assert db._params(None) == [] and db._params(()) == []


@pytest.mark.parametrize(
    "statement, words",
    [
        ("insert into t values (1)", "INSERT INTO"),
        ("  -- a comment\n  UPDATE t SET x = 1", "UPDATE T"),
        ("/* c */ begin;", "BEGIN"),
        ("BEGIN   IMMEDIATE TRANSACTION", "BEGIN IMMEDIATE"),
        ("", ""),
    ],
)
def test_leading_keywords_decide_transactions(statement, words):
    assert db._first_words(statement) == words


def test_outside_a_component_the_error_says_so():
    connection = db.connect("default")
    with pytest.raises(db.InterfaceError, match="only in an app served by wasmhost"):
        connection.execute("SELECT 1")
    connection.close()
    with pytest.raises(db.InterfaceError, match="closed"):
        connection.cursor()
    with pytest.raises(db.InterfaceError):
        db.connect(42)  # type: ignore[arg-type]
