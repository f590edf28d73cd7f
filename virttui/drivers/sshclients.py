"""Which SSH client +ssh URIs use: paramiko (the default) or the system ssh (virttui.drivers.openssh),
globally or per host, as the config's `ssh_client` says. Process-wide: set once at start (and by tests).

ssh_client_to_use adds the one automatic choice: a host its known_hosts files trust through an
`@cert-authority` line goes through the system ssh, which verifies host certificates (paramiko cannot).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from virttui.drivers.errors import InvalidURI
from virttui.drivers.uri import LibvirtURI

log = logging.getLogger("virttui.drivers.ssh")  # the SSH transport's log, as its operators know it

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


def ssh_client_to_use(uri: str, parsed: LibvirtURI) -> str:
    """The SSH client for this URI: the configured one (ssh_client_for), but "openssh" for a host
    that a known_hosts file it reads lists in an `@cert-authority` line (its name as those files list
    it: HostKeyAlias, else HostName or [HostName]:port), or one of its ProxyJump hosts that its own
    files list so, with one INFO line saying why. Where no ssh is installed, or a file can't be read
    (the paramiko transport then reports it), the configured one. The host and its jump hosts are
    resolved as its transport resolves them (sshtarget caches it: ssh -G runs once per host)."""
    chosen = ssh_client_for(uri)
    if chosen == "openssh":
        return chosen
    import os

    from virttui.drivers.knownhosts import cert_authority_line
    from virttui.drivers.sshhostkeys import known_host_name
    from virttui.drivers.sshresolve import find_ssh
    from virttui.drivers.sshroute import plan_route
    from virttui.drivers.sshtarget import resolve_target

    target = resolve_target(parsed)
    hops = plan_route(uri, target).hops if target.proxy_jump else ()  # a jump host's key is checked too
    for path, name in [(path, each.host_key_alias or known_host_name(each.address, each.port))
                       for each in (target, *(hop.target for hop in hops)) for path in each.known_files]:
        try:
            number = cert_authority_line(path, name) if os.path.exists(path) else None
        except OSError as exc:
            log.debug("%s: cannot read %s for @cert-authority lines: %s", uri, path, exc.strerror or exc)
            continue
        if number is None:
            continue
        if find_ssh() is None:
            log.warning("%s: %s:%d trusts a certificate authority for %s, but no OpenSSH client (ssh) is "
                        "installed to verify host certificates: only plain host keys are checked", uri, path,
                        number, name)
            return chosen
        log.info("%s: connecting with the OpenSSH client (ssh): %s:%d trusts a certificate authority for %s, "
                 "and only ssh verifies host certificates", uri, path, number, name)
        return "openssh"
    return chosen
