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
"""
