"""Safe XML parsing and libvirt domain XML → model.

Every parse goes through one parser that resolves no entities, loads no DTD
and never touches the network: XML comes from hosts we do not control.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass

from lxml import etree

from virttui.drivers.errors import ParseError
from virttui.drivers.model import Disk

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


@dataclass(frozen=True)
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
    source = disk.find("source")
    driver = disk.find("driver")
    path = ""
    if source is not None:
        path = source.get("file") or source.get("dev") or source.get("dir") or source.get("name") or ""
        if not path and source.get("volume"):
            path = f"{source.get('pool', '')}/{source.get('volume')}"
    if target is None or not target.get("dev"):
        raise ParseError(f"{what}: domain {domain!r} has a disk without <target dev=…>")
    return Disk(
        target=target.get("dev", ""),
        bus=target.get("bus", ""),
        device=disk.get("device", "disk"),
        source=path,
        format=driver.get("type", "") if driver is not None else "",
        readonly=disk.find("readonly") is not None,
        shareable=disk.find("shareable") is not None,
        kind=disk.get("type") or ("file" if source is not None and source.get("file") else
                                  "block" if source is not None and source.get("dev") else "file"),
    )
