"""Uses the standard library's sqlite3 the way apps do and prints what it
observed as JSON. tests/test_sqlite3.py runs it natively (CPython's own
sqlite3 on a real file) and under ``wasmhost run`` (the app's file
database on the host) and expects the same output. Usage: check.py PATH"""

import datetime
import decimal
import json
import sqlite3
import sys

seen = {}
con = sqlite3.connect(sys.argv[1], detect_types=sqlite3.PARSE_DECLTYPES | sqlite3.PARSE_COLNAMES)
con.executescript(
    """
    DROP TABLE IF EXISTS t;
    CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, at TIMESTAMP, d DATE, n REAL, b BLOB, p point);
    -- a comment; with a semicolon
    INSERT INTO t (name) VALUES ('semi;colon');
    CREATE TRIGGER t_name AFTER UPDATE ON t BEGIN SELECT 1; SELECT 2; END;
    """
)
seen["script"] = con.execute("SELECT name FROM t").fetchall()
seen["script_in_transaction"] = con.in_transaction

cursor = con.execute(
    "INSERT INTO t (name, at, d, n, b) VALUES (?, ?, ?, ?, ?)",
    ("a", datetime.datetime(2024, 1, 2, 3, 4, 5), datetime.date(2024, 1, 2), 1.5, b"\x00\x01"),
)
seen["insert"] = [cursor.lastrowid, cursor.rowcount, con.in_transaction, cursor.description]
con.commit()
seen["after_commit"] = con.in_transaction

con.row_factory = sqlite3.Row
row = con.execute("SELECT * FROM t WHERE name = :name", {"name": "a"}).fetchone()
seen["row"] = [row.keys(), repr(row["at"]), repr(row["D"]), row["n"], row["b"].hex(), len(row), repr(row[0]), row[1:3]]
seen["row_missing"] = None
try:
    row["nope"]
except IndexError as error:
    seen["row_missing"] = type(error).__name__
con.row_factory = None

cursor = con.executemany("INSERT INTO t (name) VALUES (?)", [("b",), ("c",)])
seen["executemany"] = [cursor.rowcount, con.in_transaction]
cursor = con.executemany("INSERT INTO t (name) VALUES (:n)", [{"n": "d"}])
con.rollback()
seen["after_rollback"] = con.execute("SELECT count(*) FROM t").fetchone()

for label, statement in [("integrity", "INSERT INTO t (name) VALUES ('a')"), ("syntax", "SELEC 1"),
                         ("missing_table", "SELECT * FROM nowhere"), ("null", "INSERT INTO t (name) VALUES (NULL)")]:
    try:
        con.execute(statement)
        seen[label] = "no error"
    except sqlite3.Error as error:
        seen[label] = [type(error).__name__, isinstance(error, con.DatabaseError)]
try:
    con.execute("SELECT ?", (1, 2))
except sqlite3.ProgrammingError as error:
    seen["parameter_count"] = type(error).__name__
con.rollback()

try:
    with con:
        con.execute("INSERT INTO t (name) VALUES ('in-with')")
        raise KeyError("undo")
except KeyError:
    pass
with con:
    con.execute("INSERT INTO t (name) VALUES ('with-ok')")
seen["with"] = con.execute("SELECT name FROM t WHERE name LIKE '%with%'").fetchall()

cursor = con.execute('SELECT at AS "when [timestamp]", n AS "plain" FROM t WHERE name = ?', ("a",))
seen["colnames"] = [[column[0] for column in cursor.description], repr(cursor.fetchone())]

class Point:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def __conform__(self, protocol):
        if protocol is sqlite3.PrepareProtocol:
            return f"{self.x};{self.y}"


sqlite3.register_adapter(decimal.Decimal, str)
sqlite3.register_converter("point", lambda raw: tuple(float(part) for part in raw.split(b";")))
con.execute("UPDATE t SET p = ?, n = ? WHERE name = 'a'", (Point(1, 2), decimal.Decimal("2.50")))
seen["adapted"] = con.execute("SELECT p, n FROM t WHERE name = 'a'").fetchone()
con.commit()

con.isolation_level = None
con.execute("INSERT INTO t (name) VALUES ('autocommit')")
seen["autocommit"] = [con.in_transaction, con.isolation_level]
con.execute("BEGIN")
con.execute("DELETE FROM t WHERE name = 'autocommit'")
seen["explicit_begin"] = con.in_transaction
con.execute("ROLLBACK")
con.isolation_level = ""

con.text_factory = bytes
seen["text_factory"] = repr(con.execute("SELECT name FROM t WHERE id = 1").fetchone())
con.text_factory = str

cursor = con.cursor()
cursor.arraysize = 2
cursor.execute("SELECT id FROM t ORDER BY id")
seen["fetch"] = [cursor.fetchmany(), cursor.fetchone(), [r for r in cursor], cursor.fetchall()]
seen["iterate"] = [name for (name,) in con.execute("SELECT name FROM t ORDER BY id")]
seen["rowcount_select"] = con.execute("SELECT 1").rowcount
seen["update_rowcount"] = con.execute("UPDATE t SET n = 0 WHERE id > 1").rowcount
con.commit()
seen["total_changes_positive"] = con.total_changes > 0
con.close()
try:
    con.execute("SELECT 1")
except sqlite3.ProgrammingError as error:
    seen["closed"] = type(error).__name__

second = sqlite3.connect(sys.argv[1])
seen["reopened"] = second.execute("SELECT count(*) FROM t").fetchone()
memory = sqlite3.connect(":memory:")
memory.execute("CREATE TABLE m (x)")
seen["memory"] = memory.execute("SELECT count(*) FROM m").fetchone()
print(json.dumps(seen, default=repr, sort_keys=True, indent=1))
