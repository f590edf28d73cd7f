"""A scripted transport that answers a lease cleanup's agent stream."""

from __future__ import annotations

import json

from virttui.drivers.transport import LineStream, Transport
from virttui.locks.agentrunner import AgentRunner
from virttui.locks.hostleases import HostLeaseManager
from virttui.locks.model import LockConfig
from virttui.locks.naming import sanlock_lease_name

DIR = "/var/lib/libvirt/sanlock"


class ScriptedStream(LineStream):
    def __init__(self, lines: list[str], status: int | None) -> None:
        self.lines = list(lines)
        self.status = status
        self.closed = False

    def readline(self) -> str:
        return self.lines.pop(0) if self.lines else ""

    def exit_status(self) -> int | None:
        return self.status

    def close(self) -> None:
        self.closed = True


NAMES = [sanlock_lease_name(f"/images/{i}.img") for i in range(3)]


class ScriptedTransport(Transport):
    def __init__(self, lines: list[str], status: int | None = 0) -> None:
        self.stream_ = ScriptedStream(lines, status)
        self.argvs: list[list[str]] = []

    def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
        raise AssertionError("a cleanup streams; it does not wait for the whole output")

    def stream(self, argv):  # noqa: ANN001, ANN201
        raise AssertionError("a cleanup ends: it runs in a pooled session, not an event channel")

    def run_lines(self, argv, *, line_timeout):  # noqa: ANN001, ANN201
        assert line_timeout, "a remote cleanup must not wait for ever on a silent host"
        self.argvs.append(list(argv))
        return self.stream_


def outcome(name: str, removed: bool = True, reason: str = "") -> str:
    return json.dumps({"name": name, "path": f"{DIR}/{name}", "removed": removed, "reason": reason}) + "\n"


def manager(transport: Transport) -> HostLeaseManager:
    config = LockConfig(manager="sanlock", auto_disk_leases=True, disk_lease_dir=DIR, host_id=1)
    return HostLeaseManager(config, AgentRunner(transport))
