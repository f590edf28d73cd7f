"""Reading OpenSSH known_hosts files the way ssh does, without tripping over lines paramiko can't parse.

paramiko's own loader raises on a whole file for one `@cert-authority` line (a
valid OpenSSH marker) or a byte that isn't UTF-8, which would leave the host
unreachable with an internal error. Here such lines are skipped one by one, and
`@revoked` keys are collected so that a connect can refuse them outright (ssh
never accepts a revoked key, and it must never be offered for trust either).

paramiko cannot verify host certificates (it takes a certificate's key as a plain key, checking
neither the CA's signature, the principals, the validity period nor revocation), so an
`@cert-authority` line is never read as trust here: cert_authority_line finds one that names a host
(OpenSSH's pattern rules), and such a host goes through the system ssh, which verifies certificates
(sshclients.ssh_client_to_use).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re

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


CA_MARKER = "@cert-authority"
_HASH_MAGIC = "|1|"


def _hashed_names(field: str, name: str) -> bool:
    """Whether a hashed host field (`|1|base64 salt|base64 HMAC-SHA1 of the name`) is of name."""
    try:
        salt_text, digest_text = field[len(_HASH_MAGIC):].split("|")
        salt, digest = base64.b64decode(salt_text, validate=True), base64.b64decode(digest_text, validate=True)
    except (ValueError, binascii.Error):
        return False
    return any(hmac.compare_digest(hmac.new(salt, candidate.encode(), hashlib.sha1).digest(), digest)
               for candidate in dict.fromkeys((name, name.lower())))


def _pattern(pattern: str) -> re.Pattern[str]:
    """A known_hosts host pattern: `*` any run of characters, `?` one, everything else itself ([ and ] too)."""
    return re.compile("".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern),
                      re.IGNORECASE | re.DOTALL)


def host_field_matches(field: str, name: str) -> bool:
    """Whether a known_hosts host field lists name (`host`, `[host]:port` or a HostKeyAlias) as
    OpenSSH's match_hostname reads it: a hashed field names one host; otherwise a comma list of
    patterns, case-insensitive, where one negated (`!pattern`) that matches excludes the name
    whatever else matches."""
    if field.startswith(_HASH_MAGIC):
        return _hashed_names(field, name)
    matched = False
    for pattern in field.split(","):
        negated = pattern.startswith("!")
        pattern = pattern[1:] if negated else pattern
        if pattern and _pattern(pattern).fullmatch(name):
            if negated:
                return False
            matched = True
    return matched


def cert_authority_line(path: str, name: str) -> int | None:
    """The number of the first `@cert-authority` line of `path` whose host patterns match name,
    None if none does. Its CA key may be `@revoked`: ssh then refuses the certificates it signed.
    Raises OSError when the file can't be read (read_bounded: not a regular file, or too large)."""
    data = read_bounded(path)
    if CA_MARKER.encode() not in data:  # most files: a big one costs a scan, not a parse per host
        return None
    for number, raw in enumerate(data.splitlines(), 1):
        fields = raw.decode("utf-8", "replace").split()  # @cert-authority PATTERNS KEYTYPE BASE64 [COMMENT]
        if len(fields) >= 4 and fields[0] == CA_MARKER and host_field_matches(fields[1], name):
            return number
    return None
