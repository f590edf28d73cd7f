"""Lease file names, as libvirt's lock plugins derive them from disk paths."""

from __future__ import annotations

import re

from virttui import digests

_MD5_RE = re.compile(r"[0-9a-f]{32}\Z")
_SHA256_RE = re.compile(r"[0-9a-f]{64}\Z")


def sanlock_lease_name(path: str) -> str:
    """md5 hex of the disk's fully-qualified path (libvirt's virCryptoHashString MD5)."""
    return digests.md5(path.encode("utf-8", "surrogateescape")).hexdigest()


def lockd_lease_name(path: str) -> str:
    """sha256 hex of the path, as virtlockd names its file lockspace entries."""
    return digests.sha256(path.encode("utf-8", "surrogateescape")).hexdigest()


def is_sanlock_lease_name(name: str) -> bool:
    return bool(_MD5_RE.match(name))


def is_lockd_lease_name(name: str) -> bool:
    return bool(_SHA256_RE.match(name))
