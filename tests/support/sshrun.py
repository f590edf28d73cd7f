"""Each SSH test a run of its own: nothing resolved from an ssh config, nothing warned about yet."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from virttui.drivers.sshauth import forget_warnings as forget_auth_warnings
from virttui.drivers.sshfallback import forget_warnings
from virttui.drivers.sshtarget import forget_resolutions


@contextmanager
def fresh_ssh_run() -> Iterator[None]:
    forget_resolutions()
    forget_warnings()
    forget_auth_warnings()
    try:
        yield
    finally:
        forget_resolutions()
        forget_warnings()
        forget_auth_warnings()
