"""libvirt's test-driver node XML (the files `virsh -c test:///PATH` loads).

A <node> holds <cpu>, <memory>, full <domain> definitions (inline or as
<domain file="…"/>), and storage <pool>s whose volumes give disk sizes.
virttui reads one extension element, ignored by libvirt:
<virttui:host name="hv1" host_id="1"/> in the VIRTTUI_NS namespace.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import replace

from lxml import etree

from virttui.boundedread import read_bounded
from virttui.drivers.errors import ConnectionFailed, ParseError
from virttui.drivers.model import Disk, DomainState
from virttui.drivers.xmlparse import DomainDefinition, parse_domain, parse_xml, to_bytes
from virttui.locks.model import MAX_HOST_ID
from virttui.records import record

TEST_NS = "http://libvirt.org/schemas/domain/test/1.0"
VIRTTUI_NS = "https://virttui.dev/schemas/node/1"


@record
class NodeDomain:
    definition: DomainDefinition
    xml: str
    state: DomainState
    persistent: bool
    autostart: bool


@record
class NodeDescription:
    """Everything a node file says about one embedded host."""

    path: str
    hostname: str
    host_id: int
    cpus: int
    cpu_model: str
    memory_kib: int
    domains: tuple[NodeDomain, ...]


def load_node(path: str) -> NodeDescription:
    """Read a node file; ConnectionFailed naming the file on any problem."""
    try:
        data = read_bounded(path)
    except OSError as exc:
        raise ConnectionFailed(f"{path}: {exc.strerror}") from None
    except ValueError:  # a NUL in the path (test:///a%00b): no file can have that name
        raise ConnectionFailed(f"{path!r}: not a valid file name") from None
    try:
        return parse_node(data, path)
    except ParseError as exc:
        raise ConnectionFailed(str(exc)) from None


def parse_node(data: bytes | str, path: str) -> NodeDescription:
    root = parse_xml(data, path)
    if root.tag != "node":
        raise ParseError(f"{path}: not a libvirt test node file (root element <{root.tag}>)")
    base = os.path.dirname(os.path.abspath(path))
    cpus, model = _cpus(root, path)
    try:
        memory = to_bytes(root.findtext("memory"), None) // 1024 if root.find("memory") is not None else 8 * 1024 * 1024
    except ParseError as exc:
        raise ParseError(f"{path}: <memory>: {exc}") from None
    ext = root.find(f"{{{VIRTTUI_NS}}}host")
    hostname = ext.get("name", "") if ext is not None else ""
    try:
        host_id = int(ext.get("host_id", "1")) if ext is not None else 1
    except ValueError:
        raise ParseError(f"{path}: host_id must be a number") from None
    if not 1 <= host_id <= MAX_HOST_ID:
        raise ParseError(f"{path}: host_id must be 1 to {MAX_HOST_ID}")
    volumes = _volumes(root)
    domains = []
    seen_names: set[str] = set()
    for elem in root.iterfind("domain"):
        if elem.get("file"):
            elem = _load_domain_file(base, elem.get("file", ""), path)
        domain = _node_domain(elem, path, volumes)
        if domain.definition.name in seen_names:
            raise ParseError(f"{path}: domain {domain.definition.name!r} is defined twice")
        seen_names.add(domain.definition.name)
        domains.append(domain)
    return NodeDescription(
        path=os.path.abspath(path),
        hostname=hostname or "localhost",
        host_id=host_id,
        cpus=cpus,
        cpu_model=model,
        memory_kib=memory,
        domains=tuple(domains),
    )


def _cpus(root: etree._Element, path: str) -> tuple[int, str]:
    cpu = root.find("cpu")
    if cpu is None:
        return 16, "i686"
    try:
        counts = [int(cpu.findtext(tag) or 1) for tag in ("nodes", "sockets", "cores", "threads")]
    except ValueError:
        raise ParseError(f"{path}: <cpu> counts must be numbers") from None
    total = 1
    for count in counts:
        total *= max(count, 1)
    return total, (cpu.findtext("model") or "").strip()


def _volumes(root: etree._Element) -> dict[str, tuple[int, int]]:
    """Disk path → (capacity, allocation) in bytes, from the node's storage pools."""
    sizes: dict[str, tuple[int, int]] = {}
    for pool in root.iterfind("pool"):
        pool_dir = (pool.findtext("target/path") or "").strip()
        for vol in pool.iterfind("volume"):
            name = (vol.findtext("name") or "").strip()
            vol_path = (vol.findtext("target/path") or "").strip() or (os.path.join(pool_dir, name) if pool_dir else "")
            try:
                cap = vol.find("capacity")
                alloc = vol.find("allocation")
                capacity = to_bytes(cap.text, cap.get("unit"), "b") if cap is not None else 0
                allocation = to_bytes(alloc.text, alloc.get("unit"), "b") if alloc is not None else capacity
            except ParseError:
                continue
            if vol_path:
                sizes[vol_path] = (capacity, allocation)
    return sizes


_DISK_NAME = re.compile(r"(?:fd|hd|vd|sd|xvd|ubd)(?P<letters>[a-z]+)[0-9]*\Z")


def disk_index(target: str) -> int:
    """libvirt's virDiskNameToIndex: sda 0, vdz 25, vdaa 26, a partition's digits ignored; -1 for others."""
    match = _DISK_NAME.match(target[:64])  # a target is a short name; a long one is no name
    if match is None:
        return -1
    index = 0
    for position, char in enumerate(match["letters"]):
        index = (index + (1 if position else 0)) * 26 + ord(char) - ord("a")
    return index


def in_libvirt_order(disks: tuple[Disk, ...]) -> tuple[Disk, ...]:
    """The disks in the order libvirt's parser keeps them (virDomainDiskInsert), as virsh lists them:
    the buses (as written) in the order they first come, each bus's disks by index, then as written."""
    buses: dict[str, list[tuple[int, int, Disk]]] = {}
    for position, disk in enumerate(disks):
        buses.setdefault(disk.bus, []).append((disk_index(disk.target), position, disk))
    return tuple(disk for group in buses.values() for _, _, disk in sorted(group, key=lambda item: item[:2]))


def _load_domain_file(base: str, name: str, node_path: str) -> etree._Element:
    full = os.path.join(base, name)
    try:
        data = read_bounded(full)
    except OSError as exc:
        raise ParseError(f"{node_path}: domain file {full}: {exc.strerror}") from None
    return parse_xml(data, full)


def _node_domain(elem: etree._Element, path: str, volumes: dict[str, tuple[int, int]]) -> NodeDomain:
    definition = parse_domain(elem, what=path, uuid_seed=path)
    disks = in_libvirt_order(tuple(_sized(disk, volumes) for disk in definition.disks))
    definition = replace(definition, disks=disks)
    runstate = elem.findtext(f"{{{TEST_NS}}}runstate")
    try:
        state = DomainState.from_libvirt_number(int(runstate)) if runstate else DomainState.RUNNING
    except ValueError:
        raise ParseError(f"{path}: domain {definition.name!r}: bad test:runstate {runstate!r}") from None
    transient = elem.find(f"{{{TEST_NS}}}transient") is not None
    clean = copy.deepcopy(elem)
    for child in list(clean):
        if isinstance(child.tag, str) and child.tag.startswith(f"{{{TEST_NS}}}"):
            clean.remove(child)
    etree.cleanup_namespaces(clean)
    xml = etree.tostring(clean, encoding="unicode")
    return NodeDomain(definition, xml, state, persistent=not transient, autostart=False)


def _sized(disk: Disk, volumes: dict[str, tuple[int, int]]) -> Disk:
    if disk.source not in volumes:
        return disk
    capacity, allocation = volumes[disk.source]
    return replace(disk, capacity=capacity, allocation=allocation)
