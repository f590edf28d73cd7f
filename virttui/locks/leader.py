"""sanlock's on-disk leader record (src/leader.h), read and written directly.

Layout, little-endian, 200 bytes at the start of the lease's first sector:
magic, version, flags, sector_size (u32 each); num_hosts, max_hosts, owner_id,
owner_generation, lver (u64); space_name[48], resource_name[48]; timestamp,
unused1 (u64); checksum, unused2 (u32); write_id, write_generation,
write_timestamp (u64). The checksum is crc32c seeded with ~1 over the first
168 bytes, without a final inversion, as sanlock's leader_checksum() does.
"""

from __future__ import annotations

import struct

from virttui.locks.model import LeaderRecord

PAXOS_DISK_MAGIC = 0x06152010
DELTA_DISK_MAGIC = 0x12212010
PAXOS_DISK_VERSION = 0x00060004  # what sanlock 3.8 writes
DELTA_DISK_VERSION = 0x00030002
NAME_ID_SIZE = 48
LEADER_CHECKSUM_LEN = 168
_LAYOUT = struct.Struct("<IIII QQQQQ 48s48s QQ II QQQ")
LEADER_SIZE = _LAYOUT.size  # 200


class LeaderError(ValueError):
    """The bytes are not a sanlock leader record."""


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _crc32c_table()


def crc32c(seed: int, data: bytes) -> int:
    """Raw CRC-32C (Castagnoli) update, no pre- or post-inversion."""
    crc = seed & 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc


def leader_checksum(raw: bytes) -> int:
    return crc32c(0xFFFFFFFE, raw[:LEADER_CHECKSUM_LEN])


def _name(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_leader(raw: bytes, *, magic: int = PAXOS_DISK_MAGIC) -> LeaderRecord:
    """Decode a leader record; LeaderError on short data or a bad magic."""
    if len(raw) < LEADER_SIZE:
        raise LeaderError(f"short leader record ({len(raw)} bytes)")
    fields = _LAYOUT.unpack_from(raw)
    (found_magic, version, _flags, sector_size, _num_hosts, _max_hosts, owner_id, owner_gen, lver,
     space, resource, timestamp, _unused1, checksum, unused2, _wid, _wgen, _wts) = fields
    if found_magic != magic:
        raise LeaderError(f"bad magic 0x{found_magic:08x}")
    return LeaderRecord(
        magic=found_magic,
        version=version,
        owner_id=owner_id,
        owner_generation=owner_gen,
        lver=lver,
        space_name=_name(space),
        resource_name=_name(resource),
        timestamp=timestamp,
        io_timeout=unused2 >> 16,
        checksum_ok=checksum == leader_checksum(raw),
        sector_size=sector_size,
    )


def pack_leader(
    *,
    space_name: str,
    resource_name: str,
    owner_id: int = 0,
    owner_generation: int = 0,
    lver: int = 0,
    timestamp: int = 0,
    magic: int = PAXOS_DISK_MAGIC,
    version: int = PAXOS_DISK_VERSION,
    sector_size: int = 512,
    num_hosts: int = 2000,
    io_timeout: int = 10,
) -> bytes:
    """Encode a leader record padded to one 512-byte sector, checksum filled in."""
    for label, name in (("space", space_name), ("resource", resource_name)):
        if len(name.encode()) > NAME_ID_SIZE:
            raise LeaderError(f"{label} name longer than {NAME_ID_SIZE} bytes")
    fields = [
        magic, version, 0, sector_size, num_hosts, num_hosts, owner_id, owner_generation, lver,
        space_name.encode(), resource_name.encode(), timestamp, 0, 0, (io_timeout & 0xFFFF) << 16,
        owner_id, owner_generation, timestamp,
    ]
    raw = bytearray(_LAYOUT.pack(*fields))
    struct.pack_into("<I", raw, LEADER_CHECKSUM_LEN, leader_checksum(bytes(raw)))
    return bytes(raw).ljust(512, b"\0")
