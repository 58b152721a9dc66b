"""wasmhost.json: the codec and the pure-Python fallbacks of the host's
text operations (the host itself is not available in these tests)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from wasmhost import json as wjson
from wasmhost.json import JSONError, Schema


def test_fallback_is_in_use() -> None:
    assert wjson.HOST is False


def test_loads_and_dumps() -> None:
    assert wjson.loads(b'{"a": [1, "\xc3\xa9"]}') == {"a": [1, "é"]}
    assert wjson.loads(bytearray(b"[1]")) == [1]
    assert wjson.dumps({"a": "é", "b": [1, 2]}) == '{"a":"é","b":[1,2]}'
    assert wjson.dumps({"b": 1, "a": 2}, sort_keys=True, indent=1) == '{\n "a": 2,\n "b": 1\n}'
    assert wjson.dumpb({"s": {1}}) == b'{"s":[1]}'
    with pytest.raises(TypeError):
        wjson.dumps(object())


# --------------------------------------------------------------------------
# check


@pytest.mark.parametrize(
    "doc",
    [b"{}", b"[]", b"0", b"-1.5e+10", b'"x"', b"true", b"null", b' \n {"a": [1, {"b": null}]} \t', "\"é\"".encode()],
)
def test_check_accepts(doc: bytes) -> None:
    wjson.check(doc)
    assert wjson.is_valid(doc)


@pytest.mark.parametrize(
    ("doc", "line", "column"),
    [
        (b"", 1, 1),
        (b"{", 1, 2),
        (b'{"a": 1,}', 1, 9),
        (b"[1, 2] 3", 1, 8),
        (b"NaN", 0, 0),
        (b"[Infinity]", 0, 0),
        (b"{\n  \"a\": tru\n}", 2, 8),
        (b"'single'", 1, 1),
        (b'"a\x01"', 1, 3),
    ],
)
def test_check_rejects_with_position(doc: bytes, line: int, column: int) -> None:
    with pytest.raises(JSONError) as info:
        wjson.check(doc)
    assert info.value.kind == "syntax"
    assert (info.value.line, info.value.column) == (line, column)
    assert not wjson.is_valid(doc)


def test_check_rejects_invalid_utf8_and_bom() -> None:
    with pytest.raises(JSONError) as info:
        wjson.check(b'["ok", "\xff"]')
    assert (info.value.kind, info.value.line, info.value.column) == ("syntax", 1, 9)
    with pytest.raises(JSONError):
        wjson.check(b"\xef\xbb\xbf{}")


def test_check_depth_limit() -> None:
    wjson.check(b"[" * 128 + b"]" * 128)
    for depth in (129, 5000):
        with pytest.raises(JSONError) as info:
            wjson.check(b"[" * depth + b"]" * depth)
        assert info.value.kind == "too-deep"


def test_check_size_limit(monkeypatch) -> None:
    from wasmhost import _jsonpure

    monkeypatch.setattr(_jsonpure, "MAX_SIZE", 10)
    with pytest.raises(JSONError) as info:
        wjson.check(b"[1,2,3,4,5,6]")
    assert info.value.kind == "too-large"


def test_check_accepts_str_and_rejects_other_types() -> None:
    wjson.check('{"a": "é"}')
    with pytest.raises(TypeError):
        wjson.check({"a": 1})  # type: ignore[arg-type]


# --------------------------------------------------------------------------
# minify


def test_minify_keeps_order_numbers_and_strings() -> None:
    doc = b'{ "b" : [ 1.50 , 2e3, -0 ] ,\n "a" : "x y\\n\\u00e9\\"" , "c": {} }'
    assert wjson.minify(doc) == '{"b":[1.50,2e3,-0],"a":"x y\\né\\"","c":{}}'.encode()


def test_minify_sort_keys_by_code_point() -> None:
    doc = '{"b": 1, "a": {"z": 1, "é": 2, "Z": 3}, "A": null}'
    assert wjson.minify(doc, sort_keys=True) == '{"A":null,"a":{"Z":3,"z":1,"é":2},"b":1}'.encode()


def test_minify_round_trips() -> None:
    doc = {"k": [1, 2.25, "\u2028", None, True, {"n": -3}], "e": "\t"}
    text = json.dumps(doc, indent=4)
    assert json.loads(wjson.minify(text)) == doc


def test_minify_rejects_malformed() -> None:
    with pytest.raises(JSONError):
        wjson.minify(b"{")


# --------------------------------------------------------------------------
# extract


DOC = b"""{
  "customer": {"id": "c-1", "email": "a@b.c"},
  "items": [{"sku": "X", "qty": 2, "price": 1.50}, {"sku": "Y", "qty": 1}],
  "a/b": 1,
  "m~n": 2,
  "": "empty key",
  "~01": 3
}"""


def test_extract() -> None:
    assert wjson.extract(DOC, "/customer/id", "/items/0/price", "/items/1", "/missing") == [
        b'"c-1"',
        b"1.50",
        b'{"sku":"Y","qty":1}',
        None,
    ]


def test_extract_escapes() -> None:
    assert wjson.extract(DOC, "/a~1b", "/m~0n", "/", "/~001") == [b"1", b"2", b'"empty key"', b"3"]


def test_extract_whole_document() -> None:
    (whole,) = wjson.extract(b' [1, 2] ', "")
    assert whole == b"[1,2]"


@pytest.mark.parametrize("pointer", ["/items/2", "/items/-", "/items/01", "/items/+1", "/items/x", "/customer/id/x"])
def test_extract_missing(pointer: str) -> None:
    assert wjson.extract(DOC, pointer) == [None]


@pytest.mark.parametrize("pointer", ["customer", "/a~2b", "/a~"])
def test_extract_bad_pointer(pointer: str) -> None:
    with pytest.raises(JSONError) as info:
        wjson.extract(DOC, pointer)
    assert info.value.kind == "bad-pointer"


def test_extract_values() -> None:
    assert wjson.extract_values(DOC, "/items/0/qty", "/nope", "/customer", default="d") == [
        2,
        "d",
        {"id": "c-1", "email": "a@b.c"},
    ]


def test_extract_malformed_document() -> None:
    with pytest.raises(JSONError) as info:
        wjson.extract(b"[1,", "/0")
    assert info.value.kind == "syntax"


# --------------------------------------------------------------------------
# Schema


def test_schema_text_and_errors() -> None:
    schema = Schema({"type": "object"})
    assert schema.text == b'{"type":"object"}'
    assert Schema('{"type": "array"}').schema == {"type": "array"}
    with pytest.raises(wjson.SchemaError):
        Schema("{nope")
    with pytest.raises(wjson.SchemaError):
        Schema("[1]")
    with pytest.raises(TypeError):
        Schema(3)  # type: ignore[arg-type]


@pytest.mark.skipif(importlib.util.find_spec("jsonschema") is not None, reason="jsonschema installed")
def test_schema_needs_host_or_jsonschema() -> None:
    with pytest.raises(RuntimeError, match="jsonschema"):
        Schema({"type": "object"}).validate(b"{}")


@pytest.mark.skipif(importlib.util.find_spec("jsonschema") is None, reason="jsonschema not installed")
def test_schema_with_jsonschema() -> None:
    schema = Schema(
        {
            "type": "object",
            "required": ["items"],
            "properties": {"items": {"type": "array", "items": {"type": "object", "properties": {"qty": {"minimum": 1}}}}},
        }
    )
    assert schema.validate(b'{"items": []}') == []
    assert schema.is_valid({"items": [{"qty": 2}]})
    errors = schema.validate({"items": [{"qty": 0}]})
    assert [(e.instance_path, e.schema_path) for e in errors] == [
        ("/items/0/qty", "/properties/items/items/properties/qty/minimum")
    ]
    with pytest.raises(wjson.ValidationFailed) as info:
        schema.check('{"x": 1}')
    assert info.value.status == 422
    assert info.value.problem()["errors"][0]["instance_path"] == ""
    with pytest.raises(JSONError):
        schema.validate(b"{")


# --------------------------------------------------------------------------
# The host-backed path, with fake bindings shaped like componentize-py's


class FakeErr(Exception):
    """Like componentize_py_types.Err: the error payload is `.value`."""

    def __init__(self, value):
        super().__init__(value)
        self.value = value


class FakeKind:
    def __init__(self, name: str):
        self.name = name


class FakeError:
    def __init__(self, kind: str, message: str, line: int, column: int):
        self.kind = FakeKind(kind)
        self.message = message
        self.line = line
        self.column = column


class FakeHostJson:
    calls: list = []

    @staticmethod
    def check(document: bytes) -> None:
        FakeHostJson.calls.append(("check", document))
        if document == b"bad":
            raise FakeErr(FakeError("SYNTAX", "expected value", 1, 1))

    @staticmethod
    def minify(document: bytes, sort_keys: bool) -> bytes:
        FakeHostJson.calls.append(("minify", document, sort_keys))
        return b"{}"

    @staticmethod
    def extract(document: bytes, pointers: list) -> list:
        FakeHostJson.calls.append(("extract", document, pointers))
        if pointers == ["x"]:
            raise FakeErr(FakeError("BAD_POINTER", "bad pointer", 0, 0))
        return [b"1", None]


class FakeValidationError:
    def __init__(self, instance_path, schema_path, message):
        self.instance_path = instance_path
        self.schema_path = schema_path
        self.message = message


class FakeCompiled:
    def __init__(self, text: bytes):
        self.text = text

    def validate(self, document: bytes):
        if document == b"{":
            raise FakeErr(FakeError("SYNTAX", "EOF", 1, 2))
        if document == b"{}":
            return []
        return [FakeValidationError("/a", "/required", "a is required")]


class FakeSchemaResource:
    compiled: list = []

    @classmethod
    def compile(cls, text: bytes):
        if text == b'{"type":"nope"}':
            raise FakeErr("unknown type 'nope'")
        cls.compiled.append(text)
        return FakeCompiled(text)


class FakeHostValidation:
    Schema = FakeSchemaResource


@pytest.fixture
def fake_host(monkeypatch):
    from wasmhost import _runtime

    monkeypatch.setattr(_runtime, "serving", False)  # as at build time
    monkeypatch.setattr(wjson, "_host_json", FakeHostJson)
    monkeypatch.setattr(wjson, "_host_validation", FakeHostValidation)
    monkeypatch.setattr(wjson, "_Err", FakeErr)
    FakeHostJson.calls = []
    FakeSchemaResource.compiled = []
    return FakeHostJson


def test_host_path_check_minify_extract(fake_host) -> None:
    wjson.check("é")
    assert fake_host.calls[-1] == ("check", "é".encode())
    with pytest.raises(JSONError) as info:
        wjson.check(b"bad")
    assert (info.value.kind, info.value.line, info.value.column) == ("syntax", 1, 1)
    assert wjson.minify(bytearray(b"{ }"), sort_keys=True) == b"{}"
    assert fake_host.calls[-1] == ("minify", b"{ }", True)
    assert wjson.extract(b"{}", "/a", "/b") == [b"1", None]
    assert fake_host.calls[-1] == ("extract", b"{}", ["/a", "/b"])
    with pytest.raises(JSONError) as info:
        wjson.extract(b"{}", "x")
    assert info.value.kind == "bad-pointer"


def test_host_path_schema(fake_host) -> None:
    schema = Schema({"required": ["a"]})
    assert FakeSchemaResource.compiled == []  # compiled lazily, at first use
    assert schema.validate(b"{}") == []
    errors = schema.validate({"b": 1})
    assert errors == [wjson.ValidationError("/a", "/required", "a is required")]
    assert FakeSchemaResource.compiled == [b'{"required":["a"]}']  # compiled once
    with pytest.raises(wjson.ValidationFailed):
        schema.check(b"[]")
    with pytest.raises(JSONError):
        schema.validate(b"{")
    with pytest.raises(wjson.SchemaError, match="nope"):
        Schema({"type": "nope"}).validate(b"{}")


def test_host_path_schema_compiles_at_once_when_serving(fake_host, monkeypatch) -> None:
    from wasmhost import _runtime

    monkeypatch.setattr(_runtime, "serving", True)
    Schema({"type": "object"})
    assert FakeSchemaResource.compiled == [b'{"type":"object"}']
    with pytest.raises(wjson.SchemaError, match="nope"):
        Schema(b'{"type":"nope"}')
    # Text goes to the host as is: a deep schema is the host's to refuse
    # (the guest's own parser would exhaust its stack).
    deep = '{"items":' * 100_000
    Schema(deep)
    assert FakeSchemaResource.compiled[-1] == deep.encode()
