"""OpenSSH's expansion of a path in ssh_config (a leading `~`, `%` tokens and `${VAR}`) and of a ProxyCommand or
ProxyJump (`%` tokens only), as ssh_config(5) lists them.

`ssh -G` prints IdentityFile, ProxyCommand and ProxyJump unexpanded (ssh expands them later, when it
loads the keys or starts the proxy), so virttui expands them here the way ssh would. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import socket
from collections.abc import Mapping

from virttui.records import record

_TOKEN_RE = re.compile(r"%(.)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}|%$|\$\{")


class TokenError(ValueError):
    """A token ssh would refuse: an unknown `%x`, a `${VAR}` with no value, a `~user` with no account."""


@record
class TokenContext:
    """The values of the tokens for one host, as ssh computes them."""

    hostname: str  # %h: after HostName
    original_host: str  # %n: as given (the URI's host)
    port: int  # %p
    remote_user: str  # %r
    host_key_alias: str = ""  # %k falls back to the original host
    proxy_jump: str = ""  # %j

    def values(self) -> dict[str, str]:
        account = _account()
        local_fqdn = socket.gethostname()
        local_short = local_fqdn.split(".", 1)[0]
        table = {
            "%": "%", "d": account_home(), "h": self.hostname, "i": str(os.getuid()), "j": self.proxy_jump,
            "k": self.host_key_alias or self.original_host, "L": local_short, "l": local_fqdn,
            "n": self.original_host, "p": str(self.port), "r": self.remote_user, "u": account.pw_name if account
            else str(os.getuid()),
        }
        # %C as ssh 9 computes it: the SHA-1 of %l%h%p%r%j, in hex
        table["C"] = hashlib.sha1(  # noqa: S324 - OpenSSH's own choice, a name, not a security hash
            (local_fqdn + self.hostname + str(self.port) + self.remote_user + self.proxy_jump).encode(),
            usedforsecurity=False).hexdigest()
        return table


def _account() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwuid(os.getuid())
    except KeyError:
        return None


def account_home() -> str:
    """The home ssh means by `~` and `%d`: the account's, from the password database (not $HOME)."""
    account = _account()
    return account.pw_dir if account else os.path.expanduser("~")


def expand_tilde(path: str, home: str) -> str:
    """`~/x` -> home/x and `~user/x` -> that user's home/x, as ssh's tilde_expand_filename."""
    if not path.startswith("~"):
        return path
    name, slash, rest = path[1:].partition("/")
    if name:
        try:
            home = pwd.getpwnam(name).pw_dir
        except KeyError:
            raise TokenError(f"no such user {name!r} for {path!r}") from None
    return home.rstrip("/") + "/" + rest if slash or rest else home


def expand(path: str, context: TokenContext, *, home: str | None = None,
           environ: Mapping[str, str] | None = None) -> str:
    """path with ~ (from `home`, else the account's), %-tokens and ${VAR} expanded in one pass."""
    values = context.values()
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        token, variable = match.group(1), match.group(2)
        if variable is not None:
            if variable not in env:
                raise TokenError(f"${{{variable}}} in {path!r} has no value")
            return env[variable]
        if token is None or token not in values:
            raise TokenError(f"unknown token {match.group(0)!r} in {path!r}")
        return values[token]

    return _TOKEN_RE.sub(replace, expand_tilde(path, account_home() if home is None else home))


_PROXY_TOKEN_RE = re.compile(r"%(.)|%$")
# What a token may put into a shell command line: host names, IP addresses (IPv6 zones too), users
# (first.last@domain). No quote, space, glob, `~`, `$` or `;`, and no leading '-' (an option to nc).
_SUBSTITUTABLE_RE = re.compile(r"(?!-)[A-Za-z0-9_.:@%+-]+")


def expand_proxy(text: str, context: TokenContext, directive: str) -> str:
    """A ProxyCommand or ProxyJump value with its tokens expanded as ssh expands them (%h %k %n %p %r %%),
    in one pass. A value that is not a plain host, user or port is refused, not substituted: the
    command runs through a shell (OpenSSH 9.6 refuses such names likewise, CVE-2023-51385)."""
    values = {"%": "%", "h": context.hostname, "k": context.host_key_alias or context.original_host,
              "n": context.original_host, "p": str(context.port), "r": context.remote_user}

    def replace(match: re.Match[str]) -> str:
        token = match.group(1)
        if token is None or token not in values:
            raise TokenError(f"unknown token {match.group(0)!r} in {directive}")
        value = values[token]
        if token != "%" and not _SUBSTITUTABLE_RE.fullmatch(value):
            shown = "".join(ch if ch.isprintable() else "?" for ch in value[:64])
            raise TokenError(f"{directive}: %{token} would be {shown!r}, which is not a plain host, user or port")
        return value

    return _PROXY_TOKEN_RE.sub(replace, text)
