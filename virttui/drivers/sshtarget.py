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
4. ProxyJump and ProxyCommand come back with their tokens expanded for this host (the chain is planned
   in sshroute); a jump host is resolved the same way by resolve_hop, with its own config only.

One resolution per host for the run: reconnects and a second URI of the same host reuse it.
Imports paramiko (through sshfallback): only virttui.drivers.ssh imports this module (see its docstring).
"""

from __future__ import annotations

import os
import re
import threading

from virttui.drivers.errors import InvalidURI
from virttui.drivers.sshfallback import fallback_directives
from virttui.drivers.sshjump import HopSpec, parse_jump_chain
from virttui.drivers.sshresolve import Directives, ResolveFailed, find_ssh, run_ssh_g, ssh_g_argv
from virttui.drivers.sshtokens import TokenContext, TokenError, account_home, expand, expand_proxy
from virttui.drivers.uri import LibvirtURI
from virttui.records import record

GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
# StrictHostKeyChecking as ssh -G prints it (yes as "true", no as "false") and as a config spells it
_STRICT = {"yes": "yes", "true": "yes", "ask": "ask", "accept-new": "accept-new",
           "no": "no", "off": "no", "false": "no"}
_TIME_RE = re.compile(r"([0-9]+)([smhdwSMHDW]?)")
_TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_BAD_PORT_RE = re.compile(r"ssh -G failed: (?P<file>.+?):? line (?P<line>[0-9]+): Bad port '(?P<port>.*)'\.?$")


@record
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
    proxy_jump: str = ""  # ProxyJump, tokens expanded: the chain of jump hosts (sshroute plans it)
    proxy_command: str = ""  # ProxyCommand, tokens expanded: run by the shell as ssh runs it (sshproxy)
    hash_known_hosts: bool = False  # HashKnownHosts: a key saved is listed under a hashed name
    identity_agent: str = ""  # IdentityAgent, expanded: "" (SSH_AUTH_SOCK), "none", "SSH_AUTH_SOCK", "$VAR" or a path
    certificate_files: tuple[str, ...] = ()  # CertificateFile, expanded, existing: user certificates to offer

    @property
    def verify(self) -> bool:
        """An unknown key is refused or asked about, never taken unseen."""
        return self.strict in ("yes", "ask")

    @property
    def known_files(self) -> tuple[str, ...]:
        return self.known_hosts_files or (self.known_hosts,)


@record
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
    proxy_jump: str  # as the config says it (tokens unexpanded but where paramiko's parser read it)
    proxy_command: str
    proxy_fdpass: bool  # ProxyUseFdpass: the command hands back a socket, which paramiko cannot take
    tokens_expanded: bool  # paramiko's parser expands ProxyCommand/ProxyJump tokens itself; ssh -G does not
    hash_known_hosts: bool = False
    identity_agent: str = ""
    certificate_files: tuple[str, ...] = ()


_cache: dict[tuple, _Resolved] = {}
_cache_lock = threading.Lock()


def resolve_target(uri: LibvirtURI, ssh_config_path: str | None = None) -> SSHTarget:
    """How to reach the URI's host: its ssh config as OpenSSH reads it, and the URI winning where it
    says something. InvalidURI, one line naming the host, where that cannot be told."""
    if not uri.host:
        raise InvalidURI(f"{uri.raw}: an ssh URI needs a host")
    found = _resolve(uri.host, uri.user, uri.port, ssh_config_path, uri.raw)
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
    return _target(found, uri.host, uri.user or found.user or _local_user(), uri.port or found.port, uri.raw,
                   keys=keys, user_files=user_files, files=files, strict=strict, reason=reason)


def resolve_hop(hop: HopSpec, ssh_config_path: str | None, what: str) -> SSHTarget:
    """How to reach a jump host: its own ssh config as OpenSSH reads it (`ssh -G` for that hop, the
    hop's user and port on its command line, as ssh's -J does), none of the URI's parameters
    (libvirt hands them to the last ssh only). `what` starts its errors (the URI and the hop)."""
    found = _resolve(hop.host, hop.user, hop.port, ssh_config_path, what)
    user_files = found.user_known_hosts or _default_known_hosts()
    return _target(found, hop.host, hop.user or found.user or _local_user(), hop.port or found.port, what,
                   keys=[path for path in found.identity_files if os.path.exists(path)], user_files=user_files,
                   files=user_files + (found.global_known_hosts or GLOBAL_KNOWN_HOSTS), strict=found.strict,
                   reason=f"StrictHostKeyChecking {found.strict}")


def _target(found: _Resolved, host: str, user: str, port: int, what: str, *, keys: list[str],
            user_files: tuple[str, ...], files: tuple[str, ...], strict: str, reason: str) -> SSHTarget:
    jump, command = _proxies(found, host, user, port, what)
    return SSHTarget(
        host=host, address=found.address, port=port, user=user,
        key_files=tuple(dict.fromkeys(keys)), known_hosts=user_files[0], strict=strict, strict_reason=reason,
        known_hosts_files=tuple(dict.fromkeys(files)), host_key_alias=found.host_key_alias,
        identities_only=found.identities_only, connect_timeout=found.connect_timeout,
        alive_interval=found.alive_interval, alive_count_max=found.alive_count_max,
        proxy_jump=jump, proxy_command=command, hash_known_hosts=found.hash_known_hosts,
        identity_agent=found.identity_agent,
        certificate_files=tuple(path for path in found.certificate_files if os.path.exists(path)))


def _proxies(found: _Resolved, host: str, user: str, port: int, what: str) -> tuple[str, str]:
    """ProxyJump and ProxyCommand with their tokens expanded for this host (after the URI's or the
    hop's user and port), checked: InvalidURI, one line, for what cannot be followed."""
    jump, command = found.proxy_jump, found.proxy_command
    if not found.tokens_expanded:
        context = TokenContext(found.address, host, port, user, found.host_key_alias, found.proxy_jump)
        try:
            jump = expand_proxy(jump, context, "ProxyJump")
            command = expand_proxy(command, context, "ProxyCommand")
        except TokenError as exc:
            raise InvalidURI(f"{what}: {_explained(str(exc), host)}") from None
    try:
        parse_jump_chain(jump)  # refused here, when the host is added, not at each connect
    except ResolveFailed as exc:
        raise InvalidURI(f"{what}: {_explained(str(exc), host)}") from None
    if command.strip() == "-":
        raise InvalidURI(f"{what}: {host}: ProxyCommand - (ssh's own stdin and stdout) has no meaning for virttui")
    if command and found.proxy_fdpass:
        raise InvalidURI(f"{what}: {host}: ProxyUseFdpass is set, and virttui can only talk to a ProxyCommand "
                         f"through its stdin and stdout")
    return jump, command


def forget_resolutions() -> None:
    """Resolve every host afresh (the next run, as far as the cache goes)."""
    with _cache_lock:
        _cache.clear()


def _resolve(host: str, user: str, port: int | None, ssh_config_path: str | None, what: str) -> _Resolved:
    ssh = find_ssh()
    path, config = _config_file(ssh_config_path)
    key = (ssh, path, config, host, user, port)
    with _cache_lock:
        found = _cache.get(key)
    if found is not None:
        return found
    try:
        if ssh is not None:
            directives = run_ssh_g(ssh_g_argv(ssh, host, user=user, port=port, config=config))
        else:
            directives = fallback_directives(path, host)
        found = _interpret(directives, host, openssh=ssh is not None, config_path=path)
    except (ResolveFailed, TokenError) as exc:
        raise InvalidURI(f"{what}: {_explained(str(exc), host)}") from None
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
    # whichever the config sets first wins, as in ssh: ssh -G prints only that one
    command = "" if jump or first("proxycommand", "none").lower() == "none" else first("proxycommand")
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
    certificates = tuple(expand(path, context, home=home) for path in directives.get("certificatefile", [])
                         if path.strip().lower() != "none")
    return _Resolved(
        address=address, port=port, user=user, identity_files=identities,
        identities_only=first("identitiesonly", "no").lower() in ("yes", "true"),
        user_known_hosts=user_known, global_known_hosts=global_known, host_key_alias=alias, strict=strict,
        connect_timeout=_seconds(first("connecttimeout", "none")) or None,
        alive_interval=_seconds(first("serveraliveinterval", "0")) or 0,
        alive_count_max=max(1, alive_count if alive_count is not None else 3), proxy_jump=jump,
        proxy_command=command, proxy_fdpass=first("proxyusefdpass", "no").lower() in ("yes", "true"),
        tokens_expanded=not openssh, hash_known_hosts=first("hashknownhosts", "no").lower() in ("yes", "true"),
        identity_agent=_agent_setting(first("identityagent"), context, home), certificate_files=certificates)


def _agent_setting(value: str, context: TokenContext, home: str) -> str:
    """IdentityAgent as sshauth reads it: none and SSH_AUTH_SOCK as written, `$VAR` kept (read when
    connecting), a path with ~, tokens and ${VAR} expanded (ssh -G has done the ~ already)."""
    if not value or value.lower() == "none" or value == "SSH_AUTH_SOCK" or value.startswith("$") \
            and not value.startswith("${"):
        return "none" if value.lower() == "none" else value
    return expand(value, context, home=home)


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
