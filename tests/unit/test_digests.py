"""virttui.digests gives hashlib's digests (lease file names depend on them)."""

import hashlib

from virttui import digests
from virttui.locks import agent


def test_the_digests_are_hashlibs():
    for text in (b"", b"/var/lib/libvirt/images/web-01.qcow2", "/img/\udcff".encode("utf-8", "surrogateescape")):
        assert digests.md5(text).hexdigest() == hashlib.md5(text).hexdigest()
        assert digests.sha1(text).digest() == hashlib.sha1(text).digest()
        assert digests.sha256(text).hexdigest() == hashlib.sha256(text).hexdigest()
        assert agent.blake2b(text, digest_size=6).hexdigest() == hashlib.blake2b(text, digest_size=6).hexdigest()
