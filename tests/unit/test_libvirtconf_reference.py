"""virttui's reading of libvirt's config syntax, checked against libvirt itself.

virsh reads the client config file libvirt.conf with the same parser (virconf.c) that the lock
plugins use for qemu-sanlock.conf; an `uri_aliases` entry tells whether the whole file was read.
Each case is run through Debian's virsh as an unprivileged user (root's virsh reads
/etc/libvirt/libvirt.conf instead): libvirt accepts it exactly when virttui does, and where both
refuse, they name the same line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from virttui.locks.libvirtconf import LibvirtConfError, parse_libvirt_conf

ALIAS = 'uri_aliases = [ "probe=test:///default" ]'
CASES = [
    "a = 1\n", "a = 1 # note\n", "a = 1; b = 2\n", "a = 1 ; # c\n", "# only a comment\n", "\n\n", "",
    'a = [ "x", # c\n "y" ]\n', 'a = [\n "x",\n "y",\n]\n', "a = [ ]\n", "a = [ , ]\n", "a = [ 1 2 ]\n",
    "_a = 1\n", "a.b = 1\n", "a-b = 1\n", "; a = 1\n", "a = 1;;\n", "a = 1\r b = 2\r", "a = 1 b = 2\n",
    "a = -0\n", "a = +5\n", "a = -\n", "a = 1e3\n", "a = 0x10\n", "a = 'it''s'\n", 'a = "x\n"\n',
    'a = """multi\nline"""\n', 'a = """"""\n', 'a = ""\n', "a =\n", "= 1\n", "a 1\n", "\ta\t=\t1\t\n",
    "a = [ [ 1, [ 2 ] ], 'x' ]\n", "a = 'x' # c\n\n\n# c\n", "A9_ = 1\n", "a = yes\n", 'a = """x\ny\nz\n',
    'a = """x\ny\n"""\nb = [\n1,\n', "a = 'x\n",
]


def _libvirt_reads(text: str, home: str) -> tuple[bool, int | None]:
    """Whether libvirt's own parser accepts the file, and the line it names when not."""
    with open(os.path.join(home, "libvirt", "libvirt.conf"), "w", encoding="utf-8") as handle:
        handle.write(f"{ALIAS}\n{text}")
    argv = ["virsh", "-c", "probe", "uri"]
    if os.geteuid() == 0:
        argv = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                          env={"PATH": os.environ["PATH"], "HOME": home, "XDG_CONFIG_HOME": home, "LC_ALL": "C"})
    if proc.returncode == 0 and proc.stdout.strip() == "test:///default":
        return True, None
    found = re.search(r"libvirt\.conf:(\d+): ", proc.stderr)
    assert found, f"virsh failed for another reason: {proc.stderr.strip()}"
    return False, int(found.group(1)) - 1  # our file has the alias line first


@pytest.fixture(scope="module")
def config_home():
    assert shutil.which("virsh") and (os.geteuid() != 0 or shutil.which("setpriv")), "needs virsh (and setpriv)"
    home = tempfile.mkdtemp(prefix="virttui-virconf-")
    os.makedirs(os.path.join(home, "libvirt"))
    for path in (home, os.path.join(home, "libvirt")):
        os.chmod(path, 0o777)  # the unprivileged virsh reads (and may cache into) it
    yield home
    shutil.rmtree(home)


@pytest.mark.parametrize("text", CASES)
def test_a_config_file_is_read_as_libvirt_reads_it(config_home, text):
    accepted, line = _libvirt_reads(text, config_home)
    try:
        parse_libvirt_conf(f"{ALIAS}\n{text}", "x.conf")
    except LibvirtConfError as exc:
        ours = int(str(exc).split(":")[1]) - 1
        libvirt = "accepts it" if accepted else f"refuses it at line {line}"
        assert (accepted, line) == (False, ours), f"libvirt {libvirt}, virttui: {exc}"
    else:
        assert accepted, f"libvirt refuses it at line {line}; virttui accepts it"
