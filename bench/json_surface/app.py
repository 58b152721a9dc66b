"""JSON costs measured inside the guest: the stdlib `json` module against the
host's native helpers (`wasmhost.json.check`, `minify`, `extract`,
`Schema.validate`), each against the guest-side way of getting the same
answer without the host.

Every operation runs `reps` times on the same document; the figure is the
median of `time.perf_counter_ns()` around one call. Documents are built at
import time (so at build time, in componentize-py's snapshot) from fixed
formulas: the same bytes in every build and every run.

    GET /                      every size, default repetitions
    GET /?size=10KB&reps=51    one size (400B, 10KB, 1MB)

The answer is JSON: {"sizes": [{"size", "bytes", "reps", "rows": [
{"op", "host_us", "guest_us", "ratio", "same"}]}]}. `ratio` is guest/host
(above 1: the host is faster); `same` says whether both ways gave the same
answer. Served by bench/json_surface.sh.
"""

import json
import re
import time
from urllib.parse import parse_qs

import wasmhost
from wasmhost import json as hjson

app = wasmhost.App()

CURRENCIES = ["EUR", "USD", "GBP", "CHF", "JPY"]


def make_document(items: int) -> dict:
    """An order-like document with `items` line items."""
    return {
        "id": "ord-%08d" % items,
        "customer": {"id": "cus-%06d" % (items * 7 % 1000003), "email": "buyer%d@example.com" % items,
                     "name": "Buyer Number %d" % items, "vip": items % 2 == 0},
        "currency": CURRENCIES[items % len(CURRENCIES)],
        "items": [
            {"sku": "SKU-%05d" % (i * 37 % 100000), "qty": 1 + i % 5, "price": round(1 + (i * 7919 % 10000) / 100, 2),
             "tags": ["t%d" % (i % 3), "t%d" % (i % 7)], "gift": i % 11 == 0}
            for i in range(items)
        ],
        "note": "Leave at the front desk; call if nobody answers.",
        "created": "2026-11-27T12:00:00Z",
    }


def text_of(doc: dict) -> bytes:
    # The stdlib's default separators (", " and ": "): JSON as a client that
    # does not bother to minify sends it, so `minify` has work to do.
    return json.dumps(doc).encode()


def sized(target: int) -> tuple[dict, bytes]:
    """The smallest document of the family whose text reaches `target` bytes."""
    items = 1
    while len(text_of(make_document(items))) < target:
        items = max(items + 1, int(items * target / len(text_of(make_document(items)))))
    doc = make_document(items)
    return doc, text_of(doc)


# The schema the documents satisfy (the orders-api shape, widened for these
# extra fields), and a hand-written guest-side check of exactly its rules.
SCHEMA_DICT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id", "customer", "currency", "items"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "customer": {
            "type": "object",
            "required": ["id", "email"],
            "properties": {
                "id": {"type": "string", "minLength": 1},
                "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+$"},
                "name": {"type": "string"},
                "vip": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "currency": {"enum": CURRENCIES},
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["sku", "qty", "price"],
                "properties": {
                    "sku": {"type": "string", "pattern": "^SKU-[0-9]{5}$"},
                    "qty": {"type": "integer", "minimum": 1},
                    "price": {"type": "number", "minimum": 0},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "gift": {"type": "boolean"},
                },
                "additionalProperties": False,
            },
        },
        "note": {"type": "string", "maxLength": 500},
        "created": {"type": "string"},
    },
}
SCHEMA = hjson.Schema(SCHEMA_DICT)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_SKU = re.compile(r"^SKU-[0-9]{5}$")
_TOP = {"id", "customer", "currency", "items", "note", "created"}
_CUSTOMER = {"id", "email", "name", "vip"}
_ITEM = {"sku", "qty", "price", "tags", "gift"}


def _is_int(v) -> bool:
    return (type(v) is int) or (type(v) is float and v.is_integer())


def _is_num(v) -> bool:
    return type(v) in (int, float)


def guest_validate(doc) -> list:
    """SCHEMA_DICT's rules in plain Python: the failures' instance paths."""
    errors = []
    if type(doc) is not dict:
        return [""]
    for key in ("id", "customer", "currency", "items"):
        if key not in doc:
            errors.append("")
    for key in doc:
        if key not in _TOP:
            errors.append("")
    v = doc.get("id")
    if v is not None and not (type(v) is str and len(v) >= 1):
        errors.append("/id")
    c = doc.get("customer")
    if c is not None:
        if type(c) is not dict:
            errors.append("/customer")
        else:
            if "id" not in c or "email" not in c:
                errors.append("/customer")
            for key in c:
                if key not in _CUSTOMER:
                    errors.append("/customer")
            if "id" in c and not (type(c["id"]) is str and len(c["id"]) >= 1):
                errors.append("/customer/id")
            if "email" in c and not (type(c["email"]) is str and _EMAIL.search(c["email"])):
                errors.append("/customer/email")
            if "name" in c and type(c["name"]) is not str:
                errors.append("/customer/name")
            if "vip" in c and type(c["vip"]) is not bool:
                errors.append("/customer/vip")
    if "currency" in doc and doc["currency"] not in CURRENCIES:
        errors.append("/currency")
    items = doc.get("items")
    if items is not None:
        if type(items) is not list or not items:
            errors.append("/items")
        else:
            for i, item in enumerate(items):
                path = "/items/%d" % i
                if type(item) is not dict:
                    errors.append(path)
                    continue
                if "sku" not in item or "qty" not in item or "price" not in item:
                    errors.append(path)
                for key in item:
                    if key not in _ITEM:
                        errors.append(path)
                if "sku" in item and not (type(item["sku"]) is str and _SKU.search(item["sku"])):
                    errors.append(path + "/sku")
                q = item.get("qty")
                if q is not None and not (_is_int(q) and type(q) is not bool and q >= 1):
                    errors.append(path + "/qty")
                p = item.get("price")
                if p is not None and not (_is_num(p) and p >= 0):
                    errors.append(path + "/price")
                t = item.get("tags")
                if t is not None and not (type(t) is list and all(type(x) is str for x in t)):
                    errors.append(path + "/tags")
                if "gift" in item and type(item["gift"]) is not bool:
                    errors.append(path + "/gift")
    if "note" in doc and not (type(doc["note"]) is str and len(doc["note"]) <= 500):
        errors.append("/note")
    if "created" in doc and type(doc["created"]) is not str:
        errors.append("/created")
    return errors


def _get(doc, pointer: str):
    """RFC 6901 lookup on Python data (None when absent)."""
    node = doc
    for raw in pointer.split("/")[1:]:
        key = raw.replace("~1", "/").replace("~0", "~")
        if type(node) is dict:
            if key not in node:
                return None
            node = node[key]
        elif type(node) is list:
            if not key.isdigit() or int(key) >= len(node):
                return None
            node = node[int(key)]
        else:
            return None
    return node


SIZES = {}
for _label, _target in (("400B", 400), ("10KB", 10 * 1024), ("1MB", 1024 * 1024)):
    _doc, _text = sized(_target)
    SIZES[_label] = {
        "doc": _doc,
        "text": _text,
        # Two values a handler might route or authorise on: one near the
        # start, one at the very end of the document.
        "pointers": ("/customer/email", "/items/%d/sku" % (len(_doc["items"]) - 1)),
    }
DEFAULT_REPS = {"400B": 301, "10KB": 101, "1MB": 11}
del _label, _target, _doc, _text


def median_ns(fn, reps: int) -> int:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(reps):
        start = clock()
        fn()
        samples.append(clock() - start)
    samples.sort()
    return samples[len(samples) // 2]


def measure(label: str, reps: int) -> dict:
    case = SIZES[label]
    doc, text, pointers = case["doc"], case["text"], case["pointers"]
    compact = lambda: json.dumps(json.loads(text), separators=(",", ":")).encode()  # noqa: E731
    guest_extract = lambda: [_get(json.loads(text), p) for p in pointers]  # noqa: E731
    guest_validate_text = lambda: guest_validate(json.loads(text))  # noqa: E731

    rows = []

    def row(op, host, guest, same=None):
        host_ns = median_ns(host, reps) if host is not None else None
        guest_ns = median_ns(guest, reps) if guest is not None else None
        rows.append({
            "op": op,
            "host_us": None if host_ns is None else round(host_ns / 1000, 1),
            "guest_us": None if guest_ns is None else round(guest_ns / 1000, 1),
            "ratio": round(guest_ns / host_ns, 2) if host_ns and guest_ns else None,
            "same": same,
        })

    # Stdlib only (the baseline every other row is built from).
    row("json.loads (stdlib)", None, lambda: json.loads(text))
    row("json.dumps (stdlib)", None, lambda: json.dumps(doc))
    # check: is it JSON at all? Guest way: parse it.
    hjson.check(text)
    row("check vs json.loads", lambda: hjson.check(text), lambda: json.loads(text), True)
    # minify: the compact text. Guest way: parse and re-serialise.
    row("minify vs loads+dumps(compact)", lambda: hjson.minify(text), compact, hjson.minify(text) == compact())
    # extract: two values. Guest way: parse, then look them up.
    host_values = [json.loads(v) for v in hjson.extract(text, *pointers)]
    row("extract 2 pointers vs loads+lookup", lambda: hjson.extract(text, *pointers), guest_extract,
        host_values == guest_extract())
    # validate: the whole schema. Guest way: parse, then hand-written checks.
    host_errors = SCHEMA.validate(text)
    row("Schema.validate(text) vs loads+Python checks", lambda: SCHEMA.validate(text), guest_validate_text,
        host_errors == [] and guest_validate_text() == [])
    # The same with a Python object as input (the SDK serialises it first).
    row("Schema.validate(dict) vs Python checks", lambda: SCHEMA.validate(doc), lambda: guest_validate(doc),
        SCHEMA.validate(doc) == [] and guest_validate(doc) == [])
    return {"size": label, "bytes": len(text), "items": len(doc["items"]), "reps": reps, "rows": rows}


@app.get("/")
def index(request):
    query = parse_qs(request.query_string)
    sizes = query.get("size") or list(SIZES)
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        raise wasmhost.BadRequest("unknown size %s; known: %s" % (", ".join(unknown), ", ".join(SIZES)))
    reps = (query.get("reps") or [None])[-1]
    if reps is not None and not (reps.isdigit() and 1 <= int(reps) <= 10001):
        raise wasmhost.BadRequest("reps must be an integer in 1..10001")
    return {
        "host": hjson.HOST,
        "sizes": [measure(s, int(reps) if reps else DEFAULT_REPS[s]) for s in sizes],
    }
