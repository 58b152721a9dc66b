"""examples/orders-api in native Flask, validating with the `jsonschema`
package (Draft 2020-12, validator built once at import). Served by
bench/platform.sh with `granian --interface wsgi --workers 2
orders_flask:app`; see orders_common.py."""

from itertools import islice

from jsonschema import Draft202012Validator

from orders_common import MAX_ERRORS, load_schema, make_app, pointer

SCHEMA = load_schema()
Draft202012Validator.check_schema(SCHEMA)
VALIDATOR = Draft202012Validator(SCHEMA)


def validate(instance):
    return [
        (pointer(error.absolute_path), pointer(error.absolute_schema_path), error.message)
        for error in islice(VALIDATOR.iter_errors(instance), MAX_ERRORS)
    ]


app = make_app(validate)
