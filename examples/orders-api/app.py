"""An orders API: schema-validated JSON in, computed JSON out.

Serve it (from the repository root)::

    wasmhost serve examples/orders-api/app.py

and try::

    curl -i -X POST http://127.0.0.1:8080/orders \\
         -H 'content-type: application/json' --data @examples/orders-api/order.json
    curl -i http://127.0.0.1:8080/orders/1
    curl -i http://127.0.0.1:8080/healthz

``POST /orders`` declares `ORDER_SCHEMA`: the host (Rust) validates the
body before Python runs, answering 400 for malformed JSON and 422 (with
the failures listed) for a body that does not match. The handler only
sees valid orders.

Orders live in the instance's memory: with several instances (or after a
reload) a GET may not find an order created through another instance. A
real app keeps them elsewhere.
"""

from decimal import Decimal

import wasmhost

app = wasmhost.App()

CURRENCIES = ["EUR", "USD", "GBP", "CHF", "JPY"]

ORDER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["customer", "items", "currency"],
    "additionalProperties": False,
    "properties": {
        "customer": {
            "type": "object",
            "required": ["id", "email"],
            "additionalProperties": False,
            "properties": {
                "id": {"type": "string", "minLength": 1, "maxLength": 64},
                "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+$"},
            },
        },
        "items": {
            "type": "array",
            "minItems": 1,
            "maxItems": 100,
            "items": {
                "type": "object",
                "required": ["sku", "qty", "price"],
                "additionalProperties": False,
                "properties": {
                    "sku": {"type": "string", "minLength": 1},
                    "qty": {"type": "integer", "minimum": 1},
                    "price": {"type": "number", "minimum": 0},
                },
            },
        },
        "currency": {"enum": CURRENCIES},
        "note": {"type": "string", "maxLength": 500},
    },
}

_orders: dict[str, dict] = {}
_next_id = 1


@app.get("/healthz")
def healthz(request: wasmhost.Request) -> dict:
    """Liveness: always ok."""
    return {"status": "ok"}


@app.post("/orders", schema=ORDER_SCHEMA)
def create_order(request: wasmhost.Request):
    """Store a (host-validated) order and answer 201 with its total."""
    global _next_id
    order = request.json()
    total = sum(
        (Decimal(str(item["price"])) * item["qty"] for item in order["items"]),
        Decimal("0"),
    )
    order_id = str(_next_id)
    _next_id += 1
    stored = {
        "id": order_id,
        "customer": order["customer"]["id"],
        "currency": order["currency"],
        "lines": len(order["items"]),
        "units": sum(item["qty"] for item in order["items"]),
        "total": float(total.quantize(Decimal("0.01"))),
    }
    _orders[order_id] = stored
    return stored, 201, {"location": f"/orders/{order_id}"}


@app.get("/orders/{order_id}")
def get_order(request: wasmhost.Request, order_id: str) -> dict:
    """One stored order, or 404."""
    order = _orders.get(order_id)
    if order is None:
        raise wasmhost.NotFound(f"no order {order_id}")
    return order


@app.post("/orders/summary", schema=ORDER_SCHEMA)
def summarize(request: wasmhost.Request) -> dict:
    """Pick a few fields out of an order without parsing all of it in
    Python: the host extracts them by JSON Pointer."""
    customer, currency, first_sku = wasmhost.json.extract_values(
        request.body, "/customer/id", "/currency", "/items/0/sku"
    )
    return {"customer": customer, "currency": currency, "first_sku": first_sku}
