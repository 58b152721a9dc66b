"""Key-value buckets kept by the host (``wasi:keyvalue``): persistent, shared
by every instance of the app, and atomic where it matters::

    import wasmhost

    cache = wasmhost.kv.open("default")      # a bucket the app declared

    @app.get("/hits")
    def hits(request):
        return {"hits": cache.increment("hits")}   # atomic across instances

    cache.set("greeting", "hello")           # str is stored as UTF-8
    cache.get("greeting")                    # b"hello" (bytes, or None)
    cache.get_text("greeting")               # "hello"
    cache["user:1"] = b"..."; del cache["user:1"]; "user:1" in cache
    cache.get_many(["a", "b"]); cache.set_many({"a": b"1"}); cache.delete_many(["a"])
    list(cache.keys(prefix="user:"))

A bucket is declared by the app's server: ``key_value = ["default"]`` in
``wasmhost.toml`` or ``wasmhost serve --key-value default`` (embedded in the
app's SQLite file), or ``"default=redis://host:6379/0"`` (in Redis, shared
by replicas); the app's code is the same either way. Opening any other
name raises `NoSuchBucket`. `open` connects lazily, on first use, so a bucket
can be opened at module level (while the app is built, the host is not
there yet). Limits (key size, value size, the app's key quota) raise
`LimitExceeded`; the request and the instance go on.

Values are bytes; `increment` keeps a counter as its decimal text (``b"42"``),
so `get` and `get_text` read counters too.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any, overload

from . import _runtime

__all__ = ["Bucket", "KeyValueError", "LimitExceeded", "NoSuchBucket", "open"]



# The host's imports exist only in components built for world `app`.
_store: Any = _runtime.host_module("wit_world.imports.wasi_keyvalue_store")
_atomics: Any = _runtime.host_module("wit_world.imports.atomics")
_batch: Any = _runtime.host_module("wit_world.imports.batch")
_Err: Any = getattr(_runtime.host_module("componentize_py_types"), "Err", None)


class KeyValueError(Exception):
    """A key-value operation failed; the message says why."""


class NoSuchBucket(KeyValueError):
    """The app did not declare a bucket of this name."""


class LimitExceeded(KeyValueError):
    """A limit refused the operation: key size (``kv_max_key_size``), value
    size (``kv_max_value_size``) or the app's key quota (``kv_max_keys``)."""


def _error(err: Any, bucket: str) -> KeyValueError:
    """The Python exception for the host's `error` value."""
    kind = type(err).__name__
    if kind == "Error_NoSuchStore":
        return NoSuchBucket(
            f"bucket {bucket!r} is not declared for this app "
            f"(add it to key_value in wasmhost.toml, or pass --key-value {bucket})"
        )
    if kind == "Error_AccessDenied":
        return KeyValueError(f"bucket {bucket!r}: access denied")
    text = str(getattr(err, "value", err))
    if text.startswith("limit: "):
        return LimitExceeded(f"bucket {bucket!r}: {text.removeprefix('limit: ')}")
    return KeyValueError(f"bucket {bucket!r}: {text}")


def _bytes(value: bytes | bytearray | memoryview | str) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"key-value values are bytes or str, not {type(value).__name__}")


def _key(key: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"key-value keys are str, not {type(key).__name__}")
    return key


class Bucket(MutableMapping[str, bytes]):
    """One declared bucket, as returned by `open`. Also a mutable mapping of
    ``str`` keys to ``bytes`` values (``len()`` and iteration list every
    key, so they cost a host call per 1000 keys)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._handle: Any = None

    def __repr__(self) -> str:
        return f"<wasmhost.kv.Bucket {self.name!r}>"

    def _call(self, operation: Any, *args: Any) -> Any:
        if _store is None or _Err is None:
            raise KeyValueError("wasmhost.kv works only in an app served by wasmhost (built with `wasmhost build`)")
        if not _runtime.serving:
            raise KeyValueError(
                f"bucket {self.name!r} used while the app is being built: use buckets in handlers, not at import"
            )
        try:
            if self._handle is None:
                self._handle = _store.open(self.name)
            return operation(self._handle, *args)
        except _Err as err:
            raise _error(err.value, self.name) from None

    # -- single keys -------------------------------------------------------

    @overload
    def get(self, key: str) -> bytes | None: ...

    @overload
    def get(self, key: str, default: bytes) -> bytes: ...

    def get(self, key: str, default: bytes | None = None) -> bytes | None:  # type: ignore[override]
        """The value of `key`, or `default` when it is not set."""
        value = self._call(lambda handle, k: handle.get(k), _key(key))
        return default if value is None else value

    def get_text(self, key: str, default: str | None = None) -> str | None:
        """The value of `key` decoded as UTF-8, or `default` when it is not set."""
        value = self.get(key)
        return default if value is None else value.decode("utf-8")

    def set(self, key: str, value: bytes | bytearray | memoryview | str) -> None:
        """Sets `key` to `value` (a str is stored as UTF-8)."""
        self._call(lambda handle, k, v: handle.set(k, v), _key(key), _bytes(value))

    def delete(self, key: str) -> None:
        """Deletes `key`; deleting a key that is not set is no error."""
        self._call(lambda handle, k: handle.delete(k), _key(key))

    def exists(self, key: str) -> bool:
        """Whether `key` is set."""
        return bool(self._call(lambda handle, k: handle.exists(k), _key(key)))

    def increment(self, key: str, delta: int = 1) -> int:
        """Adds `delta` (>= 0) to the counter at `key` (0 when not set) and
        returns the new value, atomically across instances."""
        if not isinstance(delta, int) or delta < 0:
            raise ValueError(f"increment takes a delta >= 0, got {delta!r}")
        return int(self._call(lambda handle, k, d: _atomics.increment(handle, k, d), _key(key), delta))

    # -- many keys ---------------------------------------------------------

    def keys(self, prefix: str = "") -> Iterator[str]:  # type: ignore[override]
        """Every key (starting with `prefix`): sorted for an embedded bucket,
        in Redis' `SCAN` order for a Redis one."""
        cursor = None
        while True:
            page = self._call(lambda handle, c: handle.list_keys(c), cursor)
            for key in page.keys:
                if key.startswith(prefix):
                    yield key
            cursor = page.cursor
            if cursor is None:
                return

    def get_many(self, keys: Iterable[str]) -> dict[str, bytes]:
        """The values of those `keys` that are set, in one call."""
        wanted = [_key(key) for key in keys]
        found = self._call(lambda handle, ks: _batch.get_many(handle, ks), wanted)
        return {key: value for key, value in (entry for entry in found if entry is not None)}

    def set_many(self, values: Mapping[str, bytes | str] | Iterable[tuple[str, bytes | str]]) -> None:
        """Sets every key to its value, in one transaction (all or nothing)."""
        pairs = values.items() if isinstance(values, Mapping) else values
        entries = [(_key(key), _bytes(value)) for key, value in pairs]
        self._call(lambda handle, es: _batch.set_many(handle, es), entries)

    def delete_many(self, keys: Iterable[str]) -> None:
        """Deletes every key in `keys`, in one transaction."""
        self._call(lambda handle, ks: _batch.delete_many(handle, ks), [_key(key) for key in keys])

    # -- the mapping protocol ----------------------------------------------

    def __getitem__(self, key: str) -> bytes:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str, value: bytes | str) -> None:  # type: ignore[override]
        self.set(key, value)

    def __delitem__(self, key: str) -> None:
        if not self.exists(key):
            raise KeyError(key)
        self.delete(key)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.exists(key)

    def __iter__(self) -> Iterator[str]:
        return self.keys()

    def __len__(self) -> int:
        return sum(1 for _ in self.keys())


_opened: dict[str, Bucket] = {}


def open(name: str = "default") -> Bucket:  # noqa: A001 (the wasi:keyvalue name)
    """The bucket `name` (declared for the app), opened on first use. The
    same name gives the same `Bucket`."""
    if name not in _opened:
        _opened[name] = Bucket(name)
    return _opened[name]
