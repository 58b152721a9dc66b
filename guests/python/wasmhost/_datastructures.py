"""Multi-valued mappings for query strings and headers (pure Python)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar, overload

_T = TypeVar("_T")

HeaderInput = Mapping[str, str] | Iterable[tuple[str, str]] | None
"""What `Headers` accepts: a mapping, ``(name, value)`` pairs, or None."""


class QueryDict(dict[str, list[str]]):
    """A parsed query string: each name maps to the list of its values, in
    order (``parse_qs`` style, blank values kept)::

        request.query["tag"]            # ["a", "b"]   (KeyError when absent)
        request.query.get("page", ["1"])[0]
        request.query.first("page", "1")  # the first value, or a default
    """

    __slots__ = ()

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> QueryDict:
        """Group ``(name, value)`` pairs by name."""
        query = cls()
        for key, value in pairs:
            query.setdefault(key, []).append(value)
        return query

    @overload
    def first(self, name: str) -> str | None: ...

    @overload
    def first(self, name: str, default: _T) -> str | _T: ...

    def first(self, name: str, default: object = None) -> object:
        """The first value of `name`, or `default` when absent."""
        values = dict.get(self, name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        """Every value of `name` (a new list; empty when absent)."""
        return list(dict.get(self, name) or ())


class Headers:
    """HTTP header fields: case-insensitive names, several values per name.

    Order and the original spelling of names are kept. ``h[name]`` and
    ``h.get(name)`` give the first value; ``h.getlist(name)`` all of them.
    Mutating methods (``h[name] = v``, ``add``, ``del h[name]``, ``setdefault``)
    are there for building responses.
    """

    __slots__ = ("_items",)

    def __init__(self, headers: HeaderInput | Headers = None) -> None:
        self._items: list[tuple[str, str]] = []
        if headers is not None:
            self.extend(headers)

    @staticmethod
    def from_pairs(pairs: list[tuple[str, str]]) -> Headers:
        """Headers from already-valid ``(name, value)`` str pairs (as received
        from the host), without checking them again."""
        headers = Headers()
        headers._items = pairs
        return headers

    @staticmethod
    def _pairs(headers: HeaderInput | Headers) -> Iterable[tuple[str, str]]:
        if headers is None:
            return ()
        if isinstance(headers, Headers):
            return list(headers._items)
        if isinstance(headers, Mapping):
            return list(headers.items())
        return list(headers)

    def extend(self, headers: HeaderInput | Headers) -> None:
        """Add every ``(name, value)`` of `headers`."""
        for name, value in self._pairs(headers):
            self.add(name, value)

    def add(self, name: str, value: str | bytes | int) -> None:
        """Add a value for `name`, keeping any existing ones."""
        self._items.append((_check_name(name), _to_str(value)))

    def set(self, name: str, value: str | bytes | int) -> None:
        """Replace every value of `name` by `value`."""
        self.remove(name)
        self.add(name, value)

    __setitem__ = set

    def remove(self, name: str) -> None:
        """Drop every value of `name` (no error when absent)."""
        lower = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != lower]

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self.remove(name)

    def setdefault(self, name: str, value: str) -> str:
        """The first value of `name`, adding `value` first when absent."""
        found = self.get(name)
        if found is None:
            self.add(name, value)
            return value
        return found

    def __getitem__(self, name: str) -> str:
        found = self.get(name)
        if found is None:
            raise KeyError(name)
        return found

    @overload
    def get(self, name: str) -> str | None: ...

    @overload
    def get(self, name: str, default: _T) -> str | _T: ...

    def get(self, name: str, default: object = None) -> object:
        """The first value of `name`, or `default`."""
        lower = name.lower()
        for key, value in self._items:
            if key.lower() == lower:
                return value
        return default

    def getlist(self, name: str) -> list[str]:
        """Every value of `name`, in order."""
        lower = name.lower()
        return [value for key, value in self._items if key.lower() == lower]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        lower = name.lower()
        return any(key.lower() == lower for key, _ in self._items)

    def __iter__(self) -> Iterator[str]:
        """Each distinct name once (lower case), in first-seen order."""
        seen: dict[str, None] = {}
        for key, _ in self._items:
            seen.setdefault(key.lower(), None)
        return iter(seen)

    def keys(self) -> list[str]:
        """The distinct names, lower case."""
        return list(self)

    def items(self) -> list[tuple[str, str]]:
        """Every ``(name, value)`` pair, in order, names as given."""
        return list(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __bool__(self) -> bool:
        return bool(self._items)

    def copy(self) -> Headers:
        """A shallow copy."""
        return Headers(self)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return sorted((k.lower(), v) for k, v in self._items) == sorted(
                (k.lower(), v) for k, v in other._items
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid header name: {name!r}")
    return name


def _to_str(value: str | bytes | int) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (bytes, bytearray)):
        text = bytes(value).decode("latin-1")
    elif isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    else:
        raise TypeError(f"header value must be str, bytes or int, not {type(value).__name__}")
    if "\r" in text or "\n" in text:
        raise ValueError("header values must not contain newlines")
    return text
