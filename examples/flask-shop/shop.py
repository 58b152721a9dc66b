"""A small shop written with plain Flask: nothing wasmhost-specific.

Serve it with wasmhost (Flask and its dependencies are bundled into the
component from requirements.txt)::

    wasmhost serve examples/flask-shop/shop.py

or natively, for comparison (from this directory)::

    pip install -r requirements.txt granian
    granian --interface wsgi shop:app

Routes:

* ``GET /``                      the product list, rendered from templates/index.html
* ``GET /static/style.css``      served by Flask from static/
* ``GET /api/products``          every product, as a JSON list
* ``GET /api/products/<id>``     one product, or a JSON 404
* ``POST /api/cart``             ``{"items": [{"id": 1, "qty": 2}]}`` -> priced cart
"""

from decimal import Decimal

from flask import Flask, jsonify, render_template, request

app = Flask(__name__)

PRODUCTS = [
    {"id": 1, "name": "Espresso beans, 1 kg", "price": "24.90", "stock": 12},
    {"id": 2, "name": "Ceramic pour-over dripper", "price": "32.00", "stock": 5},
    {"id": 3, "name": "Paper filters (100)", "price": "6.50", "stock": 40},
    {"id": 4, "name": "Burr grinder", "price": "149.00", "stock": 2},
    {"id": 5, "name": "Milk frothing jug", "price": "18.75", "stock": 0},
]
BY_ID = {product["id"]: product for product in PRODUCTS}


@app.get("/")
def index():
    """The shop's front page."""
    return render_template("index.html", products=PRODUCTS)


@app.get("/api/products")
def list_products():
    """Every product, as a JSON list."""
    return jsonify(PRODUCTS)


@app.get("/api/products/<int:product_id>")
def get_product(product_id: int):
    """One product, or a 404 as JSON."""
    product = BY_ID.get(product_id)
    if product is None:
        return jsonify(error="not found", id=product_id), 404
    return jsonify(product)


@app.post("/api/cart")
def price_cart():
    """Price a cart: ``{"items": [{"id": 1, "qty": 2}, ...]}``."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict) or not isinstance(payload.get("items"), list):
        return jsonify(error='expected {"items": [{"id": ..., "qty": ...}]}'), 400
    lines = []
    total = Decimal("0")
    for item in payload["items"]:
        if not isinstance(item, dict):
            return jsonify(error="each item must be an object"), 400
        product = BY_ID.get(item.get("id"))
        qty = item.get("qty", 1)
        if product is None:
            return jsonify(error=f"unknown product {item.get('id')!r}"), 404
        if not isinstance(qty, int) or isinstance(qty, bool) or qty < 1:
            return jsonify(error="qty must be a positive integer"), 400
        subtotal = Decimal(product["price"]) * qty
        total += subtotal
        lines.append({"id": product["id"], "name": product["name"], "qty": qty, "subtotal": str(subtotal)})
    return jsonify(items=lines, total=str(total), currency="EUR")
