"""Unit tests of the wasmhost Python SDK (guests/python/wasmhost).

They run on native CPython (``.venv/bin/python -m pytest tests/sdk -q``)
and never need the component bindings (``wit_world``): the SDK keeps the
wasi-http transport (`wasmhost._http`, `wasmhost._entry`) apart from the
logic tested here, and `wasmhost.json` falls back to pure Python.
"""

from __future__ import annotations

import sys
from pathlib import Path

SDK_DIR = Path(__file__).resolve().parents[2] / "guests" / "python"
if str(SDK_DIR) not in sys.path:
    sys.path.insert(0, str(SDK_DIR))
