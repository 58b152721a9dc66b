"""examples/django-blog's settings for the native reference of
bench/django.sh: the same project on Django's own SQLite backend, with the
settings a careful native deployment would use for concurrent writers (WAL,
IMMEDIATE transactions, as the wasmhost host database has). The file is
$DJANGO_BENCH_DB."""

import os

from mysite.settings import *  # noqa: F403

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ["DJANGO_BENCH_DB"],
        "OPTIONS": {
            "transaction_mode": "IMMEDIATE",
            "timeout": 5,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }
}
