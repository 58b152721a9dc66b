"""App configuration from environment variables (``wasmhost serve --env``).

Values are read from `os.environ` at the time of the call (never cached at
build time), so an app reads the variables of the server that runs it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import TypeVar, overload

_T = TypeVar("_T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@overload
def env(name: str) -> str | None: ...


@overload
def env(name: str, default: _T) -> str | _T: ...


def env(name: str, default: object = None) -> object:
    """The environment variable `name`, or `default` when it is not set."""
    return os.environ.get(name, default)


class Config(Mapping[str, str]):
    """A live, read-only view of the environment with typed getters::

        wasmhost.config["DATABASE_URL"]          # KeyError when unset
        wasmhost.config.get("MODE", "prod")
        wasmhost.config.get_int("PAGE_SIZE", 50)
        wasmhost.config.get_bool("DEBUG", False)
    """

    def __getitem__(self, name: str) -> str:
        return os.environ[name]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(os.environ))

    def __len__(self) -> int:
        return len(os.environ)

    def __repr__(self) -> str:
        return f"<wasmhost.config: {len(self)} variables>"

    def get_int(self, name: str, default: int | None = None) -> int | None:
        """The variable as an int (`default` when unset; ValueError when it
        is not an integer)."""
        value = os.environ.get(name)
        if value is None or value.strip() == "":
            return default
        try:
            return int(value.strip())
        except ValueError:
            raise ValueError(f"environment variable {name}={value!r} is not an integer") from None

    def get_bool(self, name: str, default: bool = False) -> bool:
        """The variable as a bool: 1/true/yes/on or 0/false/no/off (any case)."""
        value = os.environ.get(name)
        if value is None:
            return default
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"environment variable {name}={value!r} is not a boolean")

    def get_list(self, name: str, default: list[str] | None = None, sep: str = ",") -> list[str]:
        """The variable split on `sep`, items stripped, empty items dropped."""
        value = os.environ.get(name)
        if value is None:
            return list(default or [])
        return [item.strip() for item in value.split(sep) if item.strip()]


config = Config()
"""The process environment, read live."""
