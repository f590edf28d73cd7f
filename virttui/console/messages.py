"""Messages that carry results from worker threads back to the UI thread (see virttui.console.workers)."""

from __future__ import annotations

from textual.message import Message

from virttui.console.workers import WorkResult
from virttui.drivers.model import Host, HostSnapshot
from virttui.locks.model import LeaseDirSnapshot


class HostPolled(Message):
    """A poll of one host finished with a snapshot."""

    def __init__(self, snapshot: HostSnapshot, seq: int = 0) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.seq = seq  # the poll's sequence number for its host


class HostFailed(Message):
    """A poll or connect of one host failed; `host` carries the error state."""

    def __init__(self, host: Host, seq: int = 0) -> None:
        super().__init__()
        self.host = host
        self.seq = seq


class ActionFinished(Message):
    """A lifecycle action ended; error is "" on success. `action`: its actiontable id."""

    def __init__(self, uri: str, uuid: str, name: str, action: str, error: str, loop: object = None) -> None:
        super().__init__()
        self.uri = uri
        self.uuid = uuid
        self.name = name
        self.action = action
        self.error = error
        self.loop = loop  # the host's poll loop it ran under: a host removed and added again has another


class EssentialFinished(WorkResult[object]):
    """An Essentials driver call ended (virttui.console.essentials: its tag says which)."""


class LeaseDirRead(WorkResult[LeaseDirSnapshot]):
    """A host's lease directory, read afresh for the cleanup preview; tag: (uri, its lease manager)."""


class FleetUpdated(Message):
    """The fleet changed; screens showing it should refresh."""


class HostChanged(Message):
    """A host's event stream reported a change: poll it now rather than at the next tick."""

    def __init__(self, uri: str) -> None:
        super().__init__()
        self.uri = uri
