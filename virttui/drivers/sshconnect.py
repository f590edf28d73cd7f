"""Opening an SSH connection: host keys checked strictly against known_hosts, and a dead peer noticed.

Imports paramiko: only virttui.drivers.ssh imports this module (see its docstring).
"""

from __future__ import annotations

import os
import socket

import paramiko

from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.knownhosts import lists_key, load_known_hosts
from virttui.drivers.sshhostkeys import (
    AcceptUnverifiedKey,
    HostKeyChanged,
    RefuseUnknownKey,
    UnknownHostKey,
    fingerprint,
    known_host_name,
)
from virttui.drivers.sshtarget import SSHTarget

KEEPALIVE_SECONDS = 15


# A network path that silently drops packets (a VPN or NAT entry gone, a laptop that changed
# networks) never resets the connection: paramiko's keepalives pile up unacknowledged and TCP
# retries them for ~15 minutes, every command timing out meanwhile. The kernel gives up on such a
# peer after DEAD_PEER_SECONDS instead; the transport then ends, and the next poll reconnects.
DEAD_PEER_SECONDS = 45


def _detect_dead_peers(sock: object) -> None:
    """TCP keepalive probes on an idle connection and a bound on unacknowledged data (Linux)."""
    if not isinstance(sock, socket.socket):
        return  # a ProxyCommand's pipe: its own process deals with the network
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_SECONDS), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 4),
                        ("TCP_USER_TIMEOUT", DEAD_PEER_SECONDS * 1000)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        try:
            sock.setsockopt(level, option, value)
        except OSError:  # not TCP (a unix socket), or an option this kernel lacks
            pass


def _listed(target: SSHTarget, name: str, key: paramiko.PKey) -> bool:
    try:
        return lists_key(target.known_hosts, name, key)
    except OSError:
        return False


def open_client(uri: str, target: SSHTarget, timeout: float,
                listed_key: paramiko.PKey | None = None) -> paramiko.SSHClient:
    """A client connected to target (of the URI `uri`), each step given up after `timeout` seconds;
    UnknownHostKey where the host's key is not in known_hosts. listed_key: a key known_hosts lists
    for the host beside another of its type, which paramiko alone would call changed: the one key
    to expect on a second try."""
    name = known_host_name(target.address, target.port)
    client = paramiko.SSHClient()
    revoked: frozenset[str] = frozenset()
    if os.path.exists(target.known_hosts):  # with no_verify too: a known host's key is still checked
        try:
            revoked = load_known_hosts(target.known_hosts, client.get_host_keys())
        except OSError as exc:
            raise ConnectionFailed(f"{target.known_hosts}: cannot read known hosts: "
                                   f"{exc.strerror or exc}") from None
    if listed_key is not None:  # in place of the one of its type paramiko kept: the rest still counts
        known = client.get_host_keys().lookup(name)
        if known is None:
            client.get_host_keys().add(name, listed_key.get_name(), listed_key)
        else:
            known[listed_key.get_name()] = listed_key
    policy: paramiko.MissingHostKeyPolicy = RefuseUnknownKey(revoked) if target.verify else AcceptUnverifiedKey(revoked)
    client.set_missing_host_key_policy(policy)
    try:
        client.connect(
            target.address, port=target.port, username=target.user,
            # paramiko takes a list of files too (its docs); types-paramiko says str only
            key_filename=list(target.key_files) or None,  # type: ignore[arg-type]
            timeout=timeout,
            banner_timeout=timeout, auth_timeout=timeout, channel_timeout=timeout,
            allow_agent=True, look_for_keys=not target.key_files,
        )
    except paramiko.BadHostKeyException as exc:
        client.close()
        if listed_key is None and _listed(target, name, exc.key):
            return open_client(uri, target, timeout, listed_key=exc.key)
        raise HostKeyChanged(
            f"{uri}: the SSH host key of {name} has CHANGED "
            f"(now {exc.key.get_name()} {fingerprint(exc.key)}); "
            f"refusing to connect. If the change is expected, remove the old key from {target.known_hosts}"
        ) from None
    except paramiko.AuthenticationException:
        client.close()
        raise ConnectionFailed(f"{uri}: SSH authentication failed for user {target.user}") from None
    except paramiko.SSHException as exc:
        client.close()
        if isinstance(policy, RefuseUnknownKey) and policy.revoked_seen:
            raise HostKeyChanged(f"{uri}: the SSH host key of {name} is marked @revoked in "
                                 f"{target.known_hosts}; refusing to connect") from None
        if isinstance(policy, RefuseUnknownKey) and policy.rejected is not None:
            raise UnknownHostKey(name, policy.rejected, target.known_hosts) from None
        raise ConnectionFailed(f"{uri}: SSH error: {exc}") from None
    except (OSError, EOFError, ValueError) as exc:  # ValueError: getaddrinfo's UnicodeError on a bad name
        client.close()
        reason = "timed out" if isinstance(exc, (socket.timeout, TimeoutError)) else (
            getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
        raise ConnectionFailed(f"{uri}: cannot connect to {name}: {reason}") from None
    transport = client.get_transport()
    if transport is not None:
        transport.set_keepalive(KEEPALIVE_SECONDS)
        _detect_dead_peers(transport.sock)
    return client

