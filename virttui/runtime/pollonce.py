"""One poll of one host, for the commands that poll once (status, leases status, top --batch)."""

from __future__ import annotations

from virttui.drivers.base import Driver
from virttui.drivers.errors import DriverError
from virttui.drivers.model import ConnectionState, Host, HostSnapshot


def poll_once(driver: Driver) -> HostSnapshot:
    """Connect and poll; a failure becomes a snapshot in error state."""
    try:
        driver.connect()
        return driver.poll()
    except DriverError as exc:
        return HostSnapshot(host=Host(uri=driver.uri, state=ConnectionState.ERROR, last_error=str(exc)))
