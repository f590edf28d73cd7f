"""A polled domain as the virsh driver shows it: state, memory, disks, I/O and network counters
from the bulk `domstats`, the rest from the domain's XML, cached between polls (CachedXML).
"""

from __future__ import annotations

from dataclasses import replace

from virttui.drivers.model import Disk, DiskIO, Domain, DomainState, notable_reason
from virttui.drivers.virshparse import stat_int
from virttui.drivers.xmlparse import DomainDefinition
from virttui.records import record


@record
class CachedXML:
    xml: str
    definition: DomainDefinition
    active: bool  # whether the domain was running when this XML was taken
    dom_id: int | None


def domain_state(stats: dict[str, str]) -> DomainState:
    number = stat_int(stats, "state.state", 0)
    return DomainState.from_libvirt_number(number or 0)


def build_domain(uuid: str, name: str, state: DomainState, stats: dict[str, str], cached: CachedXML,
                 autostart: bool, persistent: bool) -> Domain:
    """A polled domain: what its domstats say, the rest from the XML cached for it."""
    definition = cached.definition
    active = state.is_active
    disks, io = _disks(definition.disks, stats)
    memory = stat_int(stats, "balloon.current") if active else None
    max_memory = stat_int(stats, "balloon.maximum") if active else None
    return Domain(
        uuid=uuid, name=name, state=state,
        vcpus=(stat_int(stats, "vcpu.current") if active else None) or definition.vcpus,
        memory_kib=memory or definition.memory_kib,
        max_memory_kib=max_memory or definition.max_memory_kib,
        autostart=autostart, persistent=persistent,
        cpu_time_ns=stat_int(stats, "cpu.time", 0) or 0,
        disks=disks, disk_io=io,
        id=cached.dom_id if active else None,
        net_rx_bytes=_sum_stat(stats, "net", "rx.bytes"),
        net_tx_bytes=_sum_stat(stats, "net", "tx.bytes"),
        memory_used_kib=_used_memory(stats) if active else None,
        reason=notable_reason(state, _reason_number(stats)),
    )


def _disks(disks: tuple[Disk, ...],
           stats: dict[str, str]) -> tuple[tuple[Disk, ...], tuple[tuple[str, DiskIO], ...]]:
    by_target: dict[str, int] = {}
    for number in range(min(stat_int(stats, "block.count", 0) or 0, len(stats))):  # a count of 10**11: no hang
        by_target[stats.get(f"block.{number}.name", "")] = number
    out, io = [], []
    for disk in disks:
        index = by_target.get(disk.target)
        if index is None:
            out.append(disk)
            continue
        prefix = f"block.{index}."
        out.append(replace(disk, capacity=stat_int(stats, prefix + "capacity", 0) or 0,
                           allocation=stat_int(stats, prefix + "allocation", 0) or 0))
        io.append((disk.target, DiskIO(stat_int(stats, prefix + "rd.bytes", 0) or 0,
                                       stat_int(stats, prefix + "wr.bytes", 0) or 0)))
    return tuple(out), tuple(io)


def _reason_number(stats: dict[str, str]) -> int | None:
    """state.reason, or None when it is absent or junk: a reason is worth showing, not failing a poll for."""
    value = stats.get("state.reason", "")
    return int(value) if value.isascii() and value.isdigit() else None


def _sum_stat(stats: dict[str, str], group: str, key: str) -> int:
    """Sum of `group.N.key` over the group's `group.count` entries."""
    return sum(stat_int(stats, f"{group}.{index}.{key}", 0) or 0
               for index in range(min(stat_int(stats, f"{group}.count", 0) or 0, len(stats))))


def _used_memory(stats: dict[str, str]) -> int | None:
    """What the guest uses, as its balloon driver reports: available minus unused (KiB)."""
    available = stat_int(stats, "balloon.available")
    unused = stat_int(stats, "balloon.unused")
    if available is None or unused is None:
        return None
    return max(0, available - unused)
