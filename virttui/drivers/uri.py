"""libvirt connection URIs: driver[+transport]://[user@][host][:port]/path[?params]."""

from __future__ import annotations

import re
from dataclasses import field
from urllib.parse import quote, unquote

from virttui.drivers.errors import InvalidURI
from virttui.records import record

_URI_RE = re.compile(
    r"^(?P<driver>[A-Za-z][A-Za-z0-9]*)(?:\+(?P<transport>[A-Za-z][A-Za-z0-9]*))?"
    r"://(?:(?P<user>[^/?#]*)@)?(?P<host>\[[^\]]*\]|[^:/?#]*)(?::(?P<port>[^/?#]*))?"
    r"(?P<path>/[^?#]*)?(?:\?(?P<query>[^#]*))?$"
)

_PORT_RE = re.compile(r"[0-9]{1,5}")
# A host name (letters, digits, '.', '-', '_'; not starting with '-') or an IP literal (IPv6 with a
# zone). Anything else is refused before it can reach an ssh_config `Match exec` (paramiko runs it
# through a shell with %h replaced by the host) or a command line: OpenSSH's CVE-2023-51385 class.
_HOST_RE = re.compile(r"(?!-)[\w.-]+|[0-9A-Fa-f:.]+(?:%[\w.-]+)?")

SSH_TRANSPORTS = frozenset({"ssh", "libssh", "libssh2"})
KNOWN_TRANSPORTS = {*SSH_TRANSPORTS, "tcp", "tls", "unix", "ext"}


@record
class LibvirtURI:
    """A parsed URI; `local_uri` is what virsh on the target host is given."""

    raw: str
    driver: str
    transport: str = ""
    user: str = ""
    host: str = ""
    port: int | None = None
    path: str = ""
    params: tuple[tuple[str, str], ...] = field(default=())

    def param(self, name: str, default: str = "") -> str:
        """The last value of a query parameter, libvirt style."""
        value = default
        for key, val in self.params:
            if key == name:
                value = val
        return value

    @property
    def is_test(self) -> bool:
        return self.driver == "test"

    @property
    def over_ssh(self) -> bool:
        """libvirt reaches the host through SSH: virttui then runs its virsh and reads its files there."""
        return self.transport in SSH_TRANSPORTS

    @property
    def is_remote(self) -> bool:
        """True when commands must run on another machine."""
        return bool(self.transport) and self.transport != "unix" or (bool(self.host) and not self.transport)

    @property
    def local_uri(self) -> str:
        """The same connection as seen from the host itself: no transport, no host."""
        return f"{self.driver}://{quote(self.path, safe='/') or '/'}"  # re-escaped: a '?' in it stays path


def parse_uri(text: str) -> LibvirtURI:
    """Parse a libvirt URI, raising InvalidURI with the URI named on failure."""
    match = _URI_RE.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise InvalidURI(f"{redacted(text)!r}: not a libvirt URI (expected driver[+transport]://[user@][host]/path)")
    transport = (match["transport"] or "").lower()
    if transport and transport not in KNOWN_TRANSPORTS:
        raise InvalidURI(f"{redacted(text)}: unknown transport {transport!r}")
    port: int | None = None
    if match["port"]:
        # ASCII digits only: str.isdigit() is also true of "²", which int() refuses
        if not _PORT_RE.fullmatch(match["port"]) or not 0 < int(match["port"]) < 65536:
            raise InvalidURI(f"{redacted(text)}: bad port")
        port = int(match["port"])
    if _spilled_password(match):
        raise InvalidURI(f"{redacted(text)}: an '@' after the host (a password in the URI?) is not supported")
    if ":" in unquote(match["user"] or ""):  # never echo it: the URI goes into errors and the Hosts pane
        raise InvalidURI(f"{redacted(text)}: a password in the URI is not supported (use an SSH key or the agent)")
    host = match["host"] or ""
    if host.startswith("["):
        host = host[1:-1]
    host = unquote(host)
    if host and not _HOST_RE.fullmatch(host):
        raise InvalidURI(f"{redacted(text)}: {host[:64]!r} is not a host name or address")
    return LibvirtURI(
        raw=text.strip(),
        driver=match["driver"].lower(),
        transport=transport,
        user=unquote(match["user"] or ""),
        host=host,
        port=port,
        path=unquote(match["path"] or ""),
        params=_query_params(match["query"] or ""),
    )


def _spilled_password(match: re.Match) -> bool:
    """An '@' where the end of a user part lands when its password has a '?' or '/' in it: in the
    query but in no parameter's value (`root:pa?ss@hv1`; keyfile=/home/a@b/key is a value), or in
    the path after a port, even an empty one (`root:/pass@hv1`, `root:12/ss@hv1`)."""
    query, path = match["query"] or "", match["path"] or ""
    return (any("@" in part.partition("=")[0] for part in re.split(r"[&;]", query))
            or (match["port"] is not None and "@" in path))


def redacted(text: object) -> object:
    """The URI with whatever follows a ':' in its user part (up to the last '@') masked; where the
    URI does not parse cleanly, everything up to its last '@' (a password with '?' or '/' in it)."""
    if not isinstance(text, str) or "://" not in text:
        return text
    scheme, _, rest = text.strip().partition("://")
    match = _URI_RE.match(text.strip())
    if "@" in rest and (match is None or _spilled_password(match)
                        or (match["port"] and not _PORT_RE.fullmatch(match["port"]))):
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    where, query_mark, query = rest.partition("?")  # an '@' in the query (keyfile=/a@b) is no user's
    userinfo, at, after = where.rpartition("@")
    after += query_mark + query
    cut = userinfo.find(":") if at else -1
    if cut < 0:
        cut = unquote(userinfo).find(":") if at else -1
        if cut < 0:
            return text.strip()
        return f"{scheme}://***{at}{after}"  # an escaped colon: where the user name ends is unclear
    return f"{scheme}://{userinfo[:cut]}:***{at}{after}"


def _query_params(query: str) -> tuple[tuple[str, str], ...]:
    """libvirt's reading of a query: `&` or `;` between pairs, %XX unescaped, `+` left a plus."""
    pairs = []
    for part in re.split(r"[&;]", query):
        if part:
            key, _, value = part.partition("=")
            pairs.append((unquote(key), unquote(value)))
    return tuple(pairs)
