"""SSH host keys: strict checking against known_hosts, and what the operator is shown and accepts.

An unknown key raises UnknownHostKey carrying the key, so the UI can show its fingerprint and save
it (append_known_host) only if the operator accepts; a changed or revoked key is HostKeyChanged,
always refused. Imports paramiko: only virttui.drivers.ssh imports this module (see its docstring).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os

import paramiko

from virttui.drivers.errors import ConnectionFailed

log = logging.getLogger("virttui.drivers.ssh")  # the SSH transport's log, as its operators know it


class UnknownHostKey(ConnectionFailed):
    """The host presented a key known_hosts does not have; nothing was sent to it.

    host: the name the key is saved under in known_hosts; label: the host as the operator is shown
    it (a jump host: "bastion (jump to hv1)"), host by default; hashed: HashKnownHosts, the name is
    saved hashed."""

    def __init__(self, host: str, key: paramiko.PKey, known_hosts: str, label: str = "", *,
                 hashed: bool = False) -> None:
        self.host = host
        self.label = label or host
        self.key = key
        self.known_hosts = known_hosts
        self.hashed = hashed
        self.key_type = key.get_name()
        self.fingerprint = fingerprint(key)
        super().__init__(f"{self.label}: unknown SSH host key {key.get_name()} {fingerprint(key)}; "
                         f"accept it in the console or add it to {known_hosts}")


class HostKeyChanged(ConnectionFailed):
    """The host's key differs from the one in known_hosts: possibly an attack, always refused."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_host_name(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


class RefuseUnknownKey(paramiko.MissingHostKeyPolicy):
    """Strict checking: remember the unknown key and refuse it (a revoked one is never offered for trust)."""

    def __init__(self, revoked: frozenset[str] = frozenset()) -> None:
        self.rejected: paramiko.PKey | None = None
        self.revoked = revoked
        self.revoked_seen = False

    def missing_host_key(self, client, hostname, key):  # noqa: ANN001, ANN201 - paramiko's signature
        if key.get_base64() in self.revoked:
            self.revoked_seen = True
        else:
            self.rejected = key
        raise paramiko.SSHException(f"unknown host key for {hostname}")


class AcceptUnverifiedKey(RefuseUnknownKey):
    """no_verify=1, as libvirt means it: a host with no key in known_hosts is accepted (not saved);
    a known host's key is still checked (paramiko asks a policy only about hosts it has no key for
    at all: a changed key, or one of a type not on file, is refused as CHANGED). A revoked key never
    passes."""

    def missing_host_key(self, client, hostname, key):  # noqa: ANN001, ANN201
        if key.get_base64() in self.revoked:
            super().missing_host_key(client, hostname, key)
        log.warning("accepting the unverified host key of %s (no_verify=1)", hostname)


def append_known_host(pending: UnknownHostKey) -> None:
    """Append the key the operator accepted to its known_hosts file, creating the file if needed;
    under HashKnownHosts its name as ssh writes it then (`|1|salt|hash`, a fresh salt each line), which
    paramiko's HostKeys and virttui's knownhosts look up as they look up a plain one."""
    path = pending.known_hosts
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", mode=0o700, exist_ok=True)
    name = paramiko.HostKeys.hash_host(pending.host) if pending.hashed else pending.host
    line = f"{name} {pending.key.get_name()} {pending.key.get_base64()}\n"
    with open(path, "a+b") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() > 0:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":  # a file edited by hand may end without one: never glue to its last line
                line = "\n" + line
        handle.write(line.encode("utf-8"))
