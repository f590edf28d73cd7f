"""The seam between a driver and its host's lock manager: what every lease manager offers.

HostLeaseManager (a real host's sanlock or virtlockd directory, through its transport) and
EmbeddedLeaseStore (the embedded test hosts' own leases) both implement it; drivers hand one out
by lease_manager(), and nothing above the drivers needs to know which it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from virttui.locks.model import CleanupOutcome, CleanupReport, LeaseDirSnapshot

ProgressCallback = Callable[[int, int, CleanupOutcome], None]


@runtime_checkable
class LeaseManager(Protocol):
    directory: str

    def snapshot(self) -> LeaseDirSnapshot:
        """Every file of the directory, read afresh: `leases status`, a dry run, a cleanup preview."""

    def poll_snapshot(self) -> LeaseDirSnapshot:
        """A poll's view: what the daemon holds now, and files as read at the last pass over them."""

    def cleanup(self, names: Iterable[str] | None = None, *, dry_run: bool = False,
                progress: ProgressCallback | None = None) -> CleanupReport:
        """Remove each named (or every) unused lease file, only while holding its lease."""

    def close(self) -> None:
        """The host went away: give up reading its directory."""
