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


def test_a_build_without_cpythons_own_gets_hashlibs(monkeypatch):
    import importlib

    real_import = importlib.import_module

    def without_builtin_digests(name: str, *args: object) -> object:
        if name in ("_md5", "_sha1", "_sha256", "_sha2"):
            raise ImportError(name)
        return real_import(name, *args)

    monkeypatch.setattr(digests, "_LOADED", {})
    monkeypatch.setattr(importlib, "import_module", without_builtin_digests)
    assert digests.md5(b"x").hexdigest() == hashlib.md5(b"x").hexdigest()
    assert digests._LOADED["md5"] is hashlib.md5  # noqa: SLF001
    assert digests.sha256(b"x").hexdigest() == hashlib.sha256(b"x").hexdigest()
