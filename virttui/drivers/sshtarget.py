"""Where and as whom an SSH URI connects: its host resolved as OpenSSH resolves it, then the URI on top.

1. OpenSSH's answer: `ssh -G [-F FILE] [-l USER] [-p PORT] HOST` (sshresolve) when an ssh client is on
   PATH; without one, paramiko's parser on the config file, with a warning naming what it cannot
   honour (sshfallback). The config is ~/.ssh/config ($HOME's): where $HOME is the account's home,
   ssh reads it itself, with /etc/ssh/ssh_config after it, exactly as `ssh HOST` does; otherwise it
   is handed over with -F.
2. The URI wins where it says something: user and port (on ssh's command line, so Match and tokens
   see them), keyfile (tried first), known_hosts (then the only file read and written), no_verify.
3. What neither says keeps virttui's defaults: ~/.ssh/known_hosts (and known_hosts2) of $HOME,
   paramiko's own key search, strict host-key checking with the trust dialog.

One resolution per host for the run: reconnects and a second URI of the same host reuse it.
Imports paramiko (through sshfallback): only virttui.drivers.ssh imports this module (see its docstring).
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass

from virttui.drivers.errors import InvalidURI
from virttui.drivers.sshfallback import fallback_directives
from virttui.drivers.sshresolve import Directives, ResolveFailed, find_ssh, run_ssh_g, ssh_g_argv
from virttui.drivers.sshtokens import TokenContext, TokenError, account_home, expand
from virttui.drivers.uri import LibvirtURI

GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
# StrictHostKeyChecking as ssh -G prints it (yes as "true", no as "false") and as a config spells it
_STRICT = {"yes": "yes", "true": "yes", "ask": "ask", "accept-new": "accept-new",
           "no": "no", "off": "no", "false": "no"}
_TIME_RE = re.compile(r"([0-9]+)([smhdwSMHDW]?)")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_BAD_PORT_RE = re.compile(r"ssh -G failed: (?P<file>.+?):? line (?P<line>[0-9]+): Bad port '(?P<port>.*)'\.?$")


@dataclass(frozen=True)
class SSHTarget:
    """Where and as whom to connect, and how to check the host's key, after the config and the URI had their say."""

    host: str  # as written in the URI
    address: str  # HostName, else host
    port: int
    user: str
    key_files: tuple[str, ...]  # existing files: the URI's keyfile first, then IdentityFile in order
    known_hosts: str  # where a trusted key is saved: the first user known_hosts file
    strict: str = "ask"  # StrictHostKeyChecking: yes, ask, accept-new or no
    strict_reason: str = ""  # what chose it, as a warning names it ("no_verify=1")
    known_hosts_files: tuple[str, ...] = ()  # every file read, user files first (empty: known_hosts alone)
    host_key_alias: str = ""  # the name known_hosts lists the key under, in place of host and port
    identities_only: bool = False  # IdentitiesOnly: the key files only, never the agent's keys
    connect_timeout: float | None = None  # ConnectTimeout
    alive_interval: int = 0  # ServerAliveInterval (0: virttui's keepalive)
    alive_count_max: int = 3  # ServerAliveCountMax

    @property
    def verify(self) -> bool:
        """An unknown key is refused or asked about, never taken unseen."""
        return self.strict in ("yes", "ask")

    @property
    def known_files(self) -> tuple[str, ...]:
        return self.known_hosts_files or (self.known_hosts,)


@dataclass(frozen=True)
class _Resolved:
    """The directives of one host that virttui honours, before the URI's own say."""

    address: str
    port: int
    user: str
    identity_files: tuple[str, ...]  # expanded; whether each exists is checked later
    identities_only: bool
    user_known_hosts: tuple[str, ...]  # empty: the default
    global_known_hosts: tuple[str, ...]  # empty: the default
    host_key_alias: str
    strict: str
    connect_timeout: float | None
    alive_interval: int
    alive_count_max: int
    proxy: str  # ProxyJump or ProxyCommand when one is set


_cache: dict[tuple, _Resolved] = {}
_cache_lock = threading.Lock()


def resolve_target(uri: LibvirtURI, ssh_config_path: str | None = None) -> SSHTarget:
    """How to reach the URI's host: its ssh config as OpenSSH reads it, and the URI winning where it
    says something. InvalidURI, one line naming the host, where that cannot be told."""
    if not uri.host:
        raise InvalidURI(f"{uri.raw}: an ssh URI needs a host")
    found = _resolve(uri, ssh_config_path)
    if found.proxy:  # a mandated bastion must never be bypassed by connecting directly
        raise InvalidURI(f"{uri.raw}: {uri.host} is reached through a jump host ({found.proxy} in the ssh config); "
                         f"virttui does not yet go through a jump host, and will not connect directly")
    keys = [os.path.expanduser(uri.param("keyfile"))] if uri.param("keyfile") else []
    keys += [path for path in found.identity_files if os.path.exists(path)]
    if uri.param("known_hosts"):
        user_files: tuple[str, ...] = (os.path.expanduser(uri.param("known_hosts")),)
        files = user_files
    else:
        user_files = found.user_known_hosts or _default_known_hosts()
        files = user_files + (found.global_known_hosts or GLOBAL_KNOWN_HOSTS)
    strict, reason = found.strict, f"StrictHostKeyChecking {found.strict}"
    if any(name == "no_verify" for name, _ in uri.params):
        if uri.param("no_verify") in ("1", "yes", "true"):
            strict, reason = "no", "no_verify=1"
        elif strict not in ("yes", "ask"):  # no_verify=0 says: verify
            strict, reason = "ask", "no_verify=0"
    return SSHTarget(
        host=uri.host, address=found.address, port=uri.port or found.port, user=uri.user or found.user or _local_user(),
        key_files=tuple(dict.fromkeys(keys)), known_hosts=user_files[0], strict=strict, strict_reason=reason,
        known_hosts_files=tuple(dict.fromkeys(files)), host_key_alias=found.host_key_alias,
        identities_only=found.identities_only, connect_timeout=found.connect_timeout,
        alive_interval=found.alive_interval, alive_count_max=found.alive_count_max)


def forget_resolutions() -> None:
    """Resolve every host afresh (the next run, as far as the cache goes)."""
    with _cache_lock:
        _cache.clear()


def _resolve(uri: LibvirtURI, ssh_config_path: str | None) -> _Resolved:
    ssh = find_ssh()
    path, config = _config_file(ssh_config_path)
    key = (ssh, path, config, uri.host, uri.user, uri.port)
    with _cache_lock:
        found = _cache.get(key)
    if found is not None:
        return found
    try:
        if ssh is not None:
            directives = run_ssh_g(ssh_g_argv(ssh, uri.host, user=uri.user, port=uri.port, config=config))
        else:
            directives = fallback_directives(path, uri.host)
        found = _interpret(directives, uri.host, openssh=ssh is not None, config_path=path)
    except (ResolveFailed, TokenError) as exc:
        raise InvalidURI(f"{uri.raw}: {_explained(str(exc), uri.host)}") from None
    with _cache_lock:
        _cache[key] = found
    return found


def _config_file(ssh_config_path: str | None) -> tuple[str, tuple[str, ...]]:
    """The config virttui means, and the -F arguments that make ssh read it (none: ssh's own choice)."""
    if ssh_config_path is None:
        home = os.path.expanduser("~")
        path = os.path.join(home, ".ssh", "config")
        if os.path.realpath(home) == os.path.realpath(account_home()):
            return path, ()
    else:
        path = ssh_config_path
    return path, ("-F", path if os.path.exists(path) else "none")


def _interpret(directives: Directives, host: str, *, openssh: bool, config_path: str) -> _Resolved:
    """The directives virttui honours, checked. ssh -G gives every one with its default filled in and
    its known_hosts paths expanded; paramiko's parser gives only what the config says."""
    def first(keyword: str, default: str = "") -> str:
        values = directives.get(keyword)
        return values[0].strip() if values else default

    address = first("hostname", host)
    port = _number(first("port", "22"))
    if port is None or not 0 < port < 65536:  # else 70000 connects to 4464 and a huge one overflows in socket code
        raise ResolveFailed(f"{config_path}: Port {first('port')} for {host} is not a port number")
    user = first("user")
    jump = "" if first("proxyjump", "none").lower() == "none" else first("proxyjump")
    proxy = "ProxyJump" if jump else ("" if first("proxycommand", "none").lower() == "none" else "ProxyCommand")
    alias = "" if first("hostkeyalias", "none").lower() == "none" else first("hostkeyalias")
    strict = _STRICT.get(first("stricthostkeychecking", "ask").lower())
    if strict is None:
        raise ResolveFailed(f"{config_path}: StrictHostKeyChecking {first('stricthostkeychecking')!r} for {host} "
                            f"is not yes, ask, accept-new or no")
    home = account_home() if openssh else os.path.expanduser("~")  # ssh's ~ is the account's; paramiko's $HOME
    context = TokenContext(address, host, port, user or _local_user(), alias, jump)
    identities = tuple(expand(path, context, home=home) for path in directives.get("identityfile", [])
                       if path.strip().lower() != "none")
    user_known = _paths(first("userknownhostsfile"))
    global_known = _paths(first("globalknownhostsfile"))
    if openssh:
        if user_known == tuple(os.path.join(home, ".ssh", name) for name in ("known_hosts", "known_hosts2")):
            user_known = ()  # ssh's default, in the account's home: virttui's is in $HOME (the same, but for sudo -E)
    else:
        user_known = tuple(expand(path, context, home=home) for path in user_known)
    alive_count = _number(first("serveralivecountmax", "3"))
    return _Resolved(
        address=address, port=port, user=user, identity_files=identities,
        identities_only=first("identitiesonly", "no").lower() in ("yes", "true"),
        user_known_hosts=user_known, global_known_hosts=global_known, host_key_alias=alias, strict=strict,
        connect_timeout=_seconds(first("connecttimeout", "none")) or None,
        alive_interval=_seconds(first("serveraliveinterval", "0")) or 0,
        alive_count_max=max(1, alive_count if alive_count is not None else 3), proxy=proxy)


def _paths(value: str) -> tuple[str, ...]:
    """A known_hosts directive's files; `none` reads (and saves to) nothing."""
    return tuple(os.devnull if path.lower() == "none" else path for path in value.split())


def _default_known_hosts() -> tuple[str, ...]:
    return tuple(os.path.expanduser(f"~/.ssh/{name}") for name in ("known_hosts", "known_hosts2"))


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _seconds(text: str) -> int | None:
    """A time as ssh_config writes one (`30`, `1m30s`); None for `none` or anything else."""
    if not text or _TIME_RE.sub("", text):
        return None
    return sum(int(count) * _TIME_UNITS[unit.lower()] for count, unit in _TIME_RE.findall(text))


def _explained(reason: str, host: str) -> str:
    """The failure in one line naming the host; ssh's own "line N: Bad port" said as virttui always said it."""
    bad_port = _BAD_PORT_RE.search(reason)
    if bad_port:
        return (f"{bad_port['file']}: Port {bad_port['port']} for {host} is not a port number "
                f"(line {bad_port['line']})")
    return reason if f" for {host} " in reason else f"{host}: {reason}"


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root"
