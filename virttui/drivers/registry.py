"""Pick the driver for a URI."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from virttui.drivers.base import Driver
from virttui.drivers.errors import InvalidURI
from virttui.drivers.uri import LibvirtURI, parse_uri


def state_dir() -> str:
    """virttui's own state directory: $XDG_STATE_HOME/virttui, else ~/.local/state/virttui."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(state, "virttui")


def default_lease_dir() -> str:
    """Where embedded hosts keep leases unless the URI says lease_dir=…"""
    return os.path.join(state_dir(), "leases")


def open_driver(uri: str, *, clock: Callable[[], float] = time.monotonic) -> Driver:
    """A driver for this URI, not yet connected; InvalidURI when none fits."""
    parsed = parse_uri(uri)
    if parsed.is_test:
        from virttui.drivers.testdriver import TestDriver

        path, lease_dir, host_id = _test_host(uri, parsed)
        return TestDriver(uri, path, lease_dir=lease_dir, host_id=host_id, clock=clock)
    from virttui.drivers.virsh import open_virsh_driver

    return open_virsh_driver(uri, parsed, clock=clock)


def check_uri(uri: str) -> None:
    """InvalidURI for whatever open_driver would refuse, without making a driver (or reading
    ~/.ssh/config): the add-host dialog let such a URI through, and it failed only afterwards."""
    parsed = parse_uri(uri)
    if parsed.is_test:
        _test_host(uri, parsed)
    elif parsed.over_ssh and not parsed.host:
        raise InvalidURI(f"{uri}: an ssh URI needs a host")


def _test_host(uri: str, parsed: LibvirtURI) -> tuple[str, str, int | None]:
    """An embedded host's node file, lease directory and host_id override, as its URI gives them."""
    from virttui.assets import asset
    from virttui.locks.model import MAX_HOST_ID

    if parsed.host or parsed.transport:
        raise InvalidURI(f"{uri}: test URIs take no host or transport (test:///default or test:///ABS/PATH)")
    path = str(asset("demo", "hv1.xml")) if parsed.path in ("/default", "") else parsed.path
    host_id = parsed.param("host_id")
    if host_id and not (host_id.isascii() and host_id.isdigit() and 1 <= int(host_id) <= MAX_HOST_ID):
        raise InvalidURI(f"{uri}: host_id must be a number from 1 to {MAX_HOST_ID}")
    lease_dir = parsed.param("lease_dir")
    if lease_dir and not os.path.isabs(lease_dir):  # else it would be made wherever virttui was started
        raise InvalidURI(f"{uri}: lease_dir must be an absolute path")
    return path, lease_dir or default_lease_dir(), int(host_id) if host_id else None


class UnavailableDriver(Driver):
    """Stands in for a host whose URI could not be used, so the UI shows it in error."""

    def __init__(self, uri: str, error: str) -> None:
        self.uri = uri
        self.error = error

    def connect(self) -> None:
        raise InvalidURI(self.error)

    def close(self) -> None:
        pass

    def poll(self):  # noqa: ANN201 - never reached: connect always fails
        raise InvalidURI(self.error)

    def domain_xml(self, uuid: str) -> str:
        raise InvalidURI(self.error)

    def perform(self, uuid, action) -> None:  # noqa: ANN001
        raise InvalidURI(self.error)


def open_driver_or_placeholder(uri: str, *, clock: Callable[[], float] = time.monotonic) -> Driver:
    """Like open_driver, but a bad URI becomes a host that reports its error."""
    try:
        return open_driver(uri, clock=clock)
    except InvalidURI as exc:  # keyed by the URI as configured (remove, groups); shown masked (Host.label)
        return UnavailableDriver(uri, str(exc))
