"""Opening an SSH connection: host keys checked strictly against known_hosts, and a dead peer noticed.

Imports paramiko: only virttui.drivers.ssh imports this module (see its docstring).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable

import paramiko

from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.knownhosts import lists_key, load_known_hosts
from virttui.drivers.sshauth import AuthClient
from virttui.drivers.sshhostkeys import (
    AcceptUnverifiedKey,
    HostKeyChanged,
    RefuseUnknownKey,
    UnknownHostKey,
    append_known_host,
    fingerprint,
    known_host_name,
)
from virttui.drivers.sshsocket import (
    DEAD_PEER_SECONDS,
    KEEPALIVE_SECONDS,
    detect_dead_peers,
    open_tcp,
    prompt_ack_transport,
)
from virttui.drivers.sshtarget import SSHTarget

log = logging.getLogger("virttui.drivers.ssh")  # the SSH transport's log, as its operators know it

class _AcceptUnverified(AcceptUnverifiedKey):
    """no_verify=1 or StrictHostKeyChecking no: AcceptUnverifiedKey, its warning naming what chose it."""

    def __init__(self, revoked: frozenset[str], reason: str) -> None:
        super().__init__(revoked)
        self.reason = reason

    def missing_host_key(self, client, hostname, key):  # noqa: ANN001, ANN201 - paramiko's signature
        if key.get_base64() in self.revoked:
            RefuseUnknownKey.missing_host_key(self, client, hostname, key)
        log.warning("accepting the unverified host key of %s (%s)", hostname, self.reason)


class _AcceptNewKey(RefuseUnknownKey):
    """StrictHostKeyChecking accept-new: a host with no key on file has its key saved (as ssh does,
    before authenticating); a changed key is still refused (paramiko never asks a policy about one),
    a revoked one never passes."""

    def __init__(self, revoked: frozenset[str], name: str, save_to: str, label: str, hashed: bool) -> None:
        super().__init__(revoked)
        self.name = name
        self.save_to = save_to
        self.label = label
        self.hashed = hashed  # HashKnownHosts

    def missing_host_key(self, client, hostname, key):  # noqa: ANN001, ANN201
        if key.get_base64() in self.revoked:
            super().missing_host_key(client, hostname, key)
        try:
            append_known_host(UnknownHostKey(self.name, key, self.save_to, hashed=self.hashed))
        except OSError as exc:  # as ssh: the key is taken for this connection, and asked about next time
            log.warning("cannot add the host key of %s to %s: %s", self.label, self.save_to, exc.strerror or exc)
            return
        log.warning("added the new host key %s %s of %s to %s (StrictHostKeyChecking accept-new)",
                    key.get_name(), fingerprint(key), self.label, self.save_to)


def _policy(target: SSHTarget, name: str, revoked: frozenset[str], label: str) -> RefuseUnknownKey:
    if target.strict == "no":
        return _AcceptUnverified(revoked, target.strict_reason or "no_verify=1")
    if target.strict == "accept-new":
        return _AcceptNewKey(revoked, name, target.known_hosts, label, target.hash_known_hosts)
    return RefuseUnknownKey(revoked)


def _load_known_hosts(client: paramiko.SSHClient, target: SSHTarget, lookup_name: str) -> frozenset[str]:
    """Every known_hosts file's keys for the client (with no_verify too: a known host's key is still
    checked); the base64 blobs of the keys they revoke. With HostKeyAlias, only the alias's keys count,
    put under the name paramiko looks the host up by."""
    keys = paramiko.HostKeys() if target.host_key_alias else client.get_host_keys()
    revoked: set[str] = set()
    for path in _existing(target):
        try:
            revoked |= load_known_hosts(path, keys)
        except OSError as exc:
            raise ConnectionFailed(f"{path}: cannot read known hosts: {exc.strerror or exc}") from None
    if target.host_key_alias:
        for key_type, key in (keys.lookup(target.host_key_alias) or {}).items():
            client.get_host_keys().add(lookup_name, key_type, key)
    return frozenset(revoked)


def _existing(target: SSHTarget) -> list[str]:
    return [path for path in target.known_files if os.path.exists(path)]


def _files_named(target: SSHTarget) -> str:
    """The known_hosts files to name in an error: those that exist, else the one a key is saved to."""
    return ", ".join(_existing(target)) or target.known_hosts


def _listed(target: SSHTarget, name: str, key: paramiko.PKey) -> bool:
    for path in _existing(target):
        try:
            if lists_key(path, name, key):
                return True
        except OSError:
            pass
    return False


def open_client(uri: str, target: SSHTarget, timeout: float, listed_key: paramiko.PKey | None = None, *,
                way: Callable[[], object] | None = None, label: str = "") -> paramiko.SSHClient:
    """A client connected to target, each step given up after `timeout` seconds (the TCP connect and
    banner after ConnectTimeout, where the config sets one); UnknownHostKey where the host's key is not
    on file and StrictHostKeyChecking asks. `uri` starts every error. listed_key: a key known_hosts lists
    for the host beside another of its type, which paramiko alone would call changed: the one key
    to expect on a second try. way: opens the way there when it is not a TCP connection of its own (a
    channel forwarded by a jump host, a ProxyCommand), once per try; label: the host as the trust
    dialog names it."""
    lookup_name = known_host_name(target.address, target.port)  # paramiko looks the key up by this name
    name = target.host_key_alias or lookup_name  # known_hosts lists it by this one, as ssh does
    # the certificates and IdentityAgent's keys, offered after the key files (sshauth)
    client = AuthClient(target, label or target.host)
    revoked = _load_known_hosts(client, target, lookup_name)
    if listed_key is not None:  # in place of the one of its type paramiko kept: the rest still counts
        known = client.get_host_keys().lookup(lookup_name)
        if known is None:
            client.get_host_keys().add(lookup_name, listed_key.get_name(), listed_key)
        else:
            known[listed_key.get_name()] = listed_key
    policy = _policy(target, name, revoked, label or name)
    client.set_missing_host_key_policy(policy)
    connect_timeout = target.connect_timeout or timeout
    sock = way() if way is not None else None  # its errors are the caller's to word
    try:
        if sock is None:
            sock = open_tcp(target.address, target.port, connect_timeout)
        client.connect(
            target.address, port=target.port, username=target.user,
            # paramiko takes a list of files too (its docs); types-paramiko says str only
            key_filename=list(target.key_files) or None,  # type: ignore[arg-type]
            timeout=connect_timeout,
            banner_timeout=connect_timeout, auth_timeout=timeout, channel_timeout=timeout,
            allow_agent=True,  # the key source: no agent's keys under IdentitiesOnly (sshauth.key_source)
            look_for_keys=not target.key_files,
            sock=sock,  # type: ignore[arg-type]  # a Channel or ProxyCommand serves as one
            transport_factory=prompt_ack_transport,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        if listed_key is None and _listed(target, name, exc.key):
            return open_client(uri, target, timeout, listed_key=exc.key, way=way, label=label)
        raise HostKeyChanged(
            f"{uri}: the SSH host key of {name} has CHANGED "
            f"(now {exc.key.get_name()} {fingerprint(exc.key)}); "
            f"refusing to connect. If the change is expected, remove the old key from {_files_named(target)}"
        ) from None
    except paramiko.AuthenticationException:
        client.close()
        raise ConnectionFailed(f"{uri}: SSH authentication failed for user {target.user}") from None
    except paramiko.SSHException as exc:
        client.close()
        if policy.revoked_seen:
            raise HostKeyChanged(f"{uri}: the SSH host key of {name} is marked @revoked in "
                                 f"{_files_named(target)}; refusing to connect") from None
        if policy.rejected is not None and target.strict == "yes":  # refused without asking, as ssh does
            raise ConnectionFailed(
                f"{uri}: the SSH host key of {name} ({policy.rejected.get_name()} {fingerprint(policy.rejected)}) "
                f"is not in {_files_named(target)}, and StrictHostKeyChecking yes refuses unknown keys") from None
        if policy.rejected is not None:
            raise UnknownHostKey(name, policy.rejected, target.known_hosts, label,
                                 hashed=target.hash_known_hosts) from None
        raise ConnectionFailed(f"{uri}: SSH error: {exc}") from None
    except (OSError, EOFError, ValueError) as exc:  # ValueError: getaddrinfo's UnicodeError on a bad name
        client.close()
        reason = "timed out" if isinstance(exc, (socket.timeout, TimeoutError)) else (
            getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
        raise ConnectionFailed(f"{uri}: cannot connect to {lookup_name}: {reason}") from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(target.alive_interval or KEEPALIVE_SECONDS)
        # ServerAliveCountMax unanswered keepalives end ssh's connection; here the kernel ends it after as long
        detect_dead_peers(transport.sock, target.alive_interval * target.alive_count_max if target.alive_interval
                          else DEAD_PEER_SECONDS)
    return client
