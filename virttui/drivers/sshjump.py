"""A ProxyJump value read as OpenSSH reads one: a comma-separated chain of `[user@]host[:port]` hops,
each also as an `ssh://[user@]host[:port]` URI, IPv6 addresses in brackets.

Each hop's host and user go to `ssh -G` (an argv, never a shell) to resolve that hop with its own
config, so they are checked as strictly as a URI's: a host name or an IP address, a user without
whitespace, quotes or shell characters, neither starting with '-'. Standard library only.
"""

from __future__ import annotations

import re

from virttui.drivers.sshresolve import ResolveFailed
from virttui.records import record

MAX_HOPS = 8  # jump hosts on the way to one host, all chains counted: OpenSSH sets none, a loop would recurse

# as virttui.drivers.uri's: a host name (not starting with '-'), or an IP literal (IPv6 with a zone)
_HOST_RE = re.compile(r"(?!-)[\w.-]+|[0-9A-Fa-f:.]+(?:%[\w.-]+)?")
_USER_RE = re.compile(r"(?!-)[\w.@+-]+")  # AD-style first.last@domain users included
_PORT_RE = re.compile(r"[0-9]{1,5}")
_HOP_RE = re.compile(r"(?:(?P<user>.*)@)?(?:\[(?P<bracketed>[^\]]*)\]|(?P<host>[^:\[\]]*))(?::(?P<port>[^:]*))?")


@record
class HopSpec:
    """One hop as the ProxyJump value names it; user and port empty where it does not say."""

    host: str
    user: str = ""
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (f"{self.user}@" if self.user else "") + host + (f":{self.port}" if self.port else "")


def parse_jump_chain(value: str) -> tuple[HopSpec, ...]:
    """The hops of a ProxyJump value, first hop first; ResolveFailed (one line) for anything else."""
    if not value or value.strip().lower() == "none":
        return ()
    hops = tuple(parse_hop(part) for part in value.split(","))
    if len(hops) > MAX_HOPS:
        raise ResolveFailed(f"ProxyJump names {len(hops)} jump hosts; virttui goes through at most {MAX_HOPS}")
    return hops


def parse_hop(text: str) -> HopSpec:
    """`[user@]host[:port]` or `ssh://[user@]host[:port]`, as OpenSSH's parse_ssh_uri/parse_user_host_port."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in text[:64])
    spec = text[len("ssh://"):] if text.lower().startswith("ssh://") else text
    if spec != text and spec.endswith("/"):
        spec = spec[:-1]  # ssh://host/ is the URI form's empty path
    found = _HOP_RE.fullmatch(spec)
    if found is None or not spec:
        raise ResolveFailed(f"ProxyJump hop {shown!r} is not [user@]host[:port]")
    host = found["bracketed"] if found["bracketed"] is not None else found["host"]
    user = found["user"] or ""
    if not host or not _HOST_RE.fullmatch(host):
        raise ResolveFailed(f"ProxyJump hop {shown!r}: {host[:64]!r} is not a host name or address")
    if found["user"] is not None and not _USER_RE.fullmatch(user):
        raise ResolveFailed(f"ProxyJump hop {shown!r}: {user[:64]!r} is not a user name")
    port: int | None = None
    if found["port"]:  # `host:` is the default port, as ssh reads it
        if not _PORT_RE.fullmatch(found["port"]) or not 0 < int(found["port"]) < 65536:
            raise ResolveFailed(f"ProxyJump hop {shown!r}: {found['port'][:16]!r} is not a port number")
        port = int(found["port"])
    return HopSpec(host, user, port)
