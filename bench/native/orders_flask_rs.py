"""examples/orders-api in native Flask, validating with `jsonschema-rs`
(the Rust `jsonschema` crate, as the wasmhost host uses, behind a Python
binding; validator built once at import): the best native reference.
Served by bench/platform.sh with `granian --interface wsgi --workers 2
orders_flask_rs:app`; see orders_common.py."""

from itertools import islice

import jsonschema_rs

from orders_common import MAX_ERRORS, load_schema, make_app, pointer

SCHEMA = load_schema()
VALIDATOR = jsonschema_rs.Draft202012Validator(SCHEMA)


def validate(instance):
    # is_valid is the fast path; the errors are only collected for the 422.
    if VALIDATOR.is_valid(instance):
        return []
    return [
        (pointer(error.instance_path), pointer(error.schema_path), error.message)
        for error in islice(VALIDATOR.iter_errors(instance), MAX_ERRORS)
    ]


app = make_app(validate)
