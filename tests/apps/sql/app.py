"""Test app for SQL databases (`wasmhost.db`, SDK app): DB-API calls over
HTTP, with the database named in the path, so tests can try any name.

- `POST /sql/{db}`: runs the JSON body `{"sql": ..., "params": [...],
  "many": [[...], ...], "autocommit": false, "database": name}` on a new
  connection to `db` (or to `database`, a name that is not a path), commits,
  and answers `{"rows", "rowcount", "lastrowid", "columns"}`.
- `POST /notes` (body: the text), `GET /notes`: a table of notes in `default`.
- `POST /counter`: a read-modify-write in one transaction; answers the new value.
- `POST /open-transaction`: inserts a note in a transaction and returns
  without committing; `?then=raise` raises instead, `?then=loop` loops
  until the request times out.
- `GET /pid`: an id of this instance.

Failures answer `{"error": class name, "message": ...}`: 404 for
NoSuchDatabase, 409 for IntegrityError, 400 for other wasmhost.db errors.
"""

import json
import secrets

import wasmhost

app = wasmhost.App()
db = wasmhost.db.connect("default")  # module level: opened on first use
_instance: list[str] = []

SCHEMA = [
    "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL, instance TEXT)",
    "CREATE TABLE IF NOT EXISTS counter (id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL)",
    "INSERT OR IGNORE INTO counter (id, n) VALUES (1, 0)",
]


def instance() -> str:
    if not _instance:
        _instance.append(secrets.token_hex(8))
    return _instance[0]


def answer(value, status: int = 200) -> wasmhost.Response:
    return wasmhost.Response(json.dumps(value), status, content_type="application/json")


def guarded(handler):
    def run(request, **params):
        try:
            return handler(request, **params)
        except wasmhost.db.Error as err:
            status = 404 if isinstance(err, wasmhost.db.NoSuchDatabase) else 409 if isinstance(err, wasmhost.db.IntegrityError) else 400
            return answer({"error": type(err).__name__, "message": str(err)}, status)

    run.__name__ = handler.__name__
    return run


def setup() -> None:
    with db:
        for statement in SCHEMA:
            db.execute(statement)


def encode(value):
    return {"blob": value.hex()} if isinstance(value, bytes) else value


@app.post("/sql/{name}")
@guarded
def run_sql(request, name):
    spec = request.json()
    connection = wasmhost.db.connect(spec.get("database", name), autocommit=spec.get("autocommit", False))
    try:
        with connection:
            if "many" in spec:
                cursor = connection.executemany(spec["sql"], spec["many"])
            else:
                cursor = connection.execute(spec["sql"], spec.get("params", []))
            rows = [[encode(value) for value in row] for row in cursor.fetchall()]
            columns = [column[0] for column in cursor.description or ()]
            return answer({"rows": rows, "rowcount": cursor.rowcount, "lastrowid": cursor.lastrowid, "columns": columns})
    finally:
        connection.close()


@app.post("/notes")
@guarded
def add_note(request):
    setup()
    with db:
        cursor = db.execute("INSERT INTO notes (text, instance) VALUES (?, ?)", (request.text, instance()))
    return answer({"id": cursor.lastrowid, "instance": instance()}, 201)


@app.get("/notes")
@guarded
def notes(request):
    setup()
    rows = db.execute("SELECT id, text FROM notes ORDER BY id").fetchall()
    return answer({"count": len(rows), "texts": [text for _, text in rows]})


@app.post("/counter")
@guarded
def counter(request):
    setup()
    with db:
        db.begin()
        (n,) = db.execute("SELECT n FROM counter WHERE id = 1").fetchone()
        db.execute("UPDATE counter SET n = ? WHERE id = 1", (n + 1,))
    return answer({"n": n + 1})


@app.post("/open-transaction")
@guarded
def open_transaction(request):
    setup()
    db.execute("INSERT INTO notes (text, instance) VALUES (?, ?)", ("uncommitted", instance()))
    assert db.in_transaction
    then = request.query.first("then", "")
    if then == "raise":
        raise RuntimeError("failed mid-transaction")
    if then == "loop":
        while True:
            pass
    return answer({"in_transaction": db.in_transaction})


@app.get("/pid")
def pid(request):
    return answer({"instance": instance()})
