"""The way to a host through its jump hosts, planned as OpenSSH would take it, before anything connects.

ssh turns `ProxyJump A,B,C` into `ssh -J A,B -W host C`, and so on down the chain: the last hop is
reached through the ones before it, and only the first hop, reached by an ssh of its own, follows
its own config's ProxyJump or ProxyCommand (a -J on the command line overrides the others'). Every
hop's address, port, user, keys and known hosts come from its own config (resolve_hop). The plan
is a flat list: the first hop connected directly or through its ProxyCommand, each next one over a
forwarded channel of the one before.

A chain that comes back to a hop already on the way (or to the host itself) is refused, as is one
longer than MAX_HOPS: OpenSSH would recurse. Imports paramiko (through sshtarget): only
virttui.drivers.ssh's modules import this one.
"""

from __future__ import annotations

from collections.abc import Callable

from virttui.drivers.errors import InvalidURI
from virttui.drivers.sshjump import MAX_HOPS, HopSpec, parse_jump_chain
from virttui.drivers.sshresolve import ResolveFailed
from virttui.drivers.sshtarget import SSHTarget, resolve_hop
from virttui.records import record

Resolver = Callable[[HopSpec, str | None, str], SSHTarget]  # resolve_hop's signature


@record
class Hop:
    """One jump host on the way: as the chain names it, and how to connect to it and check its key."""

    spec: HopSpec
    target: SSHTarget
    proxy_command: str = ""  # the first hop only: reached through its own ProxyCommand

    @property
    def name(self) -> str:
        return self.spec.host


@record
class Route:
    """How to reach a host: directly, through its ProxyCommand, or over the last of its hops."""

    hops: tuple[Hop, ...] = ()
    proxy_command: str = ""  # the host's own ProxyCommand (then no hops)

    @property
    def direct(self) -> bool:
        return not self.hops and not self.proxy_command


def plan_route(uri: str, target: SSHTarget, ssh_config_path: str | None = None,
               resolve: Resolver = resolve_hop) -> Route:
    """The route to target (named in errors by the URI `uri`); InvalidURI, one line, for a loop, a chain
    too long or a hop that cannot be resolved."""
    if target.proxy_command:
        return Route(proxy_command=target.proxy_command)
    if not target.proxy_jump:
        return Route()
    planner = _Planner(uri, ssh_config_path, resolve)
    planner.seen[_identity(target)] = target.host
    planner.met.append(target.host)
    return Route(hops=tuple(planner.chain(target)))


def _identity(target: SSHTarget) -> tuple[str, int, str]:
    """What makes two hops one: where they connect and as whom (as ssh's "jumphost loop" check)."""
    return target.address.lower(), target.port, target.user


class _Planner:
    def __init__(self, uri: str, ssh_config_path: str | None, resolve: Resolver) -> None:
        self.uri = uri
        self.ssh_config_path = ssh_config_path
        self.resolve = resolve
        self.seen: dict[tuple[str, int, str], str] = {}  # every host on the route -> its name
        self.met: list[str] = []  # the names in the order they were met, for the errors

    def chain(self, behind: SSHTarget) -> list[Hop]:
        """The hops to `behind` (a host or the first hop of another chain), following its ProxyJump."""
        try:
            specs = parse_jump_chain(behind.proxy_jump)
        except ResolveFailed as exc:
            raise InvalidURI(f"{self.uri}: {behind.host}: {exc}") from None
        hops: list[Hop] = []
        for index, spec in enumerate(specs):
            target = self.resolve(spec, self.ssh_config_path, f"{self.uri}: jump host {spec.host} of {behind.host}")
            self.met.append(spec.host)
            identity = _identity(target)
            if identity in self.seen:
                again = self.seen[identity]
                raise InvalidURI(f"{self.uri}: ProxyJump loop: {' -> '.join(self.met)}"
                                 + (f" ({spec.host} is {again})" if again != spec.host else ""))
            self.seen[identity] = spec.host
            if len(self.seen) - 1 > MAX_HOPS:
                raise InvalidURI(f"{self.uri}: more than {MAX_HOPS} jump hosts on the way to {self.met[0]} "
                                 f"({' -> '.join(self.met)})")
            if index == 0 and target.proxy_jump:  # reached by an ssh of its own: its own chain first
                hops += self.chain(target)
                hops.append(Hop(spec, target))
            elif index == 0 and target.proxy_command:
                hops.append(Hop(spec, target, proxy_command=target.proxy_command))
            else:
                hops.append(Hop(spec, target))
        return hops
