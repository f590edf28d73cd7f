"""Node XML parsing: the bundled demo, libvirt's format details, bad files."""

import shutil
import subprocess

import pytest
from support.paths import ASSETS

from virttui.drivers.errors import ConnectionFailed, ParseError
from virttui.drivers.model import DomainState
from virttui.drivers.nodexml import load_node, parse_node

NODE = b"""<node xmlns:test="http://libvirt.org/schemas/domain/test/1.0">
  <cpu><mhz>6000</mhz><model>i686</model><nodes>2</nodes><sockets>2</sockets><cores>2</cores><threads>2</threads></cpu>
  <memory>8192000</memory>
  <domain type="test">
    <name>alpha</name>
    <uuid>4dea22b3-1d52-d8f3-2516-782e98ab3fa0</uuid>
    <memory unit="GiB">2</memory>
    <currentMemory unit="MiB">1024</currentMemory>
    <vcpu current="2">4</vcpu>
    <os><type>hvm</type></os>
    <devices>
      <disk type="file" device="disk"><driver name="qemu" type="qcow2"/>
        <source file="/img/alpha.qcow2"/><target dev="vda" bus="virtio"/></disk>
      <disk type="file" device="cdrom"><source file="/img/x.iso"/><target dev="sda" bus="sata"/><readonly/></disk>
      <disk type="block" device="disk"><source dev="/dev/sdb"/><target dev="vdb" bus="virtio"/><shareable/></disk>
    </devices>
    <test:runstate>3</test:runstate>
  </domain>
  <domain type="test"><name>beta</name><memory>1024</memory><os><type>hvm</type></os></domain>
  <pool type="dir"><name>p</name><target><path>/img</path></target>
    <volume><name>alpha.qcow2</name><capacity unit="GiB">10</capacity><allocation unit="MiB">512</allocation></volume>
  </pool>
</node>"""


def test_parses_cpus_memory_domains_disks_and_runstate():
    node = parse_node(NODE, "/x/node.xml")
    assert node.cpus == 16 and node.memory_kib == 8192000
    alpha, beta = node.domains
    assert alpha.state is DomainState.PAUSED
    assert beta.state is DomainState.RUNNING  # libvirt's test driver starts domains without a runstate
    d = alpha.definition
    assert (d.vcpus, d.memory_kib, d.max_memory_kib) == (2, 1024 * 1024, 2 * 1024 * 1024)
    vda, vdb, sda = d.disks  # libvirt's order: the virtio bus first (as it first comes), by index; then sata
    assert (vda.source, vda.format, vda.capacity, vda.allocation) == ("/img/alpha.qcow2", "qcow2", 10 * 1024**3,
                                                                      512 * 1024**2)
    assert vda.needs_exclusive_lease
    assert sda.readonly and sda.device == "cdrom" and not sda.needs_exclusive_lease
    assert vdb.shareable and vdb.source == "/dev/sdb" and not vdb.needs_exclusive_lease
    assert "runstate" not in alpha.xml  # the test namespace is not part of the domain's XML


def test_missing_uuid_is_stable():
    first = parse_node(NODE, "/x/node.xml").domains[1].definition.uuid
    again = parse_node(NODE, "/x/node.xml").domains[1].definition.uuid
    assert first == again


@pytest.mark.parametrize("data, needle", [
    (b"<node><domain>", "malformed XML"),
    (b"<nodes/>", "not a libvirt test node"),
    (b"<node><domain type='test'><memory>1</memory></domain></node>", "no <name>"),
    (b"<node><domain type='test'><name>a</name><uuid>zz</uuid></domain></node>", "malformed uuid"),
    (b"<node><domain type='test'><name>a</name><memory>lots</memory></domain></node>", "not an integer"),
    (b"<node><domain type='test'><name>a</name></domain><domain type='test'><name>a</name></domain></node>",
     "defined twice"),
])
def test_malformed_node_files_raise_parse_errors(data, needle):
    with pytest.raises(ParseError, match=needle):
        parse_node(data, "/x/node.xml")


def test_external_entities_are_not_resolved(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("TOPSECRET")
    data = (f'<!DOCTYPE node [<!ENTITY x SYSTEM "file://{secret}">]>'
            '<node><domain type="test"><name>a&x;</name></domain></node>').encode()
    try:
        node = parse_node(data, "/x/node.xml")
    except ParseError:
        return  # refusing is fine too
    assert "TOPSECRET" not in node.domains[0].definition.name


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(ConnectionFailed, match="nope.xml"):
        load_node(str(tmp_path / "nope.xml"))


@pytest.mark.parametrize("host", ["hv1", "hv2", "hv3"])
def test_demo_nodes_load_in_libvirts_own_virsh_with_the_same_domains(host):
    """The demo files are genuine libvirt test-driver files: real virsh loads them."""
    virsh = shutil.which("virsh")
    assert virsh, "virsh (libvirt-clients) must be installed: scripts/test.sh installs it"
    path = ASSETS / "demo" / f"{host}.xml"
    out = subprocess.run([virsh, "-c", f"test://{path}", "list", "--all", "--name"], check=True,
                         capture_output=True, text=True, timeout=30).stdout.split()
    node = load_node(str(path))
    assert sorted(out) == sorted(d.definition.name for d in node.domains)
    states = subprocess.run([virsh, "-c", f"test://{path}", "list", "--all"], check=True, capture_output=True,
                            text=True, timeout=30).stdout
    for item in node.domains:
        line = next(line for line in states.splitlines() if f" {item.definition.name} " in f"{line} ")
        assert line.rstrip().endswith(item.state.value)


def test_domain_file_references_are_relative_to_the_node_file(tmp_path):
    (tmp_path / "guest.xml").write_text("<domain type='test'><name>outside</name><memory>1024</memory></domain>")
    node = tmp_path / "node.xml"
    node.write_text("<node><domain file='guest.xml'/></node>")
    (item,) = load_node(str(node)).domains
    assert item.definition.name == "outside"
