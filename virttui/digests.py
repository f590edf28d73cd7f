"""md5, sha1 and sha256 of short strings, without loading OpenSSL at start.

hashlib loads OpenSSL's libcrypto when it is first imported: 2.5-3.5 ms of a start that needs only
short digests (lease file names, the test driver's stable figures). CPython's own implementations
give the same digests; each is loaded at its first use (where a build keeps them as modules of
their own, each is a shared library), and a build configured without them gets hashlib's.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

_LOADED: dict[str, Callable[..., Any]] = {}


def _constructor(name: str, modules: tuple[str, ...]) -> Callable[..., Any]:
    constructor = _LOADED.get(name)
    if constructor is None:
        for module in (*modules, "hashlib"):
            try:
                constructor = getattr(importlib.import_module(module), name)
                break
            except (ImportError, AttributeError):
                continue
        assert constructor is not None  # hashlib always has it
        _LOADED[name] = constructor
    return constructor


def md5(data: bytes = b"") -> Any:
    """hashlib.md5(data)."""
    return _constructor("md5", ("_md5",))(data)


def sha1(data: bytes = b"") -> Any:
    """hashlib.sha1(data)."""
    return _constructor("sha1", ("_sha1",))(data)


def sha256(data: bytes = b"") -> Any:
    """hashlib.sha256(data): _sha256 in Python 3.11, _sha2 from 3.12."""
    return _constructor("sha256", ("_sha256", "_sha2"))(data)
