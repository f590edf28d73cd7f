"""A lease directory's files as last read, re-read only where they changed.

Shared by every host of this process that sees one directory (see readers.ELECTION): the host
whose turn it is to read refreshes it, and each host builds its view from it with what its own
lock daemon says, so views of one directory cost the storage one reader's reads.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import field

from virttui.locks.agent import RACY_MARK
from virttui.locks.model import LeaseFile
from virttui.records import record


@record
class CachedFile:
    # the agent's digest of (name, size, mtime, ctime, inode): another means re-read. Not compared:
    # a file read again with the same contents (a racy read's next pass) is the same file
    fingerprint: str = field(compare=False)
    file: LeaseFile  # as read: `held` is decided per poll, from the daemons
    inode: tuple[int, int, int] | None = None  # (major, minor, inode): what virtlockd's kernel lock names


class LeaseDirCache:
    """Thread-safe. `version` moves whenever a file came, went or was read with other contents."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.files: dict[str, CachedFile] = {}
        self.version = 0
        self.last_pass: float | None = None  # monotonic time of the last pass over the directory
        self.as_of = 0.0  # wall time of that pass
        self.reads = 0  # leader records read into this cache (storage reads)
        self.moves = 0  # times a host found this directory's lockspace changed: every host checks its own
        self._rotation = 0
        self._pending: set[str] = set()  # listed, but never read into this cache: read at the next pass
        self.unread = 0  # files the last pass listed as changed but left unread: the next poll goes on

    def due(self, now: float, interval: float) -> bool:
        """A pass is due: none yet, the last left files unread (its read budget ran out), or interval passed."""
        return self.last_pass is None or self.unread > 0 or now - self.last_pass >= interval

    def known(self) -> set[str]:
        """The fingerprints a listing may match (a racy read's can't: left out, not sent)."""
        return {cached.fingerprint for cached in self.files.values()
                if cached.fingerprint and not cached.fingerprint.endswith(RACY_MARK)}

    def rotation(self, count: int) -> list[str]:
        """The next `count` names, in name order, round the directory: read again whatever their
        fingerprint says (a write that kept size and mtime, an NFS attribute cache that hid one)."""
        names = sorted(self.files)
        pending, self._pending = sorted(self._pending), set()
        if not names or count <= 0:
            return pending
        start = self._rotation % len(names)
        picked = (names[start:] + names[:start])[:count]
        self._rotation = (start + len(picked)) % len(names)
        return pending + picked

    def update(self, entries: Iterable[dict], decode: Callable[[dict, str], LeaseFile], *, now: float,
               wall: float, reads: int = 0) -> None:
        """A pass's entries: {"name", "fp"} for a file unchanged, with "head" or "error" for one read."""
        files: dict[str, CachedFile] = {}
        changed = False
        unread = 0
        for entry in entries:
            name = str(entry.get("name", ""))
            fingerprint = str(entry.get("fp", ""))
            old = self.files.get(name)
            if entry.get("pending"):  # over this pass's read budget: as it was, read at the next poll
                unread += 1
                if old is not None:
                    files[name] = old
                continue
            if "head" not in entry and "error" not in entry and "ino" not in entry:
                if old is None or old.fingerprint != fingerprint:
                    self._pending.add(name)  # known to a pass that raced another: read at the next pass
                    continue
                files[name] = old
                continue
            dev, ino = entry.get("dev"), entry.get("ino")
            inode = (int(dev[0]), int(dev[1]), int(ino)) if isinstance(dev, list) and len(dev) == 2 and ino else None
            cached = CachedFile(fingerprint, decode(entry, name), inode)
            changed = changed or old != cached
            files[name] = cached
        if changed or files.keys() != self.files.keys():
            self.version += 1
        self.files = files
        self.unread = unread
        self.last_pass, self.as_of = now, wall
        self.reads += reads
