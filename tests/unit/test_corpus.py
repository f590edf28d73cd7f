"""libvirt's own test corpus of domain XML, read by virttui and by Debian's virsh: the same domains, states
and disks, but for the differences listed below, each with its reason.

The corpus (../shared/corpus beside the checkout; its SOURCE.txt says where each file comes from) is read
in place. Each domain is renamed after its file (the corpus names nearly all of them QEMUGuest1) into this
run's tmp directory, with a few edge cases of the same rules written here (EDGE_CASES), then loaded by
libvirt's test driver inside virsh (every domain virsh accepts in one node file, read by one virsh run) and
by virttui: its embedded driver (one host per domain, with disk leases) and its virsh driver over virsh's
test driver.
"""

from __future__ import annotations

import functools
import hashlib
import re
import shutil
import subprocess
import time
import uuid as uuidlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from lxml import etree
from support.paths import shared_corpus

from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.model import ConnectionState, Domain, DomainState, Host, HostSnapshot
from virttui.drivers.testdriver import TestDriver
from virttui.drivers.transport import LocalTransport
from virttui.drivers.uri import parse_uri
from virttui.drivers.virsh import VirshDriver
from virttui.drivers.virshscript import script, virsh_quote
from virttui.drivers.xmlparse import nvme_source, parse_domain, parse_xml
from virttui.fleet import Fleet
from virttui.locks.model import LeaseDirSnapshot, LeaseState
from virttui.locks.status import compute_lease_status
from virttui.views.disks import disks_view

CORPUS = shared_corpus()

# Where virttui deliberately names a disk otherwise than `virsh domblklist`: (domain, target) -> (virttui,
# virsh). A volume is shown as pool/volume: its name is unique only within its pool ("unit:0:0:3" is LUN 3
# of which iSCSI target?), and the pool is what the operator looks up next (`virsh vol-info --pool`).
POOL_VOLUMES = {
    ("disk-source-pool", "hda"): ("pool-disk/block+cdrom", "block+cdrom"),
    ("disk-source-pool", "vda"): ("pool-disk/dir+vol1", "dir+vol1"),
    ("disk-source-pool", "vdb"): ("pool-disk/dir+vol2", "dir+vol2"),
    ("disk-source-pool-mode", "hda"): ("pool-iscsi-auth/unit:0:0:1", "unit:0:0:1"),
    ("disk-source-pool-mode", "hdb"): ("pool-iscsi/unit:0:0:2", "unit:0:0:2"),
    ("disk-source-pool-mode", "hdd"): ("pool-iscsi/unit:0:0:3", "unit:0:0:3"),
    ("disk-startuppolicy-optional-drop", "sda"): ("inactive/inactive", "inactive"),
    ("luks-disks-source", "vdd"): ("pool-iscsi/unit:0:0:3", "unit:0:0:3"),
    ("luks-disks-source-qcow2", "vdd"): ("pool-iscsi/unit:0:0:3", "unit:0:0:3"),
}

# Guests virttui's embedded host leaves shut off where virsh's test driver runs them: two of their
# writable, unshared disks have one path, so one lease. sanlock refuses to acquire a lease its client
# already holds (EEXIST) and virtlockd a second lock on one file, so a libvirt host with auto disk leases
# can't start them either; virsh's test driver takes no leases. Shown shut off, with a warning naming the
# disk, the operator learns it before pressing start on a real host.
SHARED_LEASE_LEFT_OFF = {"disk-cache", "disk-scsi-disk-split"}

EXPECTED_SOURCES = {("source", name, target, ours, theirs) for (name, target), (ours, theirs) in POOL_VOLUMES.items()}
EXPECTED_STATES = {("state", name, "shut off", "running") for name in SHARED_LEASE_LEFT_OFF}

# The embedded driver keeps libvirt's disk order (nodexml.in_libvirt_order: the buses as they first
# come, each by index), as virsh lists it: these domains were listed in their file's order before.
REORDERED = {"disk-network-source-curl", "disk-order", "disk-snapshot", "disk-virtio-ccw-many",
             "edge-order-buses", "edge-order-floppies", "edge-order-partitions", "edge-no-source"}


def _nvme(namespace: str, domain: str = "0", bus: str = "1", slot: str = "0", function: str = "0") -> str:
    return (f"<disk type='nvme' device='disk'><source type='pci' namespace='{namespace}'><address domain='{domain}'"
            f" bus='{bus}' slot='{slot}' function='{function}'/></source><target dev='vda'/></disk>")


def _files(*pairs: tuple[str, str, str]) -> str:
    return "".join(f"<disk type='file' device='{device}'><source file='/{target}.img'/><target dev='{target}'"
                   + (f" bus='{bus}'" if bus else "") + "/></disk>" for device, target, bus in pairs)


# The same rules at their edges, beside the corpus: numbers as libvirt's C parsers read them (octal, hex,
# blanks, signs), disk order (partitions, buses given or not, floppies), disks without a <source>. Those
# virsh refuses must be refused or shown by virttui like the corpus' own parse-error inputs.
EDGE_CASES = {
    "edge-nvme-bases": _nvme("01", domain="10", bus="010", slot="0x1f", function="7"),
    "edge-nvme-blanks-signs": _nvme(" +3", domain=" 0x10", bus="+1", slot="1"),
    "edge-nvme-negative-namespace": _nvme("-1"),
    "edge-nvme-function-only": _nvme("1", bus="0", function="9"),
    "edge-nvme-empty-address": "<disk type='nvme' device='disk'><source type='pci' namespace='2'><address/>"
                               "</source><target dev='vda'/></disk>",
    "edge-nvme-trailing-blank": _nvme("3 "),
    "edge-nvme-hex-namespace": _nvme("0x3"),
    "edge-nvme-zero-namespace": _nvme("0"),
    "edge-nvme-bad-octal": _nvme("1", bus="09"),
    "edge-nvme-bus-over": _nvme("1", bus="0x100"),
    "edge-nvme-domain-over": _nvme("1", domain="0x100000000"),
    "edge-order-partitions": _files(("disk", "vdb1", ""), ("disk", "vda", ""), ("disk", "vdaa", ""),
                                    ("disk", "vdz", "")),
    "edge-order-floppies": _files(("floppy", "fdb", ""), ("disk", "hda", ""), ("floppy", "fda", "")),
    "edge-order-buses": _files(("disk", "sdc", "usb"), ("disk", "sdb", ""), ("disk", "sda", "usb"),
                               ("disk", "hdb", "ide"), ("disk", "vdb", ""), ("disk", "hda", "ide")),
    "edge-no-source": "<disk type='network' device='cdrom'><target dev='hdc'/><readonly/></disk>"
                      "<disk type='nvme' device='cdrom'><target dev='hdd'/><readonly/></disk>"
                      "<disk type='block' device='floppy'><target dev='fda'/></disk>",
    "edge-iscsi-trailing-slash": "<disk type='network' device='disk'><source protocol='iscsi' name='iqn.x/'>"
                                 "<host name='h'/></source><target dev='vda'/></disk>",
    "edge-source-attributes": "<disk type='file' device='disk'><source dev='/dev/sdz' file='/f.img'/>"
                              "<target dev='vda'/></disk><disk type='vhostuser' device='disk'><driver name='qemu'"
                              " type='raw'/><source type='unix' path='/run/[b]s.sock'><reconnect enabled='yes'"
                              " timeout='10'/></source><target dev='vdb' bus='virtio'/></disk>",
}

LEASED_SOURCE = {"file": "file", "block": "dev", "dir": "dir"}  # local storage (virDomainLockManagerAddImage)

Row = tuple[str, str, str, str]  # as `domblklist --details` prints a disk: type, device, target, source


@dataclass(frozen=True)
class Seen:
    """One domain as a driver shows it: its state and its disks, in order."""

    state: str
    disks: tuple[Row, ...]


@dataclass(frozen=True)
class Measured:
    files: dict[str, Path]  # domain name -> its renamed copy in tmp
    accepted: list[str]  # the domains virsh's test driver accepts
    virsh: dict[str, Seen]  # `virsh list --all` and `domblklist --details` over one node file of them
    virsh_driver: dict[str, Seen]  # virttui's virsh driver over that node file
    embedded: dict[str, Seen]  # virttui's embedded driver, one host per domain (every file it accepts)
    embedded_domains: dict[str, Domain]
    embedded_rejected: dict[str, str]  # name -> the one-line error of a parse-error input it refuses
    warnings: dict[str, tuple[str, ...]]


def corpus_files() -> list[Path]:
    """The corpus, checked against its SOURCE.txt (every file it lists, at its size): a missing or
    partial corpus fails every test here, saying where it was looked for."""
    files = sorted((CORPUS / "libvirt-xml").glob("*.xml"))
    listed = {}
    if (CORPUS / "SOURCE.txt").is_file():
        for line in (CORPUS / "SOURCE.txt").read_text().splitlines():
            fields = line.split("\t")
            if len(fields) == 4 and fields[0].startswith("libvirt-xml/"):
                listed[fields[0].removeprefix("libvirt-xml/")] = int(fields[3])
    found = {path.name: path.stat().st_size for path in files}
    if not listed or found != listed:
        pytest.fail(f"libvirt's XML corpus is missing or incomplete: expected {CORPUS.resolve()}/SOURCE.txt "
                    f"and the libvirt-xml/*.xml files it lists ({len(listed)}) beside the checkout, found "
                    f"{len(files)} files, {len(set(listed) ^ set(found))} missing or not listed", pytrace=False)
    return files


def virsh_binary() -> str:
    virsh = shutil.which("virsh")
    if virsh is None:
        pytest.fail("virsh (libvirt-clients) must be installed: scripts/test.sh installs it", pytrace=False)
    return virsh


def write_domain(root: etree._Element, name: str, into: Path) -> Path:
    """The domain named `name`, with a UUID of its own, written as into/NAME.xml."""
    elem = root.find("name")
    if elem is None:
        elem = etree.SubElement(root, "name")
    elem.text = name
    uuid = root.find("uuid")
    if uuid is None:
        uuid = etree.SubElement(root, "uuid")
    uuid.text = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, name))
    path = into / f"{name}.xml"
    path.write_bytes(etree.tostring(root))
    return path


def domain_files(into: Path) -> dict[str, Path]:
    files = {source.stem: write_domain(parse_xml(source.read_bytes(), str(source)), source.stem, into)
             for source in corpus_files()}
    for name, devices in EDGE_CASES.items():
        root = parse_xml(f"<domain type='test'><memory>1024</memory><os><type>hvm</type></os>"
                         f"<devices>{devices}</devices></domain>", name)
        files[name] = write_domain(root, name, into)
    return files


def run_virsh(uri: str, commands: list[str]) -> list[str]:
    """Each command's output, from one virsh run."""
    batch = script(commands)
    assert len(batch.text.encode()) < 128 * 1024, "one argument: Linux caps it at 128 KiB"
    out = subprocess.run([virsh_binary(), "-q", "-c", uri, batch.text], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    return batch.split(out.stdout)


def node_file(path: Path, domains: list[Path]) -> Path:
    entries = "".join(f'<domain file="{domain}"/>' for domain in domains)
    path.write_text("<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>4</cores><threads>1</threads></cpu>"
                    f"<memory>16777216</memory>{entries}</node>")
    return path


def parse_listing(text: str) -> dict[str, str]:
    """`virsh -q list --all`: name -> state."""
    states = {}
    for line in text.splitlines():
        if line.strip():
            _, name, state = line.split(None, 2)
            states[name] = state.strip()
    return states


def parse_blklist(text: str) -> tuple[Row, ...]:
    rows = []
    for line in text.splitlines():
        if line.strip():
            kind, device, target, source = line.split(None, 3)
            rows.append((kind, device, target, source.strip()))
    return tuple(rows)


def seen(dom: Domain) -> Seen:
    return Seen(dom.state.value, tuple((d.kind, d.device, d.target, d.source or "-") for d in dom.disks))


def measure_virsh(files: dict[str, Path], tmp: Path) -> tuple[list[str], dict[str, Seen]]:
    """Which domains libvirt's test driver accepts (each defined in test:///default), and what virsh
    lists of them loaded together from one node file."""
    defined = run_virsh("test:///default", [f"define {virsh_quote(str(path))}" for path in files.values()]
                        + ["list --all --name"])
    accepted = sorted(name for name in defined[-1].split() if name in files)
    node = node_file(tmp / "virsh-node.xml", [files[name] for name in accepted])
    sections = run_virsh(f"test://{node}", ["list --all"] + [f"domblklist --details {virsh_quote(name)}"
                                                            for name in accepted])
    states = parse_listing(sections[0])
    return accepted, {name: Seen(states.get(name, "absent"), parse_blklist(text))
                      for name, text in zip(accepted, sections[1:], strict=True)}


def measure_virsh_driver(node: Path) -> dict[str, Seen]:
    uri = f"test://{node}"
    driver = VirshDriver(uri, parse_uri(uri), LocalTransport())
    driver.connect()
    try:
        return {dom.name: seen(dom) for dom in driver.poll().domains}
    finally:
        driver.close()


def measure_embedded(files: dict[str, Path], tmp: Path) -> tuple[dict[str, Domain], dict[str, str],
                                                                   dict[str, tuple[str, ...]]]:
    """Each domain alone on an embedded host with disk leases (one lease directory, each host closed,
    its leases released, before the next starts): every file, the parse-error inputs too."""
    leases = tmp / "leases"
    leases.mkdir(exist_ok=True)
    domains, rejected, warnings = {}, {}, {}
    for name, path in files.items():
        node = node_file(tmp / f"{name}.node.xml", [path])
        driver = TestDriver(f"test://{node}", str(node), lease_dir=str(leases))
        try:
            driver.connect()
        except ConnectionFailed as exc:  # the one error a node file may raise
            rejected[name] = str(exc)
            continue
        try:
            snap = driver.poll()
        finally:
            driver.close()
        (dom,) = snap.domains
        domains[name] = dom
        warnings[name] = snap.host.warnings
    return domains, rejected, warnings


@pytest.fixture(scope="module")
def corpus_tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


@functools.cache
def measure(tmp: Path) -> Measured:
    """Everything measured once per module, by the first test that asks: a missing corpus fails each
    test (not its set-up), saying where the corpus was looked for."""
    (tmp / "domains").mkdir(exist_ok=True)
    files = domain_files(tmp / "domains")
    accepted, virsh = measure_virsh(files, tmp)
    domains, rejected, warnings = measure_embedded(files, tmp)
    return Measured(files, accepted, virsh, measure_virsh_driver(tmp / "virsh-node.xml"),
                    {name: seen(dom) for name, dom in domains.items()}, domains, rejected, warnings)


def differences(ours: dict[str, Seen], virsh: dict[str, Seen]) -> set[tuple]:
    """Everything that differs: a domain missing on one side, a state, a disk's source, a whole disk row
    (disks matched by target: libvirt refuses a domain with two disks of one target), the disks' order."""
    found: set[tuple] = {("domain", name, name in ours) for name in set(ours) ^ set(virsh)}
    for name in sorted(set(ours) & set(virsh)):
        if ours[name].state != virsh[name].state:
            found.add(("state", name, ours[name].state, virsh[name].state))
        mine = {row[2]: row for row in ours[name].disks}
        theirs = {row[2]: row for row in virsh[name].disks}
        for target in sorted(mine.keys() | theirs.keys()):
            row, want = mine.get(target), theirs.get(target)
            if row is not None and want is not None and row[:3] == want[:3] and row[3] != want[3]:
                found.add(("source", name, target, row[3], want[3]))
            elif row != want:
                found.add(("disk", name, row, want))
        if list(mine) != list(theirs) and mine.keys() == theirs.keys():
            found.add(("order", name))
    return found


_DISK_NAME = re.compile(r"(?:fd|hd|vd|sd|xvd|ubd)(?P<letters>[a-z]+)[0-9]*\Z")


def disk_index(target: str) -> int:
    """libvirt's virDiskNameToIndex: sda 0, vdz 25, vdaa 26, a partition's digits ignored; -1 for others."""
    match = _DISK_NAME.match(target)
    index = -1 if match is None else 0
    for position, char in enumerate(match["letters"] if match else ""):
        index = (index + (1 if position else 0)) * 26 + ord(char) - ord("a")
    return index


def libvirt_order(path: Path) -> list[str]:
    """The targets in the order libvirt's parser keeps the disks (virDomainDiskInsert): each goes before
    the first disk on its bus (as written: one left out is given later) with a higher index, else after
    the last on its bus, else last; so the buses in the order they first come, each sorted by index."""
    buses: dict[str, list[tuple[int, int, str]]] = {}
    for position, target in enumerate(parse_xml(path.read_bytes(), str(path)).iterfind("devices/disk/target")):
        dev = target.get("dev", "")
        buses.setdefault(target.get("bus", ""), []).append((disk_index(dev), position, dev))
    return [dev for group in buses.values() for _, _, dev in sorted(group)]


def leased_paths(path: Path, *, exclusive: bool = True) -> Iterator[str]:
    """What libvirt's lock managers lease for this domain, read from its XML here, not by virttui: the
    source path of each file, block or dir disk (never a network disk; a volume only once its pool
    resolves it at start); with `exclusive`, only writable, unshared ones (the auto leases)."""
    root = parse_xml(path.read_bytes(), str(path))
    for disk in root.iterfind("devices/disk"):
        attribute = LEASED_SOURCE.get(disk.get("type", "file"))
        source = disk.find("source")
        if attribute is None or source is None or not source.get(attribute):
            continue
        if exclusive and (disk.find("readonly") is not None or disk.find("shareable") is not None):
            continue
        yield source.get(attribute, "")


def test_the_embedded_driver_lists_domains_states_and_disks_as_virsh_does(corpus_tmp):
    """One host per domain, with disk leases: libvirt's domains, their states, every disk's type, device,
    target and source: NVMe as nvme://DOMAIN:BUS:SLOT.FUNCTION/NAMESPACE, vhost-user as its socket, an
    iSCSI target without a LUN as LUN 0, a disk without a source as an empty file."""
    measured = measure(corpus_tmp)
    rejected = set(measured.files) - set(measured.accepted)
    assert len(measured.accepted) >= 120 and len(rejected) >= 20, sorted(rejected)
    ours = {name: measured.embedded[name] for name in measured.accepted if name in measured.embedded}
    assert differences(ours, measured.virsh) == EXPECTED_SOURCES | EXPECTED_STATES
    assert REORDERED <= set(ours)  # the domains whose order this checks are there
    for name in measured.accepted:  # libvirt's order, as libvirt_order has it, for the whole corpus
        assert libvirt_order(measured.files[name]) == [row[2] for row in measured.virsh[name].disks], name
    for name in SHARED_LEASE_LEFT_OFF:  # left off with a warning naming the disk; no other guest is
        (warning,) = measured.warnings[name]
        assert warning.startswith(f"{name} left shut off: disk /") and "already held" in warning
        paths = list(leased_paths(measured.files[name]))
        assert len(paths) > len(set(paths))
    assert {name for name, shown in measured.warnings.items() if shown} == SHARED_LEASE_LEFT_OFF
    # the parse-error inputs virsh refuses: refused in one line naming the file, or shown like any other
    assert set(measured.embedded_rejected) <= rejected
    assert set(measured.embedded) | set(measured.embedded_rejected) == set(measured.files)
    for name, error in measured.embedded_rejected.items():
        assert "\n" not in error and name in error, error


def test_the_virsh_driver_lists_domains_states_and_disks_as_virsh_does(corpus_tmp):
    """The same domains through virttui's virsh driver over virsh's test driver: libvirt's own XML."""
    measured = measure(corpus_tmp)
    assert differences(measured.virsh_driver, measured.virsh) == EXPECTED_SOURCES


def fleet_with(dom: Domain, manager: str) -> tuple[Fleet, str, LeaseDirSnapshot]:
    uri = f"test:///corpus-{manager}"
    leases = LeaseDirSnapshot(directory=f"/var/lib/libvirt/{manager}", host_id=1, manager=manager)
    fleet = Fleet([uri])
    fleet.apply(HostSnapshot(Host(uri=uri, hostname="hv1", state=ConnectionState.CONNECTED), (dom,),
                             taken_at=1.0, leases=leases))
    return fleet, uri, leases


@pytest.mark.parametrize(("manager", "digest"), [("sanlock", hashlib.md5), ("lockd", hashlib.sha256)])
def test_every_domain_leases_the_paths_libvirt_would_lease(corpus_tmp, manager, digest):
    """Running with auto disk leases and no lease file yet: one missing lease per path libvirt leases,
    named by the md5 (sanlock) or sha256 (lockd) of that path, the same in the Disks pane; every other
    disk that has a source shows no lease ("n/a"), an NVMe or vhost-user disk as a network one."""
    measured = measure(corpus_tmp)
    for name, dom in measured.embedded_domains.items():
        running = replace(dom, state=DomainState.RUNNING)
        fleet, uri, leases = fleet_with(running, manager)
        want = {digest(path.encode()).hexdigest(): path for path in leased_paths(measured.files[name])}
        rows = compute_lease_status(leases, fleet.disk_uses([uri]))
        assert {row.name: row.disk for row in rows} == want, name
        assert {row.state for row in rows} <= {LeaseState.MISSING}, name
        view = disks_view(fleet, (uri, running))
        assert {cells[6].text for _, cells in view.rows} - {""} == set(want), name
        local = set(leased_paths(measured.files[name], exclusive=False))
        reference = {row[2]: row for row in (measured.virsh[name] if name in measured.virsh else seen(running)).disks}
        for _, cells in view.rows:
            target = cells[0].text
            kind, _, _, source = reference[target]
            if kind not in LEASED_SOURCE and kind != "volume":
                assert cells[3].text == ("n/a" if source != "-" else "-") and cells[6].text == "", (name, target)
            elif source not in local:  # a volume, or a local disk's path libvirt would not read
                assert cells[6].text == "", (name, target)


def test_the_disks_pane_shows_each_disk_as_virsh_names_it(corpus_tmp):
    """Source and full path as `domblklist` shows them (pool/volume excepted, above), as plain text: a
    vhost-user socket named like markup is shown as named."""
    measured = measure(corpus_tmp)
    checked = 0
    for name in measured.accepted:
        dom = measured.embedded_domains[name]
        fleet, uri, _ = fleet_with(dom, "sanlock")
        rows = {cells[0].text: cells for _, cells in disks_view(fleet, (uri, dom)).rows}  # by target
        assert rows.keys() == {row[2] for row in measured.virsh[name].disks}, name
        for _, _, target, source in measured.virsh[name].disks:
            cells = rows[target]
            want = POOL_VOLUMES.get((name, target), (source, source))[0]
            assert (cells[0].text, cells[7].text or "-") == (target, want), name
            short = want if len(want) <= 17 else "…" + want[-16:]
            assert cells[1].text == ("(empty)" if want == "-" else short), (name, target)
            checked += 1
    assert checked == sum(len(measured.virsh[name].disks) for name in measured.accepted) > 250
    assert "/run/[b]s.sock" in {disk[3] for disk in measured.virsh["edge-source-attributes"].disks}


def test_hostile_disk_xml_is_read_in_bounded_linear_time():
    """Numbers of any length and any number of disks: bounded answers, in time linear in the XML."""
    started = time.monotonic()
    huge = "9" * 200_000
    assert nvme_source(parse_xml(f"<source namespace='{huge}'><address bus='{huge}'/></source>", "x")) == ""
    assert nvme_source(parse_xml(f"<source namespace='1'><address bus='0x{'f' * 200_000}'/></source>", "x")) == ""
    devices = "".join(f"<disk type='file'><source file='/d{n}'/><target dev='vd{chr(97 + n % 26)}'/></disk>"
                      for n in range(5000))
    parsed = parse_domain(parse_xml(f"<domain><name>many</name><devices>{devices}</devices></domain>", "x"))
    assert len(parsed.disks) == 5000
    assert time.monotonic() - started < 5.0
