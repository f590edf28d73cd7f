"""Client keys beyond the key files, as ssh offers them: the agent IdentityAgent names, and the user
certificates CertificateFile names, each with its private key.

paramiko's SSHClient tries its key files, then asks its `_agent` for keys (SSHClient._auth): AuthClient
hands it a KeySource of its own: the certificates, then the keys of the agent the config chose (none
under IdentitiesOnly, as before; paramiko would otherwise open SSH_AUTH_SOCK itself). An agent that
cannot be reached and a certificate that cannot be offered each cost one warning naming the host,
once per run for that host and path (not at every reconnect), and the connection goes on without
them, as ssh's does.

Imports paramiko: only virttui.drivers.ssh's modules import this one (see virttui.drivers.ssh).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Mapping, Sequence

import paramiko
from paramiko.agent import AgentSSH
from paramiko.message import Message
from paramiko.pkey import PublicBlob, UnknownKeyType

from virttui.drivers.sshtarget import SSHTarget

log = logging.getLogger("virttui.drivers.ssh")  # the SSH transport's log, as its operators know it

AGENT_TIMEOUT = 30.0  # an agent asking for confirmation (ssh-add -c) waits for a person
CERT_SUFFIX = "-cert.pub"
_CERT_TYPE_SUFFIX = "-cert-v01@openssh.com"

_warned: set[tuple[str, str]] = set()  # (host label, path) warned about in this run
_warned_lock = threading.Lock()


def _warn_once(label: str, path: str, message: str, *args: object) -> None:
    """log.warning(message, *args), the first time only for this host and path."""
    with _warned_lock:
        if (label, path) in _warned:
            return
        _warned.add((label, path))
    log.warning(message, *args)


def forget_warnings() -> None:
    """Warn again about every host and path (a new run, as far as warnings go)."""
    with _warned_lock:
        _warned.clear()


def agent_socket(setting: str, environ: Mapping[str, str] = os.environ) -> str | None:
    """The agent socket IdentityAgent (as sshtarget keeps it) names; None: no agent. `$VAR` and
    SSH_AUTH_SOCK are read now, as ssh reads them when it connects."""
    if setting.lower() == "none":
        return None
    if setting in ("", "SSH_AUTH_SOCK"):
        return environ.get("SSH_AUTH_SOCK") or None
    if setting.startswith("$"):
        return environ.get(setting[1:]) or None
    return setting


class _SocketAgent(paramiko.Agent):
    """paramiko's agent client on a socket of our choosing (paramiko.Agent reads SSH_AUTH_SOCK only)."""

    def __init__(self, conn: socket.socket) -> None:
        AgentSSH.__init__(self)  # not Agent's: it would open SSH_AUTH_SOCK
        self._connect(conn)  # type: ignore[attr-defined]  # asks the agent for its keys


def open_agent(path: str, label: str) -> paramiko.Agent | None:
    """The agent at `path` with its keys; None, after one warning naming the host and the socket,
    where it cannot be reached or does not answer as an agent (ssh goes on without it too)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.settimeout(AGENT_TIMEOUT)
        conn.connect(path)
        return _SocketAgent(conn)
    except (OSError, paramiko.SSHException, EOFError, ValueError) as exc:
        conn.close()
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        _warn_once(label, path, "%s: cannot use the ssh agent at %s (%s); going on without it", label, path, reason)
        return None


def _cert_blob(path: str) -> PublicBlob:
    blob = PublicBlob.from_file(path)
    if not blob.key_type.endswith(_CERT_TYPE_SUFFIX):
        raise ValueError(f"{blob.key_type} is not a certificate type")
    return blob


def certifies(blob: PublicBlob, key: paramiko.PKey) -> bool:
    """Whether the certificate is of this key: its type's and its public key's (PROTOCOL.certkeys:
    the type, a nonce, then the key's fields as its plain blob has them after the type)."""
    if blob.key_type != key.get_name() + _CERT_TYPE_SUFFIX:
        return False
    cert = Message(blob.key_blob)
    cert.get_text()  # the certificate's type
    cert.get_binary()  # its nonce
    fields = key.asbytes()[4 + len(key.get_name().encode()):]  # past the type, a length-prefixed string
    return cert.get_remainder().startswith(fields)


def _private_key(path: str) -> paramiko.PKey | None:
    try:
        return paramiko.PKey.from_path(path)
    # TypeError: encrypted, and virttui has no passphrase; the others: not a key paramiko knows
    except (OSError, TypeError, ValueError, paramiko.SSHException, UnknownKeyType):
        return None


def certified_keys(certificates: Sequence[str], key_files: Sequence[str], label: str) -> list[paramiko.PKey]:
    """Each certificate loaded onto the key file whose key it certifies, in the config's order. One
    named `X-cert.pub` beside a key file X is left out: paramiko loads it with X itself. One that
    cannot be read or certifies none of the key files: one warning naming it, and not offered."""
    keys: list[paramiko.PKey] = []
    loaded: dict[str, paramiko.PKey | None] = {}
    for path in certificates:
        if path.endswith(CERT_SUFFIX) and path[:-len(CERT_SUFFIX)] in key_files:
            continue
        try:
            blob = _cert_blob(path)
        except (OSError, ValueError, paramiko.SSHException) as exc:
            _warn_once(label, path, "%s: cannot read the certificate %s (CertificateFile): %s", label, path,
                       getattr(exc, "strerror", None) or exc)
            continue
        for key_file in key_files:
            if key_file not in loaded:
                loaded[key_file] = _private_key(key_file)
            key = loaded[key_file]
            if key is not None and certifies(blob, key):
                certified = _private_key(key_file)  # a key of its own: the file's key may be offered plain
                if certified is not None:
                    certified.load_certificate(Message(blob.key_blob))  # the blob read, not the file again
                    keys.append(certified)
                break
        else:
            _warn_once(label, path, "%s: the certificate %s (CertificateFile) certifies none of the unencrypted "
                       "identity files (%s); it is not offered", label, path, ", ".join(key_files) or "none")
    return keys


class KeySource:
    """What paramiko's SSHClient takes for its agent: get_keys() and close(). The certificates come
    first, then the agent's keys."""

    def __init__(self, certified: Sequence[paramiko.PKey], agent: paramiko.Agent | None) -> None:
        self.certified = tuple(certified)
        self.agent = agent

    def get_keys(self) -> tuple[paramiko.PKey, ...]:
        return self.certified + (tuple(self.agent.get_keys()) if self.agent is not None else ())

    def close(self) -> None:
        if self.agent is not None:
            self.agent.close()


def key_source(target: SSHTarget, label: str) -> KeySource:
    """The keys to offer for target after its key files: its certificates, and unless IdentitiesOnly
    the keys of the agent IdentityAgent chooses."""
    certified = certified_keys(target.certificate_files, target.key_files, label)
    path = None if target.identities_only else agent_socket(target.identity_agent)
    return KeySource(certified, open_agent(path, label) if path is not None else None)


class AuthClient(paramiko.SSHClient):
    """An SSHClient that asks target's KeySource, not SSH_AUTH_SOCK, for the keys beyond its key files.
    The source is opened when authentication starts (a host key refused never reaches the agent) and
    closed when it ends: nothing else needs the agent, and nothing is left open."""

    def __init__(self, target: SSHTarget, label: str) -> None:
        super().__init__()
        self.target = target
        self.label = label
        self._agent: KeySource | None = None  # paramiko's _auth asks it when it is not None

    def _auth(self, *args: object) -> None:  # SSHClient._auth, called by connect() once the host key passed
        source = self._agent = key_source(self.target, self.label)
        try:
            super()._auth(*args)  # type: ignore[misc]  # private to paramiko, so not in its stubs
        finally:
            source.close()
