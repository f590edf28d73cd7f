"""Who reads a shared lease directory's files: one connected host per directory, per cycle.

Every host on a shared lease directory sees the same files, so one of them reading the leader
records is enough; the others report only what their own lock daemon holds, which costs the
storage nothing. The reader renews its claim with each poll; a reader that fails (its agent errs,
or it stops polling) gives way, and another host takes over at its next poll.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

from virttui.locks.dircache import LeaseDirCache
from virttui.records import record

DEFAULT_SLOW_INTERVAL = 30.0  # seconds between passes over the files of a directory
DEFAULT_FULL_INTERVAL = 600.0  # seconds within which every leader record is read again, changed or not
# Leader records a poll reads at most, and how fast: spaced out, sanlock's renewals on the same
# storage never queue behind a burst of them (docs/leases.md); the rest are read at the next polls.
DEFAULT_READ_RATE = 100.0
DEFAULT_READ_BUDGET = 200
MIN_CLAIM_SECONDS = 10.0  # a reader not heard from for this long (and 3 of its poll gaps) gives way


@record(frozen=False)
class _Claim:
    owner: object
    renewed: float
    gap: float = 0.0  # between the owner's last two renewals


class ReaderElection:
    """Thread-safe: hosts poll on worker threads."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # the console's policy (config [leases]), for every host that sets none of its own
        self.slow_interval = DEFAULT_SLOW_INTERVAL
        self.full_interval = DEFAULT_FULL_INTERVAL
        self.read_rate = DEFAULT_READ_RATE
        self.read_budget = DEFAULT_READ_BUDGET
        # hosts the console watches (0: not known, as in a one-shot command): with one, its first poll
        # reads its directory in the run that learns which directory it is (nobody else can share it)
        self.watched_hosts = 0
        self._claims: dict[Hashable, _Claim] = {}
        self._caches: dict[Hashable, LeaseDirCache] = {}
        self._members: dict[Hashable, set[int]] = {}  # id() of each host whose view comes from the cache
        self._lock = threading.Lock()

    def cache(self, key: Hashable, member: object = None) -> LeaseDirCache:
        """The files of the directory `key`, as its readers last read them; member's view comes from it."""
        with self._lock:
            found = self._caches.get(key)
            if found is None:
                found = self._caches[key] = LeaseDirCache()
            if member is not None:
                self._members.setdefault(key, set()).add(id(member))
            return found

    def adopt(self, key: Hashable, cache: LeaseDirCache, member: object) -> bool:
        """Files read before their directory's key was known become that key's, unless someone
        already has a cache of it."""
        with self._lock:
            if key in self._caches:
                return False
            self._caches[key] = cache
            self._members.setdefault(key, set()).add(id(member))
            return True

    def forget(self, key: Hashable) -> None:
        """A directory's cache and claim, whoever used them."""
        with self._lock:
            self._caches.pop(key, None)
            self._claims.pop(key, None)
            self._members.pop(key, None)

    def leave(self, member: object, key: Hashable | None = None) -> None:
        """member no longer reads `key` (or any directory): a cache nobody uses is dropped, so a host
        added later reads afresh rather than trusting files read before it was there."""
        self.release(member, key)
        with self._lock:
            for known in [k for k, ids in self._members.items() if id(member) in ids and key in (None, k)]:
                self._members[known].discard(id(member))
                if not self._members[known]:
                    del self._members[known]
                    self._caches.pop(known, None)

    def claim(self, key: Hashable, owner: object) -> bool:
        """Whether owner reads the directory `key` this cycle; renews its claim when it does."""
        now = self._clock()
        with self._lock:
            current = self._claims.get(key)
            if current is not None and current.owner is owner:
                current.gap, current.renewed = now - current.renewed, now
                return True
            if current is None or now - current.renewed > max(MIN_CLAIM_SECONDS, 3 * current.gap):
                self._claims[key] = _Claim(owner, now)
                return True
            return False

    def release(self, owner: object, key: Hashable | None = None) -> None:
        """owner gives up `key` (its read failed), or every directory it reads (its host went away)."""
        with self._lock:
            for known in [k for k, c in self._claims.items() if c.owner is owner and key in (None, k)]:
                del self._claims[known]

    def reader(self, key: Hashable) -> object | None:
        with self._lock:
            current = self._claims.get(key)
            return None if current is None else current.owner


ELECTION = ReaderElection()  # one per process: every host this console watches takes part
