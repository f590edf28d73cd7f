"""Which SSH client +ssh URIs use: paramiko (the default) or the system ssh (virttui.drivers.openssh),
globally or per host, as the config's `ssh_client` says. Process-wide: set once at start (and by tests).
"""

from __future__ import annotations

from collections.abc import Mapping

from virttui.drivers.errors import InvalidURI

SSH_CLIENTS = ("paramiko", "openssh")  # the SSH transports: paramiko (the default) or the system ssh
_ssh_default = "paramiko"
_ssh_per_host: dict[str, str] = {}


def choose_ssh_clients(default: str = "paramiko", per_host: Mapping[str, str] | None = None) -> None:
    """Which SSH client +ssh URIs use from now on (the config's `ssh_client`, global and per host);
    InvalidURI, one line, for a value that is not one of SSH_CLIENTS."""
    global _ssh_default
    chosen = dict(per_host or {})
    for uri, value in [("", default), *chosen.items()]:
        if value not in SSH_CLIENTS:
            raise InvalidURI(f"{uri + ': ' if uri else ''}ssh_client {value!r} is not one of {', '.join(SSH_CLIENTS)}")
    _ssh_default = default
    _ssh_per_host.clear()
    _ssh_per_host.update(chosen)


def ssh_client_for(uri: str) -> str:
    """The SSH client chosen for this URI (as configured): its host's own choice, else the global one."""
    return _ssh_per_host.get(uri, _ssh_default)
