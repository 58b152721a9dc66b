"""An app whose directory holds check.py, run by tests/test_sqlite3.py with
``wasmhost run`` (the guest) and with ``python`` (CPython's own sqlite3)."""

import wasmhost

app = wasmhost.App()


@app.get("/")
def index(request):
    return "see check.py"
