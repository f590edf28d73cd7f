"""md5, sha1 and sha256 of short strings, without loading OpenSSL at start.

hashlib loads OpenSSL's libcrypto when it is first imported: 2.5-3.5 ms of a start that needs only
short digests (lease file names, the test driver's stable figures). CPython's own implementations
give the same digests and load in about 0.3 ms; a build configured without them gets hashlib's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["md5", "sha1", "sha256"]

if TYPE_CHECKING:
    from hashlib import md5, sha1, sha256
else:
    try:
        from _md5 import md5
        from _sha1 import sha1
    except ImportError:  # a CPython built without them
        from hashlib import md5, sha1
    try:
        from _sha256 import sha256  # Python 3.11
    except ImportError:
        try:
            from _sha2 import sha256  # Python 3.12 and later
        except ImportError:  # a CPython built without them
            from hashlib import sha256
