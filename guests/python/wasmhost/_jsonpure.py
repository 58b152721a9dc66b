"""Pure-Python versions of the host's JSON text operations.

Used by `wasmhost.json` only when the host's ``json`` import is unavailable
(outside wasmhost, e.g. in native unit tests). They follow the host's rules:
one well-formed UTF-8 JSON value (no NaN/Infinity, no BOM), documents up to
64 MiB nested at most 128 levels, RFC 6901 pointers. Numbers keep their
original text in `minify` and `extract` output.
"""

from __future__ import annotations

import json as _json
import re
from collections.abc import Iterable
from typing import Any

MAX_SIZE = 64 * 1024 * 1024
"""Largest document accepted, in bytes (as the host)."""

MAX_DEPTH = 128
"""Deepest nesting of arrays and objects accepted (as the host)."""

_BAD_ESCAPE = re.compile(r"~(?![01])")


class PureJSONError(ValueError):
    """A document or pointer was refused: `kind` is ``syntax``,
    ``too-large``, ``too-deep`` or ``bad-pointer``."""

    def __init__(self, kind: str, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column


class _Number(str):
    """A JSON number, kept as its source text."""

    __slots__ = ()


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _decode(document: bytes) -> str:
    if len(document) > MAX_SIZE:
        raise PureJSONError("too-large", f"document is {len(document)} bytes, over the limit of {MAX_SIZE}")
    try:
        return document.decode("utf-8")
    except UnicodeDecodeError as err:
        before = document[: err.start]
        line = before.count(b"\n") + 1
        column = len(before) - (before.rfind(b"\n") + 1) + 1
        raise PureJSONError("syntax", "invalid UTF-8", line, column) from None


def parse(document: bytes) -> Any:
    """Parse `document`; numbers become their source text (`_Number`)."""
    text = _decode(document)
    if text.startswith("\ufeff"):
        raise PureJSONError("syntax", "unexpected byte order mark", 1, 1)
    try:
        value = _json.loads(
            text,
            parse_int=_Number,
            parse_float=_Number,
            parse_constant=_reject_constant,
        )
    except _json.JSONDecodeError as err:
        raise PureJSONError("syntax", err.msg, err.lineno, err.colno) from None
    except ValueError as err:  # NaN / Infinity
        raise PureJSONError("syntax", str(err), 0, 0) from None
    except RecursionError:
        raise PureJSONError("too-deep", f"nested deeper than {MAX_DEPTH} levels") from None
    if _depth(value) > MAX_DEPTH:
        raise PureJSONError("too-deep", f"nested deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """Nesting depth of arrays and objects (a scalar is 0), iteratively."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        if level > deepest:
            deepest = level
            if deepest > MAX_DEPTH:
                return deepest
        stack.extend((child, level) for child in children)
    return deepest


def check(document: bytes) -> None:
    """Raise `PureJSONError` unless `document` is one well-formed JSON value."""
    parse(document)


def minify(document: bytes, sort_keys: bool = False) -> bytes:
    """`document` without insignificant whitespace (keys sorted by code
    point with `sort_keys`)."""
    return serialize(parse(document), sort_keys)


def serialize(value: Any, sort_keys: bool = False) -> bytes:
    """Minified JSON text of a value produced by `parse`."""
    parts: list[str] = []
    _emit(value, sort_keys, parts)
    try:
        return "".join(parts).encode("utf-8")
    except UnicodeEncodeError:
        raise PureJSONError("syntax", "lone surrogate in string escape") from None


def _emit(value: Any, sort_keys: bool, out: list[str]) -> None:
    if isinstance(value, _Number):
        out.append(str.__str__(value))
    elif isinstance(value, str):
        out.append(_json.dumps(value, ensure_ascii=False))
    elif value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, list):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _emit(item, sort_keys, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        keys = sorted(value) if sort_keys else list(value)
        for index, key in enumerate(keys):
            if index:
                out.append(",")
            out.append(_json.dumps(key, ensure_ascii=False))
            out.append(":")
            _emit(value[key], sort_keys, out)
        out.append("}")
    else:  # pragma: no cover - parse() produces nothing else
        raise TypeError(f"unexpected {type(value).__name__}")


def parse_pointer(pointer: str) -> list[str]:
    """The reference tokens of an RFC 6901 pointer (``~1`` is ``/``, ``~0``
    is ``~``)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PureJSONError("bad-pointer", f"JSON Pointer must be empty or start with '/': {pointer!r}")
    if _BAD_ESCAPE.search(pointer):
        raise PureJSONError("bad-pointer", f"'~' must be followed by '0' or '1' in {pointer!r}")
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


_MISSING = object()


def resolve(value: Any, tokens: list[str]) -> Any:
    """The value `tokens` select in `value`, or `_MISSING`."""
    for token in tokens:
        if isinstance(value, dict):
            if token not in value:
                return _MISSING
            value = value[token]
        elif isinstance(value, list):
            if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
                return _MISSING
            index = int(token)
            if index >= len(value):
                return _MISSING
            value = value[index]
        else:
            return _MISSING
    return value


def extract(document: bytes, pointers: Iterable[str]) -> list[bytes | None]:
    """For each pointer, the minified JSON text it selects, or None."""
    token_lists = [parse_pointer(pointer) for pointer in pointers]
    root = parse(document)
    results: list[bytes | None] = []
    for tokens in token_lists:
        found = resolve(root, tokens)
        results.append(None if found is _MISSING else serialize(found))
    return results
