"""libvirt's configuration syntax (src/util/virconf.c) and the lock settings read with it.

`name = value` entries, one per line or separated by `;`; values are integers,
strings in single, double or triple double quotes, or `[ lists, ]` that may
span lines (with no comments inside); `#` starts a comment after a value or on
a line of its own. Errors name the file and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeVar, cast

from virttui.locks.model import DEFAULT_LEASE_DIR, MAX_HOST_ID, LockConfig

Value = int | str | list
_T = TypeVar("_T")


class LibvirtConfError(ValueError):
    """A config file libvirt itself would refuse; str() is `FILE:LINE: problem`."""


_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # virConfParseName: a letter, then letters, digits, '_'
_DIGITS = re.compile(r"[0-9]+")
BLANKS = " \t"
EOLS = "\n\r"  # virconf.c's IS_EOL: a lone '\r' ends a line too
MAX_LIST_DEPTH = 64  # no lock setting is a list at all; deeper nesting would only exhaust the stack


class Negative(int):
    """A number written with '-' (libvirt keeps it as a signed long long): no bool or unsigned setting takes it,
    even -0."""


@dataclass
class _Cursor:
    text: str
    where: str
    pos: int = 0
    line: int = 1

    def error(self, message: str) -> LibvirtConfError:
        return LibvirtConfError(f"{self.where}:{self.line}: {message}")

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def advance(self, count: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + count)
        self.pos += count

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.advance()

    def skip_to_eol(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] not in EOLS:
            self.pos += 1


def parse_libvirt_conf(text: str, where: str = "config") -> dict[str, Value]:
    """Every entry of a libvirt config file, read as virconf.c's virConfParse reads it (checked
    against libvirt itself by tests/unit/test_libvirtconf_reference.py). A name set twice keeps its
    first value: virConfGetValue returns the first entry it finds (the later one is still parsed,
    so its syntax errors are reported)."""
    cur = _Cursor(text, where)
    entries: dict[str, Value] = {}
    while cur.pos < len(text):
        _statement(cur, entries)
        _separator(cur)
    return entries


def _statement(cur: _Cursor, entries: dict[str, Value]) -> None:
    """`name = value [# comment]`, or a comment line (virConfParseStatement)."""
    cur.skip(BLANKS + EOLS)
    if cur.peek() == "#":
        cur.skip_to_eol()
        return
    match = _NAME.match(cur.text, cur.pos)
    if not match:  # also a file of nothing but blank lines: libvirt refuses that too
        raise cur.error(f"expecting a name, got {cur.peek()!r}" if cur.peek() else "expecting a name at end of file")
    name = match.group()
    cur.advance(len(name))
    cur.skip(BLANKS)
    if cur.peek() != "=":
        raise cur.error(f"expecting an assignment ('=') after {name}")
    cur.advance()
    entries.setdefault(name, _value(cur))
    cur.skip(BLANKS)
    if cur.peek() == "#":
        cur.skip_to_eol()


def _separator(cur: _Cursor) -> None:
    """The end of a line or a ';' between statements (virConfParseSeparator)."""
    cur.skip(BLANKS)
    if not cur.peek():
        return
    if cur.peek() in EOLS:
        cur.skip(BLANKS + EOLS)
    elif cur.peek() == ";":
        cur.advance()
        cur.skip(BLANKS + EOLS)
    else:
        raise cur.error(f"expecting a separator (end of line or ';'), got {cur.peek()!r}")


def _value(cur: _Cursor, depth: int = 0) -> Value:
    """A string, a number or a list (virConfParseValue); inside a list, no comments."""
    cur.skip(BLANKS)
    char = cur.peek()
    if char == "[":
        return _list(cur, depth)
    if cur.text.startswith('"""', cur.pos) and cur.pos + 6 < len(cur.text):
        end = cur.text.find('"""', cur.pos + 3)
        if end < 0:  # libvirt names the line it stopped scanning on, two characters before the end
            cur.advance(max(0, len(cur.text) - 2 - cur.pos))
            raise cur.error("unterminated string")
        value = cur.text[cur.pos + 3:end]
        cur.advance(end + 3 - cur.pos)
        return value
    if char in ("'", '"'):
        end = cur.pos + 1
        while end < len(cur.text) and cur.text[end] not in (char, "\n", "\r"):
            end += 1
        if end >= len(cur.text) or cur.text[end] != char:
            raise cur.error("unterminated string")
        value = cur.text[cur.pos + 1:end]
        cur.advance(end + 1 - cur.pos)
        return value
    if char and (char in "+-" or char.isascii() and char.isdigit()):
        return _number(cur)
    raise cur.error(f"expecting a value, got {char!r}" if char else "expecting a value at end of file")


def _list(cur: _Cursor, depth: int) -> list:
    if depth >= MAX_LIST_DEPTH:
        raise cur.error(f"lists nested more than {MAX_LIST_DEPTH} deep")
    cur.advance()
    items: list = []
    cur.skip(BLANKS + EOLS)
    if cur.peek() and cur.peek() != "]":
        items.append(_value(cur, depth + 1))
        cur.skip(BLANKS + EOLS)
    while cur.peek() and cur.peek() != "]":
        if cur.peek() != ",":
            raise cur.error(f"expecting a separator in list, got {cur.peek()!r}")
        cur.advance()
        cur.skip(BLANKS + EOLS)
        if cur.peek() == "]":
            break
        items.append(_value(cur, depth + 1))
        cur.skip(BLANKS + EOLS)
    if cur.peek() != "]":
        raise cur.error("list is not closed with ]")
    cur.advance()
    return items


def _number(cur: _Cursor) -> int:
    sign = cur.peek() if cur.peek() in "+-" else ""
    match = _DIGITS.match(cur.text, cur.pos + len(sign))
    if not match:
        raise cur.error("unterminated number")
    digits = match.group()
    # libvirt keeps a (long long): anything longer is out of range (and int() refuses > 4300 digits)
    number = int(digits) if len(digits.lstrip("0")) <= 20 else None
    if number is None or number >= 2**64 or (sign == "-" and number > 2**63):
        shown = sign + digits
        raise cur.error(f"number out of range: {shown[:30]}{'…' if len(shown) > 30 else ''}")
    cur.advance(len(sign) + len(digits))
    return Negative(-number) if sign == "-" else number


QEMU_CONF = "/etc/libvirt/qemu.conf"
SANLOCK_CONF = "/etc/libvirt/qemu-sanlock.conf"
LOCKD_CONF = "/etc/libvirt/qemu-lockd.conf"
DEFAULT_LOCKD_DIR = ""  # lockd's file_lockspace_dir has no default: it is off unless set


def _typed(entries: dict[str, Value], name: str, kind: type[_T], where: str, default: object) -> _T:
    value = entries.get(name, default)
    if kind is bool:  # as libvirt's virConfGetValueBool: unsigned, 0 or 1
        if not isinstance(value, int) or isinstance(value, Negative) or value not in (0, 1):
            raise LibvirtConfError(f"{where}: {name} must be 0 or 1")
        return cast(_T, bool(value))  # kind is bool: _T is bool
    if kind is int and isinstance(value, Negative):  # every number setting read here is unsigned (UInt)
        raise LibvirtConfError(f"{where}: {name} must not be negative, not {value}")
    if not isinstance(value, kind):
        raise LibvirtConfError(f"{where}: {name} must be {'a string' if kind is str else 'a number'}")
    return value


def _check_ranges(san: dict[str, Value], lockd_entries: dict[str, Value]) -> None:
    """Values libvirt would refuse or sanlock could not use: a relative lease directory would have
    virttui scan (and clean) whatever directory it runs in, so it is an error, not a guess."""
    lease_dir = san.get("disk_lease_dir")
    if isinstance(lease_dir, str) and not lease_dir.startswith("/"):
        raise LibvirtConfError(f"{SANLOCK_CONF}: disk_lease_dir must be an absolute path, not {lease_dir!r}")
    lockspace_dir = lockd_entries.get("file_lockspace_dir")
    if isinstance(lockspace_dir, str) and lockspace_dir and not lockspace_dir.startswith("/"):
        raise LibvirtConfError(f"{LOCKD_CONF}: file_lockspace_dir must be an absolute path, not {lockspace_dir!r}")
    host_id = san.get("host_id")
    if isinstance(host_id, int) and not 0 <= host_id <= MAX_HOST_ID:
        raise LibvirtConfError(f"{SANLOCK_CONF}: host_id must be 1 to {MAX_HOST_ID}, not {host_id}")
    io_timeout = san.get("io_timeout")
    if isinstance(io_timeout, int) and io_timeout < 0:
        raise LibvirtConfError(f"{SANLOCK_CONF}: io_timeout must not be negative")


def lock_config(qemu: str | None, sanlock: str | None, lockd: str | None) -> LockConfig:
    """The host's lock settings from the three files' texts (None: the file does not exist)."""
    qemu_entries = parse_libvirt_conf(qemu, QEMU_CONF) if qemu else {}
    manager = _typed(qemu_entries, "lock_manager", str, QEMU_CONF, "nop") or "nop"
    san = parse_libvirt_conf(sanlock, SANLOCK_CONF) if sanlock else {}
    lockd_entries = parse_libvirt_conf(lockd, LOCKD_CONF) if lockd else {}
    _check_ranges(san, lockd_entries)
    # each plugin has its own auto_disk_leases: sanlock's is off unless set, virtlockd's on
    auto = bool(_typed(lockd_entries, "auto_disk_leases", bool, LOCKD_CONF, 1) if manager == "lockd" else
                _typed(san, "auto_disk_leases", bool, SANLOCK_CONF, 0))
    device_dirs = [_typed(lockd_entries, key, str, LOCKD_CONF, "") for key in ("lvm_lockspace_dir",
                                                                                "scsi_lockspace_dir")]
    return LockConfig(
        manager=str(manager),
        auto_disk_leases=auto,
        disk_lease_dir=str(_typed(san, "disk_lease_dir", str, SANLOCK_CONF, DEFAULT_LEASE_DIR)),
        host_id=int(_typed(san, "host_id", int, SANLOCK_CONF, 0)),
        require_lease_for_disks=bool(_typed(san, "require_lease_for_disks", bool, SANLOCK_CONF,
                                            int(not san.get("auto_disk_leases", 0)))),
        io_timeout=int(_typed(san, "io_timeout", int, SANLOCK_CONF, 0)),
        file_lockspace_dir=str(_typed(lockd_entries, "file_lockspace_dir", str, LOCKD_CONF, DEFAULT_LOCKD_DIR)),
        device_lockspaces=any(device_dirs),
    )
