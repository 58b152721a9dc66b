"""App configuration: the app's config values and secrets (``[app.config]``
in ``wasmhost.toml``, ``--config-value``, ``--config-secret-env``; read from
the host through ``wasi:config``), then its environment variables
(``--env``, ``os.environ``).

Values are read at the time of the call (never cached at build time), so an
app reads the values of the server that runs it, and a reload that rotates a
secret is seen by the next request. Read them in handlers, not at module
level: while the app is built the host is not there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar, overload

from . import _runtime

_T = TypeVar("_T")


_host: Any = _runtime.host_module("wit_world.imports.wasi_config_store")


def _lookup(name: str) -> str | None:
    """The config value `name` from the host (at run time: host imports
    cannot be called while the app is built), else the environment variable."""
    if _host is not None and _runtime.serving:
        value = _host.get(name)
        if value is not None:
            return value
    return os.environ.get(name)


def _names() -> list[str]:
    serving = _host is not None and _runtime.serving
    names = dict.fromkeys(key for key, _ in _host.get_all()) if serving else {}
    names.update(dict.fromkeys(os.environ))
    return list(names)


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@overload
def env(name: str) -> str | None: ...


@overload
def env(name: str, default: _T) -> str | _T: ...


def env(name: str, default: object = None) -> object:
    """The config value or environment variable `name`, or `default` when
    neither is set."""
    value = _lookup(name)
    return default if value is None else value


class Config(Mapping[str, str]):
    """A live, read-only view of the app's config values, then its
    environment, with typed getters::

        wasmhost.config["DATABASE_URL"]          # KeyError when unset
        wasmhost.config.get("MODE", "prod")
        wasmhost.config.get_int("PAGE_SIZE", 50)
        wasmhost.config.get_bool("DEBUG", False)
    """

    def __getitem__(self, name: str) -> str:
        value = _lookup(name)
        if value is None:
            raise KeyError(name)
        return value

    def __iter__(self) -> Iterator[str]:
        return iter(_names())

    def __len__(self) -> int:
        return len(_names())

    def __repr__(self) -> str:
        # Never the values: some are secrets.
        return f"<wasmhost.config: {len(self)} values>"

    def get_int(self, name: str, default: int | None = None) -> int | None:
        """The variable as an int (`default` when unset; ValueError when it
        is not an integer)."""
        value = _lookup(name)
        if value is None or value.strip() == "":
            return default
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"config {name} is not an integer") from None

    def get_bool(self, name: str, default: bool = False) -> bool:
        """The variable as a bool: 1/true/yes/on or 0/false/no/off (any case)."""
        value = _lookup(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"config {name} is not a boolean (1/true/yes/on or 0/false/no/off)")

    def get_list(self, name: str, default: list[str] | None = None, sep: str = ",") -> list[str]:
        """The variable split on `sep`, items stripped, empty items dropped."""
        value = _lookup(name)
        if value is None:
            return list(default or [])
        return [item.strip() for item in value.split(sep) if item.strip()]


config = Config()
"""The app's config values, then its environment, read live."""
