"""JSON for wasmhost apps: the stdlib codec plus the host's native helpers.

* `loads` / `dumps` use the standard library's `json` (its C accelerator
  runs in the guest and is the fastest way to build Python objects).
  `dumps` also encodes `datetime`/`date`/`time` (ISO 8601), `Decimal` and
  `UUID` (as strings), dataclasses and sets.
* `check`, `minify`, `extract` and `Schema` work on JSON *text* without
  building Python objects: under wasmhost they call the host (Rust), which
  is much faster for large documents. `extract` pulls a few values out of
  a big document by JSON Pointer.
* Outside wasmhost (native tests, scripts) `check`/`minify`/`extract` fall
  back to pure-Python implementations with the same rules, and `Schema`
  uses the `jsonschema` package when it is installed; otherwise it raises
  `RuntimeError`. `HOST` tells which is in use.

Documents may be `bytes`, `bytearray`, `memoryview` or `str` (UTF-8
encoded first). Every failure raises `JSONError` with ``kind`` one of
``"syntax"``, ``"too-large"``, ``"too-deep"``, ``"bad-pointer"``.
"""

from __future__ import annotations

import dataclasses
import datetime as _datetime
import decimal as _decimal
import json as _json
import uuid as _uuid
from collections.abc import Callable, Mapping
from typing import Any

from . import _jsonpure, _runtime
from ._errors import UnprocessableEntity




# The host's imports exist only in components built for world `app`.
_host_json: Any = _runtime.host_module("wit_world.imports.json")
_host_validation: Any = _runtime.host_module("wit_world.imports.validation")
_Err: Any = getattr(_runtime.host_module("componentize_py_types"), "Err", None)
if _host_json is None or _host_validation is None or _Err is None:
    _host_json = _host_validation = None

HOST: bool = _host_json is not None
"""True when the host's native JSON functions are used."""

JSONText = bytes | bytearray | memoryview | str

__all__ = [
    "HOST",
    "JSONError",
    "Schema",
    "SchemaError",
    "ValidationError",
    "ValidationFailed",
    "check",
    "dumps",
    "extract",
    "extract_values",
    "is_valid",
    "loads",
    "minify",
]


# --------------------------------------------------------------------------
# Errors


class JSONError(ValueError):
    """A document (or a pointer) was refused.

    `kind` is ``"syntax"``, ``"too-large"``, ``"too-deep"`` or
    ``"bad-pointer"``; `line` and `column` are 1-based, 0 when no position
    applies.
    """

    def __init__(self, kind: str, message: str, line: int = 0, column: int = 0) -> None:
        self.kind = kind
        self.message = message
        self.line = line
        self.column = column
        where = f" at line {line} column {column}" if line else ""
        super().__init__(f"{message}{where}")


class SchemaError(ValueError):
    """The schema itself is invalid."""


@dataclasses.dataclass(frozen=True)
class ValidationError:
    """One way a document fails its schema."""

    instance_path: str
    """JSON Pointer to the failing part of the document, e.g. ``/items/0/qty``."""
    schema_path: str
    """JSON Pointer to the failing keyword in the schema."""
    message: str
    """A human-readable description."""

    def to_dict(self) -> dict[str, str]:
        """The error as a JSON-ready dict (used in 422 problem bodies)."""
        return {
            "instance_path": self.instance_path,
            "schema_path": self.schema_path,
            "message": self.message,
        }


class ValidationFailed(UnprocessableEntity):
    """Raised by `Schema.check`: a 422 HTTP error listing the failures.

    Unhandled in a handler, it answers ``422`` with a problem+json body whose
    ``errors`` member lists them.
    """

    def __init__(self, errors: list[ValidationError]) -> None:
        self.errors = list(errors)
        first = self.errors[0] if self.errors else None
        detail = "the document does not match the schema"
        if first is not None:
            detail = f"{first.instance_path or '/'}: {first.message}"
        super().__init__(detail, errors=[error.to_dict() for error in self.errors])


# --------------------------------------------------------------------------
# Codec


def _default(obj: Any) -> Any:
    if isinstance(obj, (_datetime.datetime, _datetime.date, _datetime.time)):
        return obj.isoformat()
    if isinstance(obj, (_decimal.Decimal, _uuid.UUID)):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (set, frozenset)):
        return list(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def loads(data: JSONText, **kwargs: Any) -> Any:
    """Parse JSON text into Python objects (stdlib `json.loads`)."""
    if isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    return _json.loads(data, **kwargs)


def dumps(
    obj: Any,
    *,
    indent: int | str | None = None,
    sort_keys: bool = False,
    ensure_ascii: bool = False,
    default: Callable[[Any], Any] | None = None,
) -> str:
    """Serialise `obj` to JSON text; compact unless `indent` is given."""
    separators = (",", ": ") if indent is not None else (",", ":")
    return _json.dumps(
        obj,
        indent=indent,
        sort_keys=sort_keys,
        ensure_ascii=ensure_ascii,
        separators=separators,
        default=default or _default,
    )


def dumpb(obj: Any, **kwargs: Any) -> bytes:
    """Like `dumps`, as UTF-8 bytes."""
    return dumps(obj, **kwargs).encode("utf-8")


# --------------------------------------------------------------------------
# Host-backed text operations


def _bytes(data: JSONText) -> bytes:
    if isinstance(data, bytes):
        return data
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass")
    if isinstance(data, (bytearray, memoryview)):
        return bytes(data)
    raise TypeError(f"JSON text must be bytes or str, not {type(data).__name__}")


def _from_host(err: Any) -> JSONError:
    """A `JSONError` from the host's `json.error` record."""
    kind = getattr(err.kind, "name", str(err.kind)).lower().replace("_", "-")
    return JSONError(kind, err.message, err.line, err.column)


def _from_pure(err: _jsonpure.PureJSONError) -> JSONError:
    return JSONError(err.kind, err.message, err.line, err.column)


def check(data: JSONText) -> None:
    """Raise `JSONError` unless `data` is one well-formed JSON value."""
    document = _bytes(data)
    if _host_json is not None:
        try:
            _host_json.check(document)
        except _Err as err:
            raise _from_host(err.value) from None
        return
    try:
        _jsonpure.check(document)
    except _jsonpure.PureJSONError as err:
        raise _from_pure(err) from None


def is_valid(data: JSONText) -> bool:
    """Whether `data` is one well-formed JSON value."""
    try:
        check(data)
    except JSONError:
        return False
    return True


def minify(data: JSONText, sort_keys: bool = False) -> bytes:
    """`data` without insignificant whitespace; with `sort_keys`, object keys
    sorted by code point (a canonical form for hashing and comparing)."""
    document = _bytes(data)
    if _host_json is not None:
        try:
            return bytes(_host_json.minify(document, sort_keys))
        except _Err as err:
            raise _from_host(err.value) from None
    try:
        return _jsonpure.minify(document, sort_keys)
    except _jsonpure.PureJSONError as err:
        raise _from_pure(err) from None


def extract(data: JSONText, *pointers: str) -> list[bytes | None]:
    """For each RFC 6901 JSON Pointer, the minified JSON text of the value
    it selects in `data`, or None when there is no such value.

    ``extract(body, "/customer/id", "/items/0/sku")`` — ``~1`` stands for
    ``/`` and ``~0`` for ``~`` in a key; ``""`` selects the whole document.
    """
    document = _bytes(data)
    for pointer in pointers:
        if not isinstance(pointer, str):
            raise TypeError(f"JSON Pointers must be str, not {type(pointer).__name__}")
    if _host_json is not None:
        try:
            found = _host_json.extract(document, list(pointers))
        except _Err as err:
            raise _from_host(err.value) from None
        return [None if item is None else bytes(item) for item in found]
    try:
        return _jsonpure.extract(document, pointers)
    except _jsonpure.PureJSONError as err:
        raise _from_pure(err) from None


def extract_values(data: JSONText, *pointers: str, default: Any = None) -> list[Any]:
    """Like `extract`, with each value parsed into Python (`default` when
    the document has no such value)."""
    return [default if raw is None else _json.loads(raw) for raw in extract(data, *pointers)]


# --------------------------------------------------------------------------
# Schema validation


class Schema:
    """A JSON Schema (drafts 4 to 2020-12; ``$schema`` picks the draft).

    Create it once, at module level if you like: the host compiles it (and
    caches compiled schemas per app) when it is created at run time, or on
    first use when it was created at build time, when the host cannot be
    called; an invalid schema raises `SchemaError` then::

        ORDER = Schema({"type": "object", "required": ["id"]})

        errors = ORDER.validate(request.body)   # [] when valid
        ORDER.check(request.body)               # raises ValidationFailed (422)

    `validate`, `is_valid` and `check` take JSON text (bytes or str) or a
    Python value (serialised first). Text that is not JSON raises
    `JSONError`. Outside wasmhost this needs the `jsonschema` package.
    """

    def __init__(self, schema: Mapping[str, Any] | bool | bytes | str) -> None:
        self._parsed: dict[str, Any] | bool | None = None
        if isinstance(schema, (bytes, bytearray, memoryview, str)):
            # Parsed only when needed (the `schema` property, the fallback):
            # the host compiles the text itself, with its nesting limits,
            # where a deep document would exhaust the guest's stack.
            text = _bytes(schema)
        elif isinstance(schema, (Mapping, bool)):
            self._parsed = schema if isinstance(schema, bool) else dict(schema)
            text = dumpb(schema)
        else:
            raise TypeError(f"a schema must be a dict, bool or JSON text, not {type(schema).__name__}")
        self.text: bytes = text
        """The schema as JSON text (what the host compiles)."""
        self._compiled: Any = None
        if _host_validation is not None and _runtime.serving:
            self._validator()  # compile now: a bad schema raises SchemaError here
        else:
            self.schema  # noqa: B018 - parse now: bad JSON text raises SchemaError here

    @property
    def schema(self) -> dict[str, Any] | bool:
        """The schema as Python data."""
        if self._parsed is None:
            try:
                parsed = _json.loads(self.text)
            except ValueError as err:
                raise SchemaError(f"schema is not JSON: {err}") from None
            except RecursionError:
                raise SchemaError("schema is nested too deeply") from None
            if not isinstance(parsed, (dict, bool)):
                raise SchemaError("a schema must be a JSON object or boolean")
            self._parsed = parsed
        return self._parsed

    def __repr__(self) -> str:
        return f"Schema({self.text.decode('utf-8', 'replace')[:60]!r})"

    def _validator(self) -> Any:
        if self._compiled is None:
            if _host_validation is not None:
                try:
                    self._compiled = _host_validation.Schema.compile(self.text)
                except _Err as err:
                    raise SchemaError(str(err.value)) from None
            else:
                self._compiled = _PyValidator(self.schema)
        return self._compiled

    def validate(self, data: Any) -> list[ValidationError]:
        """The ways `data` fails the schema: empty when it is valid (the host
        lists at most 100)."""
        document = _bytes(data) if isinstance(data, (bytes, bytearray, memoryview, str)) else dumpb(data)
        validator = self._validator()
        if isinstance(validator, _PyValidator):
            return validator.validate(document)
        try:
            found = validator.validate(document)
        except _Err as err:
            raise _from_host(err.value) from None
        return [ValidationError(e.instance_path, e.schema_path, e.message) for e in found]

    def is_valid(self, data: Any) -> bool:
        """Whether `data` satisfies the schema."""
        return not self.validate(data)

    def check(self, data: Any) -> None:
        """Raise `ValidationFailed` (a 422 `HTTPError`) unless `data`
        satisfies the schema."""
        errors = self.validate(data)
        if errors:
            raise ValidationFailed(errors)


class _PyValidator:
    """`Schema`'s fallback outside wasmhost: the `jsonschema` package."""

    def __init__(self, schema: dict[str, Any] | bool) -> None:
        try:
            import jsonschema  # noqa: PLC0415 - optional dependency
        except ImportError:
            raise RuntimeError(
                "wasmhost.json.Schema validates with the wasmhost host; outside "
                "wasmhost it needs the `jsonschema` package (pip install jsonschema)"
            ) from None
        cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as err:
            raise SchemaError(err.message) from None
        self._validator = cls(schema)

    def validate(self, document: bytes) -> list[ValidationError]:
        try:
            _jsonpure.check(document)
        except _jsonpure.PureJSONError as err:
            raise _from_pure(err) from None
        instance = _json.loads(document)
        errors = []
        for error in self._validator.iter_errors(instance):
            errors.append(
                ValidationError(
                    _pointer(error.absolute_path),
                    _pointer(error.absolute_schema_path),
                    error.message,
                )
            )
            if len(errors) == 100:
                break
        return errors


def _pointer(parts: Any) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in parts)
