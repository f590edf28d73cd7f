"""Reading OpenSSH known_hosts files the way ssh does, without tripping over lines paramiko can't parse.

paramiko's own loader raises on a whole file for one `@cert-authority` line (a
valid OpenSSH marker) or a byte that isn't UTF-8, which would leave the host
unreachable with an internal error. Here such lines are skipped one by one, and
`@revoked` keys are collected so that a connect can refuse them outright (ssh
never accepts a revoked key, and it must never be offered for trust either).
"""

from __future__ import annotations

import logging

import paramiko
from paramiko.hostkeys import HostKeyEntry

from virttui.boundedread import read_bounded

log = logging.getLogger(__name__)


def _usable_entries(path: str) -> tuple[list[HostKeyEntry], frozenset[str]]:
    """The readable, unrevoked entries of `path`, and the base64 blobs of its `@revoked` keys."""
    lines = [raw.decode("utf-8", "replace").strip() for raw in read_bounded(path).splitlines()]
    revoked = frozenset(fields[3] for fields in (line.split() for line in lines)  # fields: spaces or tabs
                        if len(fields) >= 4 and fields[0] == "@revoked")  # @revoked HOSTS KEYTYPE BASE64
    entries = []
    for number, line in enumerate(lines, 1):
        if not line or line.startswith(("#", "@")):  # @cert-authority: host certificates are not checked here
            continue
        try:
            entry = HostKeyEntry.from_line(line, number)
        except Exception as exc:  # noqa: BLE001 - paramiko raises plain Exceptions (InvalidHostKey) per line
            log.debug("%s:%d: skipped an unreadable known_hosts line (%s)", path, number, type(exc).__name__)
            continue
        if entry is not None and entry.key is not None and entry.key.get_base64() not in revoked:
            entries.append(entry)
    return entries, revoked


def load_known_hosts(path: str, into: paramiko.HostKeys) -> frozenset[str]:
    """Add every usable, unrevoked entry of `path` to `into`; return the base64 blobs of its `@revoked` keys.

    A revoked key is left out even where a plain line lists it, so the connect meets it as
    unknown and refuses it before authenticating. Raises OSError when the file can't be read.
    """
    entries, revoked = _usable_entries(path)
    for entry in entries:
        for hostname in entry.hostnames:
            into.add(hostname, entry.key.get_name(), entry.key)
    return revoked


def lists_key(path: str, host: str, key: paramiko.PKey) -> bool:
    """Whether an unrevoked line of `path` lists exactly this key for host (by plain or hashed name).

    paramiko keeps one key per host and key type; OpenSSH accepts any key a line lists (several of
    one type: hosts behind one name, a reinstall whose old line stayed). Raises OSError like above."""
    matching = paramiko.HostKeys()
    for entry in _usable_entries(path)[0]:
        if (entry.key.get_name(), entry.key.get_base64()) == (key.get_name(), key.get_base64()):
            for hostname in entry.hostnames:
                matching.add(hostname, key.get_name(), key)
    found = matching.lookup(host)
    return found is not None and key.get_name() in found
