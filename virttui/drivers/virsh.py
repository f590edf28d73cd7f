"""The virsh driver: real libvirt hosts, reached by running virsh locally or over SSH.

A poll is ONE virsh process: a command script that lists the domains with
their UUIDs, takes the bulk `domstats` of all of them, and lists which are
autostarted and which transient, with echo markers between. Domain XML is
fetched (again in one virsh run for all of them) only for domains that are new,
changed between active and inactive, or named by an event since the last
poll; the steady-state poll makes no per-domain calls.

Domains are addressed by UUID on every command line, and every argument is
quoted, so no domain name ever reaches a shell or virsh's own parser.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from virttui.drivers.base import Action, Driver
from virttui.drivers.errors import ConnectionFailed, DriverError, NotSupported, OperationInvalid
from virttui.drivers.events import EventWatcher
from virttui.drivers.model import ConnectionState, DomainSnapshot, DomainState, Host, HostSnapshot
from virttui.drivers.names import check_name, usable_name
from virttui.drivers.transport import COMMAND_TIMEOUT, CommandResult, Transport
from virttui.drivers.uri import LibvirtURI
from virttui.drivers.virshdomains import CachedXML, build_domain, domain_state
from virttui.drivers.virshparse import (
    NodeFacts,
    VirshEvent,
    parse_domstats,
    parse_names,
    parse_node_facts,
    parse_uuid_names,
    virsh_error,
)
from virttui.drivers.virshscript import check_uuid, run_in_batches, script, virsh_quote
from virttui.drivers.virshsession import VirshSession
from virttui.drivers.virshsnapshots import listed_snapshots
from virttui.drivers.xmlparse import parse_domain, parse_xml
from virttui.locks.model import LockConfig

log = logging.getLogger(__name__)

# --nowait: a guest whose QEMU monitor is stuck (hung storage, a long job) gets its stats left out
# instead of holding the whole host's poll for libvirt's 30 s job wait (virsh >= 4.5; without it,
# the poll falls back to the waiting form).
POLL_COMMANDS = (
    "list --all --uuid --name",
    "domstats --raw --state --cpu-total --balloon --vcpu --block --interface --nowait",
    "list --all --name --autostart",
    "list --all --name --transient",
)
POLL_COMMANDS_WAITING = tuple(command.replace(" --nowait", "") for command in POLL_COMMANDS)
NODE_COMMANDS = ("nodeinfo", "hostname", "version")
NOWAIT_FLAG = 0x20000000  # VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT, libvirt 4.5
LONG_ACTION_TIMEOUT = 900.0  # seconds: snapshots and storage removal of big guests
# Full node facts again every so many polls: memory can be hot-added, libvirt upgraded.
NODE_REFRESH_POLLS = 150
PREFETCH_FRESH = 5.0  # seconds within which a poll takes the listing read with the node's facts



def _refuses_nowait(message: str) -> bool:
    """An older virsh says so by name; a newer virsh reaching an older daemon (tcp, tls) gets the
    daemon's virCheckFlags wording, which names only the flag's bits."""
    return "nowait" in message or f"unsupported flags (0x{NOWAIT_FLAG:x})" in message



class _Prefetched(NamedTuple):
    """The poll's sections, read in the connect's virsh run with the node's facts."""

    sections: list[str]
    taken_at: float  # the driver's clock
    monotonic: float  # when the run ended
    seconds: float  # how long it took
    commands: int  # the driver's command count once it started


class VirshDriver(Driver):
    """A libvirt host behind `virsh -c URI`, run through a Transport."""

    def __init__(self, uri: str, parsed: LibvirtURI, transport: Transport, *,
                 clock: Callable[[], float] = time.monotonic, session: VirshSession | None = None) -> None:
        self.uri = uri
        self.session = session  # a persistent local virsh; without one, a virsh process per command
        self.parsed = parsed
        self.transport = transport
        self.target_uri = parsed.local_uri if parsed.transport in ("ssh", "libssh", "libssh2") else parsed.raw
        self._clock = clock
        self._lock = threading.Lock()
        self._facts: NodeFacts | None = None
        self._polls = 0
        self._xml: dict[str, CachedXML] = {}
        self._names: dict[str, str] = {}  # name -> uuid, from the last poll
        self._stale: set[str] = set()  # names whose XML an event invalidated
        self._watcher: EventWatcher | None = None
        self._leases = None
        self._lock_warning = ""
        self.lock_config: LockConfig | None = None
        self._on_change: Callable[[], None] | None = None
        self._poll_commands: tuple[str, ...] = POLL_COMMANDS
        self._prefetched: _Prefetched | None = None
        self._commands_started = 0  # virsh commands run on the host so far (under _lock)
        self._closed = False

    # -- virsh -----------------------------------------------------------------
    def _count_command(self) -> None:
        """Note a virsh command starting: the poll right after a connect takes the listing read with
        the node's facts only if no other command started since (an action may change it)."""
        with self._lock:
            self._commands_started += 1

    def _run_virsh(self, command: str) -> CommandResult:
        self._count_command()
        if self.session is not None:
            return self.session.run(command, COMMAND_TIMEOUT)
        return self.transport.run(["virsh", "-q", "-c", self.target_uri, command])

    def _virsh(self, command: str, *, what: str) -> str:
        result = self._run_virsh(command)
        if result.returncode != 0 or (result.stderr.strip() and "error:" in result.stderr):
            raise virsh_error(result.stderr, result.returncode, what)
        return result.stdout

    # -- connection ------------------------------------------------------------
    def connect(self) -> None:
        """(Re)connect: whatever changed while the host was unreachable sent events nobody heard, so
        every domain's XML is fetched again at the next poll."""
        self._closed = False
        if self.session is not None:
            self.session.reopen()
        self._xml.clear()
        self._refresh_node()

    def _refresh_node(self) -> None:
        """Node facts and lock configuration, read at connect and again every NODE_REFRESH_POLLS polls."""
        self.transport.connect()
        nodeinfo, hostname, version = self._node_and_poll()
        self._facts = parse_node_facts(nodeinfo, hostname, version)
        self._polls = 0
        leases, self._lock_warning = self._lease_manager()
        if leases is None or self._leases is None or leases.config != self._leases.config:
            if self._leases is not None:  # the same configuration keeps what its manager has read
                self._leases.close()
            self._leases = leases

    def _node_and_poll(self) -> list[str]:
        """The node's facts, read in the same virsh run as the poll that follows (poll() takes its
        sections, unless another virsh command ran in between): a virsh run fewer before a
        connected host's guests show. When that run fails other than on the connection (an older
        virsh refusing --nowait, garbled output), the node's facts alone."""
        both = script(NODE_COMMANDS + self._poll_commands)
        self._prefetched = None
        with self._lock:
            itself = self._commands_started + 1  # the count once this run starts, if nothing else does
        began = time.monotonic()
        try:
            sections = both.split(self._virsh(both.text, what=self.uri))
        except ConnectionFailed:
            raise
        except DriverError as exc:
            if self._wait_from_now_on(exc):
                return self._node_and_poll()
            node = script(NODE_COMMANDS)
            return node.split(self._virsh(node.text, what=self.uri))
        now = time.monotonic()
        self._prefetched = _Prefetched(sections[len(NODE_COMMANDS):], self._clock(), now, now - began, itself)
        return sections[:len(NODE_COMMANDS)]

    def _take_prefetched(self) -> _Prefetched | None:
        """The poll's sections read with the node's facts, if no other command started on the host
        since that run did (checked under the lock: an action may run on another thread) and they
        are this moment's."""
        prefetched, self._prefetched = self._prefetched, None
        with self._lock:
            commands = self._commands_started
        if prefetched is None or commands != prefetched.commands or \
                time.monotonic() - prefetched.monotonic > PREFETCH_FRESH:
            return None
        return prefetched

    def _lease_manager(self):  # noqa: ANN202 - (LeaseManager | None, warning)
        """The host's lease directory manager, if its libvirt uses sanlock or lockd; a bad config is a warning."""
        local = self.parsed.transport not in ("ssh", "libssh", "libssh2")
        if local and self.parsed.is_remote:  # qemu+tls://hv2/system: its files are not this machine's
            return None, (f"lock configuration not read: virttui reads a host's files over SSH only, "
                          f"not {self.parsed.transport or 'tcp'}; no disk leases shown for this host")
        from virttui.locks.discovery import discover

        found = discover(self.transport, in_process=local)
        self.lock_config = found.config
        return found.manager, found.warning

    def lease_manager(self):  # noqa: ANN201 - LeaseManager | None
        return self._leases

    def close(self) -> None:
        self._closed = True  # a poll still running starts no event stream after this
        self._prefetched = None
        self.unwatch()
        if self.session is not None:
            self.session.close()
        if self._leases is not None:
            self._leases.close()
        self.transport.close()
        self._facts = None

    def pending_host_key(self):  # noqa: ANN201 - UnknownHostKey | None, from the SSH transport
        return getattr(self.transport, "pending_key", None)

    def trust_host_key(self, pending) -> None:  # noqa: ANN001 - UnknownHostKey
        self.transport.trust_key(pending)  # type: ignore[attr-defined]

    def watch(self, on_change: Callable[[], None]) -> None:
        """Start the host's event stream; `on_change` runs (on the stream's thread) after each event."""
        self._on_change = on_change
        if self._closed or (self._watcher is not None and self._watcher.alive):
            return
        argv = ["virsh", "-c", self.target_uri, "event", "--all", "--loop"]
        self._watcher = EventWatcher(self.transport, argv, self._event, self.uri)
        self._watcher.start()

    def unwatch(self) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.stop()

    def _event(self, event: VirshEvent) -> None:
        """A domain event, or the stream opened again (kind "reopened", no domain): changes made while
        it was closed sent events nobody heard, so then every domain's XML is fetched again."""
        with self._lock:
            if event.domain:
                self._stale.add(event.domain)
            else:
                self._stale.update(self._names)
        if self._on_change is not None:
            self._on_change()

    # -- polling ---------------------------------------------------------------
    def poll(self) -> HostSnapshot:
        started = time.monotonic()
        if self._facts is None:
            self.connect()
        elif self._polls >= NODE_REFRESH_POLLS:
            self._refresh_node()
        facts = self._facts  # taken now: close() (quitting, on another thread) clears it mid-poll
        if facts is None or self._closed:
            raise ConnectionFailed(f"{self.uri}: closed")
        self._polls += 1
        prefetched = self._take_prefetched()
        if prefetched is not None:
            (listing, stats_text, autostart_text, transient_text), taken_at = prefetched.sections, prefetched.taken_at
            if prefetched.monotonic < started:  # read by a connect() before this poll: its time is the poll's
                started -= prefetched.seconds
        else:
            (listing, stats_text, autostart_text, transient_text), taken_at = self._poll_sections()
        pairs = parse_uuid_names(listing)
        stats = parse_domstats(stats_text)
        autostart = parse_names(autostart_text)
        transient = parse_names(transient_text)
        states = {uuid: domain_state(stats.get(name, {})) for uuid, name in pairs}
        self._refresh_xml(pairs, states)
        domains = []
        for uuid, name in pairs:
            cached = self._xml.get(uuid)
            if cached is None:
                continue  # vanished between the listing and dumpxml: next poll settles it
            domains.append(build_domain(uuid, name, states[uuid], stats.get(name, {}), cached,
                                        name in autostart, name not in transient))
        with self._lock:
            self._names = {name: uuid for uuid, name in pairs}
        for gone in set(self._xml) - set(states):
            del self._xml[gone]
        host = Host(
            uri=self.uri, hostname=facts.hostname, hypervisor=facts.hypervisor,
            hypervisor_version=facts.hypervisor_version, cpus=facts.cpus, memory_kib=facts.memory_kib,
            state=ConnectionState.CONNECTED, poll_latency_ms=round((time.monotonic() - started) * 1000, 1),
            warnings=(self._lock_warning,) if self._lock_warning else (),
        )
        leases = self._leases.poll_snapshot() if self._leases is not None else None
        return HostSnapshot(host=host, domains=tuple(sorted(domains, key=lambda d: d.name)), taken_at=taken_at,
                            leases=leases)

    def _wait_from_now_on(self, exc: DriverError) -> bool:
        """Whether the poll's commands just dropped --nowait, which this virsh refused (an older one)."""
        if not _refuses_nowait(str(exc)) or self._poll_commands == POLL_COMMANDS_WAITING:
            return False
        self._poll_commands = POLL_COMMANDS_WAITING
        return True

    def _poll_sections(self) -> tuple[list[str], float]:
        """The poll script's sections (listing, stats, autostart, transient) and when they were taken."""
        poll = script(self._poll_commands)
        try:
            out = self._virsh(poll.text, what=self.uri)
        except DriverError as exc:
            if not self._wait_from_now_on(exc):
                raise
            poll = script(self._poll_commands)
            out = self._virsh(poll.text, what=self.uri)
        return poll.split(out), self._clock()

    def _refresh_xml(self, pairs: list[tuple[str, str]], states: dict[str, DomainState]) -> None:
        with self._lock:
            stale, self._stale = self._stale, set()
        wanted = []
        for uuid, name in pairs:
            cached = self._xml.get(uuid)
            # (the XML's name is read stripped: " db" in the listing is "db" there, and no rename)
            if cached is None or cached.active != states[uuid].is_active or name in stale \
                    or cached.definition.name != name.strip():
                wanted.append(uuid)
        if not wanted:
            return
        for uuid, text in zip(wanted, self._tolerant_batches([f"dumpxml {uuid}" for uuid in wanted]), strict=True):
            if not text.strip():
                self._xml.pop(uuid, None)  # undefined meanwhile
                continue
            root = parse_xml(text, f"{self.uri}: domain {uuid}")
            definition = parse_domain(root, what=f"{self.uri}: domain {uuid}")
            raw_id = root.get("id")
            dom_id = int(raw_id) if raw_id and raw_id.isascii() and raw_id.isdigit() else None
            self._xml[uuid] = CachedXML(text, definition, states[uuid].is_active, dom_id)

    def _tolerant_batches(self, commands: list[str]) -> list[str]:
        """Each command's output, from as few virsh runs as fit (see virshscript.run_in_batches)."""
        return run_in_batches(commands, self._virsh_tolerant)

    def _virsh_tolerant(self, command: str) -> str:
        """Run a batch where single commands may fail (a domain undefined meanwhile): judged by its
        error lines, not its exit status, which is the last command's (one-shot virsh) or says
        that any failed (the interactive session)."""
        result = self._run_virsh(command)
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        fatal = [line for line in errors if "failed to get domain" not in line and "Domain not found" not in line
                 and "Domain snapshot not found" not in line]
        if fatal or (result.returncode != 0 and not errors):
            raise virsh_error(result.stderr, result.returncode, self.uri)
        return result.stdout

    # -- reading and acting ------------------------------------------------------
    def domain_xml(self, uuid: str) -> str:
        return self._virsh(f"dumpxml {check_uuid(uuid)}", what=self.uri)

    def perform(self, uuid: str, action: Action) -> None:
        uuid = check_uuid(uuid)
        result = self._run_virsh(f"{action.value} {uuid}")
        if result.returncode != 0:
            raise virsh_error(result.stderr, result.returncode, f"{action.value} {uuid}")
        self._mark_stale(uuid)

    def pm_wakeup(self, uuid: str) -> None:
        uuid = check_uuid(uuid)
        self._act(f"dompmwakeup {uuid}", f"dompmwakeup {uuid}")
        self._mark_stale(uuid)

    def _mark_stale(self, uuid: str) -> None:
        with self._lock:
            self._stale.update(name for name, known in self._names.items() if known == uuid)

    def _act(self, command: str, what: str, *, slow: bool = False) -> str:
        """slow: a command that may take minutes (a memory snapshot of a big guest, deleting its storage).
        It gets its own virsh process and LONG_ACTION_TIMEOUT, so it is not reported failed while
        libvirtd finishes it, and the host's polls go on meanwhile in the session."""
        if slow and self.parsed.driver != "test":  # test:// keeps its state in the session's connection
            self._count_command()
            result = self.transport.run(["virsh", "-q", "-c", self.target_uri, command], timeout=LONG_ACTION_TIMEOUT)
        else:
            result = self._run_virsh(command)
        if result.returncode != 0:
            raise virsh_error(result.stderr, result.returncode, what)
        return result.stdout

    # -- operator essentials -----------------------------------------------------
    def set_autostart(self, uuid: str, enabled: bool) -> None:
        uuid = check_uuid(uuid)
        self._act(f"autostart {uuid}" + ("" if enabled else " --disable"), f"autostart {uuid}")

    def undefine(self, uuid: str, *, remove_storage: bool = False) -> None:
        uuid = check_uuid(uuid)
        flags = " --managed-save --snapshots-metadata" + (" --remove-all-storage" if remove_storage else "")
        self._act(f"undefine {uuid}{flags}", f"undefine {uuid}", slow=remove_storage)

    def snapshots(self, uuid: str) -> list[DomainSnapshot]:
        """Every snapshot the host lists. Only usable names go back into a command (a name with a CR or
        DEL would be read by interactive virsh's readline as a second command): the rest are listed,
        marked unusable, and nothing is ever done with them."""
        uuid = check_uuid(uuid)
        names = [n for n in self._act(f"snapshot-list {uuid} --name", f"snapshots of {uuid}").split("\n") if n]
        if not names:
            return []
        current = self._run_virsh(f"snapshot-current {uuid} --name").stdout.strip()
        usable = [name for name in names if usable_name(name)]
        texts = dict(zip(usable, self._tolerant_batches(
            [f"snapshot-dumpxml {uuid} --snapshotname {virsh_quote(n)}" for n in usable]), strict=True))
        return listed_snapshots(names, texts, current, self.uri)

    def create_snapshot(self, uuid: str, name: str, description: str = "") -> None:
        uuid = check_uuid(uuid)
        command = f"snapshot-create-as {uuid} --name {virsh_quote(check_name(name, 'snapshot name'))}"
        if description:
            command += f" --description {virsh_quote(check_name(description, 'description'))}"
        self._act(command, f"snapshot {name!r} of {uuid}", slow=True)

    def revert_snapshot(self, uuid: str, name: str) -> None:
        uuid = check_uuid(uuid)
        name = check_name(name, "snapshot name")
        self._act(f"snapshot-revert {uuid} --snapshotname {virsh_quote(name)}", f"revert {uuid} to {name!r}", slow=True)
        self._mark_stale(uuid)

    def delete_snapshot(self, uuid: str, name: str) -> None:
        uuid = check_uuid(uuid)
        name = check_name(name, "snapshot name")
        self._act(f"snapshot-delete {uuid} --snapshotname {virsh_quote(name)}", f"delete snapshot {name!r}", slow=True)

    def set_memory_stats_period(self, uuid: str, seconds: int) -> None:
        uuid = check_uuid(uuid)
        if not 0 <= seconds <= 86400:
            raise OperationInvalid("the memory stats period is 0 (off) to 86400 seconds")
        self._act(f"dommemstat {uuid} --period {int(seconds)} --live --config", f"memory stats period of {uuid}")

    def has_console(self) -> bool:
        return hasattr(self.transport, "interactive")

    def attach_console(self, uuid: str) -> None:
        uuid = check_uuid(uuid)
        argv = ["virsh", "-c", self.target_uri, "console", uuid]
        interactive = getattr(self.transport, "interactive", None)
        if interactive is None:
            raise NotSupported(f"{self.uri}: no terminal transport for the serial console")
        code = interactive(argv)
        if code not in (0, None):
            raise OperationInvalid(f"{self.uri}: the serial console of {uuid} ended with status {code}")



def open_virsh_driver(uri: str, parsed: LibvirtURI, *, clock: Callable[[], float] = time.monotonic) -> VirshDriver:
    """The virsh driver over the transport the URI names: for +ssh the SSH client chosen for it
    (paramiko, or the system ssh: sshclients.ssh_client_to_use), local processes otherwise."""
    if parsed.transport in ("ssh", "libssh", "libssh2"):
        from virttui.drivers.sshclients import ssh_client_to_use

        transport: Transport
        if ssh_client_to_use(uri, parsed) == "openssh":
            from virttui.drivers.openssh import OpenSSHTransport

            transport = OpenSSHTransport(parsed)
        else:
            from virttui.drivers.ssh import SSHTransport

            transport = SSHTransport(parsed)
    else:
        from virttui.drivers.transport import LocalTransport
        from virttui.drivers.virshsession import VirshSession

        transport = LocalTransport()
        if VirshSession.available():
            return VirshDriver(uri, parsed, transport, clock=clock, session=VirshSession(parsed.raw))
    return VirshDriver(uri, parsed, transport, clock=clock)

