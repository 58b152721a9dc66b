"""``hashlib.pbkdf2_hmac`` for a guest whose CPython has none.

componentize-py's CPython is built without OpenSSL, and since Python 3.12
``hashlib.pbkdf2_hmac`` exists only with OpenSSL, so Django's default
password hasher (PBKDF2-SHA256, a million rounds) and everything else that
derives keys fails. `install` (run by the build before the app is
imported) puts in its place one that the host runs natively
(``wasmhost:platform/crypto``): same signature, results and errors, for
``sha1``, ``sha256``, ``sha384`` and ``sha512``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from . import _runtime

_crypto: Any = _runtime.host_module("wit_world.imports.crypto")
_Err: Any = getattr(_runtime.host_module("componentize_py_types"), "Err", None)


def pbkdf2_hmac(hash_name: str, password: Any, salt: Any, iterations: int, dklen: int | None = None) -> bytes:
    """`hashlib.pbkdf2_hmac`: the PBKDF2-HMAC key of `password` and `salt`."""
    if not isinstance(hash_name, str):
        raise TypeError(f"pbkdf2_hmac() argument 'hash_name' must be str, not {type(hash_name).__name__}")
    password, salt = bytes(memoryview(password)), bytes(memoryview(salt))
    if iterations < 1:
        raise ValueError("iteration value must be greater than 0.")
    if dklen is None:
        dklen = hashlib.new(hash_name).digest_size
    if dklen < 1:
        raise ValueError("key length must be greater than 0.")
    if _crypto is None or _Err is None:
        raise ValueError(f"unsupported hash type {hash_name}")
    try:
        return bytes(_crypto.pbkdf2_hmac(hash_name, password, salt, iterations, dklen))
    except _Err as err:
        raise ValueError(err.value) from None


def install() -> None:
    """Give `hashlib` the host's `pbkdf2_hmac` if it has none and the
    component imports ``wasmhost:platform/crypto``."""
    if not hasattr(hashlib, "pbkdf2_hmac") and _crypto is not None:
        hashlib.pbkdf2_hmac = pbkdf2_hmac  # type: ignore[attr-defined]
