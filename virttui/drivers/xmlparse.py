"""Safe XML parsing and libvirt domain XML → model.

Every parse goes through one parser that resolves no entities, loads no DTD
and never touches the network: XML comes from hosts we do not control.
"""

from __future__ import annotations

import re
import uuid as uuidlib

from lxml import etree

from virttui.drivers.errors import ParseError
from virttui.drivers.model import Disk
from virttui.records import record

_UNITS = {
    "b": 1, "bytes": 1,
    "k": 1024, "kib": 1024, "kb": 1000,
    "m": 1024**2, "mib": 1024**2, "mb": 1000**2,
    "g": 1024**3, "gib": 1024**3, "gb": 1000**3,
    "t": 1024**4, "tib": 1024**4, "tb": 1000**4,
}


def safe_parser() -> etree.XMLParser:
    """A parser that resolves no entities, loads no DTD and fetches nothing."""
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=False)


def parse_xml(data: str | bytes, what: str) -> etree._Element:
    """Parse XML text, raising ParseError naming `what` (a file or a domain)."""
    try:
        if isinstance(data, str):
            data = data.encode("utf-8")  # a lone surrogate cannot be encoded: not XML either
        root = etree.fromstring(data, safe_parser())
    except (etree.LxmlError, UnicodeError) as exc:
        raise ParseError(f"{what}: malformed XML: {exc}") from None
    if root is None:
        raise ParseError(f"{what}: empty XML document")
    _flatten_entities(root)
    return root


def _flatten_entities(root: etree._Element) -> None:
    """Turn unresolved entity references into literal text, so nothing downstream expands them."""
    for entity in list(root.iter(etree.Entity)):
        parent = entity.getparent()
        if parent is None:
            continue
        literal = (entity.text or "") + (entity.tail or "")
        previous = entity.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + literal
        else:
            parent.text = (parent.text or "") + literal
        parent.remove(entity)


def to_bytes(value: str | None, unit: str | None, default_unit: str = "kib") -> int:
    """A libvirt scaled integer in bytes; ParseError on junk."""
    if value is None or not value.strip():
        return 0
    try:
        number = int(value.strip())
    except ValueError:
        raise ParseError(f"not an integer: {value.strip()!r}") from None
    scale = _UNITS.get((unit or default_unit).strip().lower())
    if scale is None or number < 0:
        raise ParseError(f"bad size {value!r} {unit!r}")
    return number * scale


@record
class DomainDefinition:
    """The static part of a domain, from its XML."""

    uuid: str
    name: str
    domain_type: str
    vcpus: int
    memory_kib: int
    max_memory_kib: int
    disks: tuple[Disk, ...]


def _text(elem: etree._Element | None) -> str:
    return (elem.text or "").strip() if elem is not None else ""


def parse_domain(root: etree._Element, *, what: str = "domain XML", uuid_seed: str = "") -> DomainDefinition:
    """Read name, uuid, vCPUs, memory and disks of a <domain> element."""
    if not isinstance(root.tag, str) or etree.QName(root).localname != "domain":
        raise ParseError(f"{what}: not a libvirt domain (root element <{root.tag}>)")
    name = _text(root.find("name"))
    if not name:
        raise ParseError(f"{what}: domain has no <name>")
    raw_uuid = _text(root.find("uuid"))
    try:
        uuid = str(uuidlib.UUID(raw_uuid)) if raw_uuid else str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, uuid_seed + name))
    except ValueError:
        raise ParseError(f"{what}: domain {name!r} has a malformed uuid {raw_uuid!r}") from None
    try:
        memory = root.find("memory")
        max_mem = to_bytes(_text(memory), memory.get("unit")) // 1024 if memory is not None else 0
        cur = root.find("currentMemory")
        mem = to_bytes(_text(cur), cur.get("unit")) // 1024 if cur is not None else max_mem
        vcpu = root.find("vcpu")
        vcpus = int(vcpu.get("current") or _text(vcpu) or 1) if vcpu is not None else 1
    except (ParseError, ValueError) as exc:
        raise ParseError(f"{what}: domain {name!r}: {exc}") from None
    disks = tuple(_parse_disk(disk, what, name) for disk in root.iterfind("devices/disk"))
    return DomainDefinition(
        uuid=uuid,
        name=name,
        domain_type=root.get("type", ""),
        vcpus=max(vcpus, 1),
        memory_kib=mem,
        max_memory_kib=max_mem,
        disks=disks,
    )


def _parse_disk(disk: etree._Element, what: str, domain: str) -> Disk:
    target = disk.find("target")
    driver = disk.find("driver")
    if target is None or not target.get("dev"):
        raise ParseError(f"{what}: domain {domain!r} has a disk without <target dev=…>")
    kind, path = _kind_and_source(disk, disk.find("source"))
    return Disk(
        target=target.get("dev", ""),
        bus=target.get("bus", ""),
        device=disk.get("device", "disk"),
        source=path,
        format=driver.get("type", "") if driver is not None else "",
        readonly=disk.find("readonly") is not None,
        shareable=disk.find("shareable") is not None,
        kind=kind,
    )


# The <source> attribute libvirt reads for each <disk type> (virDomainStorageSourceParse), the one
# `virsh domblklist` shows; volume and nvme sources are read apart (_kind_and_source).
_SOURCE_ATTRIBUTE = {"file": "file", "block": "dev", "dir": "dir", "network": "name", "vhostuser": "path",
                     "vhostvdpa": "dev"}


def _kind_and_source(disk: etree._Element, source: etree._Element | None) -> tuple[str, str]:
    """(type, source) of a disk as libvirt names them; the source a path, an nvme:// address or
    pool/volume."""
    if source is None:
        return "file", ""  # libvirt makes a disk without <source> an empty file disk, whatever its type
    kind = disk.get("type") or ""
    if kind == "volume":
        # pool/volume, not virsh's bare volume: a volume's name is unique only within its pool
        volume = source.get("volume")
        return kind, f"{source.get('pool', '')}/{volume}" if volume else ""
    if kind == "nvme":
        return kind, nvme_source(source)
    attribute = _SOURCE_ATTRIBUTE.get(kind)
    if attribute is None:  # no type (or one libvirt refuses): whichever path it has
        path = source.get("file") or source.get("dev") or source.get("dir") or source.get("name") or ""
        if not path and source.get("volume"):
            path = f"{source.get('pool', '')}/{source.get('volume')}"
        return kind or ("block" if source.get("dev") and not source.get("file") else "file"), path
    path = source.get(attribute) or ""
    if kind == "network" and source.get("protocol") == "iscsi" and path and "/" not in path:
        path += "/0"  # libvirt reads an iSCSI target named without a LUN as LUN 0
    return kind, path


_C_UNSIGNED = re.compile(r"[ \t\n\v\f\r]*\+?(?:0[xX](?P<hex>[0-9a-fA-F]+)|(?P<oct>0[0-7]*)|(?P<dec>[1-9][0-9]*))\Z")
_C_DECIMAL = re.compile(r"[ \t\n\v\f\r]*(?P<sign>[+-]?)(?P<dec>[0-9]+)\Z")
_NUMBER_CHARS = 80  # longer than any number libvirt takes here: refused before it is converted


def _c_unsigned(text: str | None, limit: int) -> int | None:
    """An unsigned number as libvirt's strtoul with base 0 reads it (0x hex, 0 octal), None when it
    refuses it; an absent attribute is 0."""
    if text is None:
        return 0
    match = _C_UNSIGNED.match(text) if len(text) <= _NUMBER_CHARS else None
    if match is None:
        return None
    if match["hex"]:
        value = int(match["hex"], 16)
    else:
        value = int(match["oct"], 8) if match["oct"] else int(match["dec"])
    return value if value <= limit else None


def _nvme_namespace(text: str | None) -> int | None:
    """<source namespace=…> as libvirt reads it: strtoull base 10 (a minus wraps around), never 0."""
    match = _C_DECIMAL.match(text) if text is not None and len(text) <= _NUMBER_CHARS else None
    if match is None or int(match["dec"]) >= 1 << 64:
        return None
    value = int(match["dec"])
    value = (-value) % (1 << 64) if match["sign"] == "-" else value
    return value or None


def nvme_source(source: etree._Element) -> str:
    """An NVMe disk's source as virsh names it, nvme://DOMAIN:BUS:SLOT.FUNCTION/NAMESPACE; "" when
    libvirt would refuse its address or namespace."""
    namespace = _nvme_namespace(source.get("namespace"))
    address = source.find("address")
    if namespace is None or address is None:
        return ""
    domain, bus, slot, function = (_c_unsigned(address.get(name), 0xFFFFFFFF)
                                   for name in ("domain", "bus", "slot", "function"))
    if domain is None or bus is None or slot is None or function is None:
        return ""
    if (domain or bus or slot) and (bus > 0xFF or slot > 0x1F or function > 7):
        return ""  # libvirt checks an address only when its domain, bus or slot is set
    return f"nvme://{domain:04x}:{bus:02x}:{slot:02x}.{_int32(function)}/{namespace}"  # virsh's %d


def _int32(value: int) -> int:
    return (value + (1 << 31)) % (1 << 32) - (1 << 31)
