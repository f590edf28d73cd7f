"""Connecting along a route (sshroute): through a ProxyCommand, or over the jump hosts, each one a
verified SSH connection of its own, the next reached over a `direct-tcpip` channel of the one before.

Every jump host's key is checked against that hop's own known hosts by the same code and policy as
a host's (sshconnect.open_client); an unknown one raises UnknownHostKey naming the hop ("bastion
(jump to hv1)"), saved where that hop's config says. One connection to a jump host serves every
host behind it: links are shared, keyed by how they connect (the way there, address, port, user,
keys, known-hosts setup), counted by their users and closed with the last. A dead link is
reconnected by the next host that needs it. Every failure names the hop that failed.

Imports paramiko: only virttui.drivers.ssh imports this module (see its docstring).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import paramiko

from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.sshconnect import open_client
from virttui.drivers.sshproxy import ShellProxyCommand
from virttui.drivers.sshroute import Hop, Route
from virttui.drivers.sshtarget import SSHTarget

log = logging.getLogger("virttui.drivers.ssh")  # the SSH transport's log, as its operators know it

Release = Callable[[], None]


class _Link:
    """One verified connection to a jump host, shared by whatever goes through it."""

    def __init__(self, key: tuple) -> None:
        self.key = key
        self.users = 0  # hosts and further links holding it (under _links_lock)
        self.client: paramiko.SSHClient | None = None
        self.upstream: _Link | None = None  # the link it goes through, held while this one is open
        self.connecting = threading.Lock()  # one (re)connect at a time: the others wait and share it

    def alive(self) -> bool:
        transport = self.client.get_transport() if self.client is not None else None
        return transport is not None and transport.is_active()


_links: dict[tuple, _Link] = {}
_links_lock = threading.Lock()


def open_routed(uri: str, host: str, target: SSHTarget, route: Route,
                timeout: float) -> tuple[paramiko.SSHClient, Release]:
    """A verified client to target along route, and what to call once it is closed (it lets the jump
    hosts go). `uri` starts every error, `host` names the host as its URI does."""
    if route.direct:
        return open_client(uri, target, timeout), _nothing
    if route.proxy_command:
        return _through_command(uri, host, target, route.proxy_command, timeout), _nothing
    last = route.hops[-1]
    link = _acquire(uri, host, route.hops, len(route.hops) - 1, timeout)
    try:
        client = open_client(uri, target, timeout, way=lambda: _forward(uri, host, link, last.name, target, timeout))
    except BaseException:
        _release(link)
        raise
    return client, lambda: _release(link)


def open_links() -> int:
    """How many jump-host connections are open (for the tests and the debug log)."""
    with _links_lock:
        return sum(1 for link in _links.values() if link.client is not None)


def _nothing() -> None:
    pass


def _through_command(uri: str, host: str, target: SSHTarget, command: str, timeout: float,
                     label: str = "") -> paramiko.SSHClient:
    """A client over the ProxyCommand; the command's failure said as such (it exited, printed something
    that is no SSH server, or brought no answer in time), never as paramiko's banner error."""
    started: list[ShellProxyCommand] = []

    def run() -> ShellProxyCommand:
        try:
            started.append(ShellProxyCommand(command))
        except OSError as exc:
            raise ConnectionFailed(f"{uri}: cannot run the ProxyCommand of {host}: {exc.strerror or exc}") from None
        return started[-1]

    try:
        return open_client(uri, target, timeout, way=run, label=label)
    except ConnectionFailed:
        proxy = started[-1] if started else None
        if proxy is None or proxy.greeted:  # an SSH server answered: its key or its refusal is the reason
            raise
        reason = proxy.failure(host, target.connect_timeout or timeout)
        proxy.close()  # closed with the failed connection already, as a rule: this makes sure
        raise ConnectionFailed(f"{uri}: {reason}") from None
    finally:
        for proxy in started[:-1]:  # a second try (see open_client's listed_key) ran a second command
            proxy.close()


def _acquire(uri: str, host: str, hops: tuple[Hop, ...], index: int, timeout: float) -> _Link:
    """The link to hops[index] (with the ones before it), connected and held once more."""
    key = tuple(_identity(hop) for hop in hops[:index + 1])
    with _links_lock:
        link = _links.setdefault(key, _Link(key))
        link.users += 1
    try:
        with link.connecting:
            if not link.alive():
                _disconnect(link)
                upstream = _acquire(uri, host, hops, index - 1, timeout) if index > 0 else None
                try:
                    client = _connect(uri, host, hops, index, upstream, timeout)
                except BaseException:
                    if upstream is not None:
                        _release(upstream)
                    raise
                link.client, link.upstream = client, upstream
                log.info("connected to jump host %s (%s@%s:%d) for %s", hops[index].name, hops[index].target.user,
                         hops[index].target.address, hops[index].target.port, host)
        return link
    except BaseException:
        _release(link)
        raise


def _connect(uri: str, host: str, hops: tuple[Hop, ...], index: int, upstream: _Link | None,
             timeout: float) -> paramiko.SSHClient:
    hop = hops[index]
    label = f"{hop.name} (jump to {host})"
    what = f"{uri}: cannot reach {label}"
    if hop.proxy_command:
        return _through_command(what, hop.name, hop.target, hop.proxy_command, timeout, label)
    if upstream is None:
        return open_client(what, hop.target, timeout, label=label)
    return open_client(what, hop.target, timeout, label=label,
                       way=lambda: _forward(uri, label, upstream, hops[index - 1].name, hop.target, timeout))


def _forward(uri: str, name: str, link: _Link, via: str, target: SSHTarget, timeout: float) -> paramiko.Channel:
    """A direct-tcpip channel from the jump host `via` (link) to target's address and port; `name`: the
    host or hop reached, as errors name it."""
    transport = link.client.get_transport() if link.client is not None else None
    where = f"{target.address}:{target.port}"
    if transport is None or not transport.is_active():
        raise ConnectionFailed(f"{uri}: cannot reach {name} through {via}: the connection to {via} is closed")
    try:
        return transport.open_channel("direct-tcpip", (target.address, target.port), ("127.0.0.1", 0),
                                      timeout=target.connect_timeout or timeout)
    except paramiko.ChannelException as exc:  # the jump host's answer: its sshd could not connect, or may not
        reason = "".join(ch if ch.isprintable() else " " for ch in str(exc.text or ""))[:200] or f"code {exc.code}"
        raise ConnectionFailed(f"{uri}: cannot reach {name} through {via}: {via} could not open "
                               f"a connection to {where} ({reason})") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise ConnectionFailed(f"{uri}: cannot reach {name} through {via}: "
                               f"{str(exc) or type(exc).__name__}") from None


def _release(link: _Link) -> None:
    """One user fewer; the last one closes the link and lets go of the ones it went through."""
    with _links_lock:
        link.users -= 1
        if link.users > 0:
            return
        if _links.get(link.key) is link:
            del _links[link.key]
    _disconnect(link)


def _disconnect(link: _Link) -> None:
    client, upstream = link.client, link.upstream
    link.client, link.upstream = None, None
    if client is not None:
        client.close()
    if upstream is not None:
        _release(upstream)


def _identity(hop: Hop) -> tuple:
    """What makes two hops one connection: where and as whom (with which keys), and how its key is
    checked and saved."""
    target = hop.target
    return (target.address.lower(), target.port, target.user, target.key_files, target.identities_only,
            target.identity_agent, target.certificate_files, target.known_hosts_files, target.known_hosts,
            target.host_key_alias, target.strict, target.hash_known_hosts, hop.proxy_command)
