"""Where and as whom an SSH URI connects: the URI merged with ~/.ssh/config.

Imports paramiko (its ssh_config parser): only virttui.drivers.ssh imports this module (see its docstring).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import paramiko

from virttui.drivers.errors import InvalidURI
from virttui.drivers.uri import LibvirtURI

log = logging.getLogger("virttui.drivers.ssh")  # the SSH transport's log, as its operators know it


@dataclass(frozen=True)
class SSHTarget:
    """Where and as whom to connect, after the URI and ~/.ssh/config had their say."""

    host: str  # as written in the URI (known_hosts names it so)
    address: str  # HostName from ssh config, else host
    port: int
    user: str
    key_files: tuple[str, ...]
    known_hosts: str
    verify: bool


def resolve_target(uri: LibvirtURI, ssh_config_path: str | None = None) -> SSHTarget:
    """Merge the URI with ~/.ssh/config: the URI wins where it says something."""
    if not uri.host:
        raise InvalidURI(f"{uri.raw}: an ssh URI needs a host")
    config_path = ssh_config_path or os.path.expanduser("~/.ssh/config")
    entry: dict = {}
    if os.path.exists(config_path):
        try:
            entry = paramiko.SSHConfig.from_path(config_path).lookup(uri.host)
        except (OSError, paramiko.SSHException, ValueError) as exc:
            log.warning("ignoring %s: %s", config_path, exc)
    port = uri.port or _int(entry.get("port"), 22)
    if not 0 < port < 65536:  # else 70000 connects to 4464 and a huge one overflows in socket code
        raise InvalidURI(f"{config_path}: Port {entry.get('port')} for {uri.host} is not a port number")
    user = uri.user or entry.get("user") or _local_user()
    keys: list[str] = []
    if uri.param("keyfile"):
        keys.append(os.path.expanduser(uri.param("keyfile")))
    keys.extend(os.path.expanduser(path) for path in entry.get("identityfile", []) if os.path.exists(
        os.path.expanduser(path)))
    known = os.path.expanduser(uri.param("known_hosts") or "~/.ssh/known_hosts")
    verify = uri.param("no_verify", "0") not in ("1", "yes", "true")
    return SSHTarget(uri.host, entry.get("hostname", uri.host), port, user, tuple(keys), known, verify)


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root"
