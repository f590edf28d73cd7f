"""The virsh driver's parsers, and the driver itself over Debian's real virsh.

libvirt's own test driver (`virsh -c test:///PATH`) runs inside each virsh
process, so these tests need no daemon; the real libvirtd tests live in
test_realhosts.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.paths import DEMO_NODE

from virttui.cli import main
from virttui.drivers.base import Action
from virttui.drivers.errors import (
    ConnectionFailed,
    DomainNotFound,
    DriverError,
    LeaseConflict,
    OperationInvalid,
    ParseError,
)
from virttui.drivers.model import DomainState
from virttui.drivers.registry import open_driver
from virttui.drivers.transport import CommandResult, LocalTransport, Transport
from virttui.drivers.uri import parse_uri
from virttui.drivers.virsh import VirshDriver
from virttui.drivers.virshparse import (
    VirshEvent,
    parse_domstats,
    parse_event,
    parse_node_facts,
    parse_uuid_names,
    split_sections,
    virsh_error,
)
from virttui.drivers.virshscript import script
from virttui.drivers.virshsession import VirshSession
from virttui.locks.discovery import MISSING

VIRSH = shutil.which("virsh")
SECTION_MARKER = "@@SECTION@@"  # in canned answers: ScriptedTransport puts the script's own marker there
MARKER = re.compile(r"@@virttui-[0-9a-f]{16}@@")


@pytest.fixture
def virsh_installed() -> None:
    """These tests run Debian's virsh: a machine without it fails them, never skips them."""
    assert VIRSH is not None, "virsh is not installed (scripts/test.sh installs libvirt-clients)"


needs_virsh = pytest.mark.usefixtures("virsh_installed")

DOMSTATS = """Domain: 'web 01'
  state.state=1
  state.reason=1
  cpu.time=123456789
  balloon.current=1048576
  balloon.maximum=2097152
  vcpu.current=2
  block.count=1
  block.0.name=vda
  block.0.path=/var/lib/libvirt/images/web.qcow2
  block.0.rd.bytes=4096
  block.0.wr.bytes=8192
  block.0.capacity=67108864
  block.0.allocation=200704

Domain: 'x'; touch /tmp/pwned; ''
  state.state=5
  state.reason=0

"""


def test_domstats_blocks_are_keyed_by_name_even_hostile_ones():
    stats = parse_domstats(DOMSTATS)
    assert stats["web 01"]["cpu.time"] == "123456789"
    assert stats["x'; touch /tmp/pwned; '"] == {"state.state": "5", "state.reason": "0"}


def test_garbage_domstats_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_domstats("Segmentation fault\n")


def test_listing_maps_uuids_to_names_with_spaces():
    pairs = parse_uuid_names("6695eb01-f6a4-8304-79aa-97f2502e193f web 01\n\n")
    assert pairs == [("6695eb01-f6a4-8304-79aa-97f2502e193f", "web 01")]
    with pytest.raises(ParseError):
        parse_uuid_names("not-a-uuid name\n")


def test_sections_must_all_be_there():
    text = f"a\n{SECTION_MARKER}\nb\n"
    assert split_sections(text, 2, SECTION_MARKER) == ["a\n", "b\n"]
    with pytest.raises(ParseError, match="truncated"):
        split_sections("a\n", 2, SECTION_MARKER)


def test_node_facts_from_nodeinfo_and_version():
    facts = parse_node_facts("CPU(s):              32\nMemory size:         134217728 KiB\n", "hv1\n",
                             "Running hypervisor: QEMU 7.2.0\n")
    assert (facts.hostname, facts.cpus, facts.memory_kib, facts.hypervisor, facts.hypervisor_version) == (
        "hv1", 32, 134217728, "QEMU", "7.2.0")
    with pytest.raises(ParseError):
        parse_node_facts("hello", "", "")


def test_event_lines():
    event = parse_event("event 'lifecycle' for domain 'web 01': Started Booted\n")
    assert (event.kind, event.domain) == ("lifecycle", "web 01")
    event = parse_event("event 'lifecycle' for domain 'a': b': Stopped Destroyed")
    assert event.domain == "a': b"
    assert parse_event("events received: 3") is None


@pytest.mark.parametrize("stderr, kind", [
    ("error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/run/x': No such file",
     ConnectionFailed),
    ("error: Failed to start domain 'a'\nerror: Requested operation is not valid: domain is already running",
     OperationInvalid),
    ("error: failed to get domain '0'", DomainNotFound),
    ("error: Failed to start domain 'b'\nerror: resource busy: Failed to acquire lock: error -243", LeaseConflict),
    ("sh: 1: virsh: not found", ConnectionFailed),
])
def test_virsh_errors_are_typed_and_one_line(stderr, kind):
    error = virsh_error(stderr, 1, "qemu:///system")
    assert type(error) is kind
    assert "\n" not in str(error) and str(error).startswith("qemu:///system")


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parsers_raise_only_typed_errors(text):
    for parse in (parse_domstats, parse_uuid_names, lambda t: parse_node_facts(t, t, t), parse_event,
                  lambda t: split_sections(t, 4, SECTION_MARKER)):
        try:
            parse(text)
        except DriverError:
            pass


class ScriptedTransport(Transport):
    """Answers virsh runs with canned output: for the driver's bad-input paths only."""

    def __init__(self, answers: list[CommandResult]) -> None:
        self.answers = answers
        self.commands: list[list[str]] = []
        self._combined = False  # the last run was the node's facts with the poll (both still in answers)

    def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
        if argv[0] == "sh":  # the lock configuration: no file exists on this host
            return self._marked(argv, CommandResult(0, f"{SECTION_MARKER}\n{MISSING}" * 3, ""))
        self.commands.append(list(argv))
        self.settle_combined(argv)
        if argv[-1].startswith("nodeinfo ") and "domstats" in argv[-1]:
            # connect: the node's facts and the poll in one virsh run, answered by the next two answers
            # as a real virsh would: one failing command fails the run
            self._combined = True
            node = self.answers[0]
            poll = self.answers[1] if len(self.answers) > 1 else CommandResult(1, "", "error: nothing scripted\n")
            if node.returncode or poll.returncode:
                return self._marked(argv, node if node.returncode else poll)
            return self._marked(argv, CommandResult(0, f"{node.stdout}\n{SECTION_MARKER}\n{poll.stdout}",
                                                    node.stderr + poll.stderr))
        return self._marked(argv, self.answers.pop(0))

    def settle_combined(self, argv: list[str]) -> None:
        """After a node-and-poll run, what the driver made of it shows in what it asks next."""
        if not self._combined:
            return
        self._combined = False
        if argv[-1].startswith("nodeinfo ") and "domstats" in argv[-1]:  # the poll's part refused: asked again
            del self.answers[1]
        elif not argv[-1].startswith("nodeinfo "):  # taken: both answered
            del self.answers[:2]
        # else the node's facts asked alone: the poll's answer stays for the poll

    @staticmethod
    def _marked(argv, answer: CommandResult) -> CommandResult:  # noqa: ANN001
        """The answer with the script's own section marker where the canned text has SECTION_MARKER."""
        found = MARKER.search(" ".join(argv))
        if found is None:
            return answer
        return replace(answer, stdout=answer.stdout.replace(SECTION_MARKER, found.group()))

    def stream(self, argv):  # noqa: ANN001, ANN201
        raise ConnectionFailed("no events here")


UUID = "6695eb01-f6a4-8304-79aa-97f2502e193f"


def one_domain(name: str = "a", stats: str = "state.state=5") -> tuple[CommandResult, CommandResult]:
    """A poll's canned answer listing one domain (UUID, with these domstats lines), and its dumpxml answer."""
    lines = "".join(f"  {line}\n" for line in stats.split("\n"))
    poll = CommandResult(0, f"{UUID} {name}\n{SECTION_MARKER}\nDomain: '{name}'\n{lines}{SECTION_MARKER}\n"
                            f"{SECTION_MARKER}\n", "")
    return poll, CommandResult(0, f"<domain type='kvm'><name>{name}</name><uuid>{UUID}</uuid></domain>", "")


NODE_OK = CommandResult(0, f"CPU(s): 4\nMemory size: 1024 KiB\n{SECTION_MARKER}\nhv\n{SECTION_MARKER}\n"
                           "Running hypervisor: QEMU 7.2.0\n", "")


@pytest.mark.parametrize("answer", [
    CommandResult(0, "garbage\x00\xff", ""),
    CommandResult(0, f"6695eb01-f6a4-8304-79aa-97f2502e193f a\n{SECTION_MARKER}\nDomain: 'a'\n  state.st", ""),
    CommandResult(139, "partial", "Segmentation fault"),
])
def test_garbage_from_virsh_is_a_clear_host_error(answer):
    parsed = parse_uri("qemu:///system")
    driver = VirshDriver("qemu:///system", parsed, ScriptedTransport([NODE_OK, answer]))
    driver.connect()
    with pytest.raises(DriverError) as info:
        driver.poll()
    assert "\n" not in str(info.value)


def test_xml_that_is_not_libvirts_is_a_clear_error():
    poll, _ = one_domain()
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"),
                         ScriptedTransport([NODE_OK, poll, CommandResult(0, "<html><body/></html>", "")]))
    driver.connect()
    with pytest.raises(ParseError, match="not a libvirt domain"):
        driver.poll()


@pytest.mark.parametrize("uri", ["qemu+tls://hv2/system", "qemu+tcp://hv2/system", "qemu://hv2/system"])
def test_a_host_reached_without_ssh_never_gets_this_machines_lock_configuration(uri):
    """virsh reaches it over TLS or TCP, but virttui can read files only here: they would be this machine's,
    and a cleanup would act on this machine's lease directory."""
    poll, xml = one_domain()

    class NoLocalFiles(ScriptedTransport):
        def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
            assert argv[0] != "sh", "read this machine's files for a remote host"
            return super().run(argv, timeout=timeout)

    driver = VirshDriver(uri, parse_uri(uri), NoLocalFiles([NODE_OK, poll, xml]))
    driver.connect()
    assert driver.lease_manager() is None
    assert any("over SSH only" in w for w in driver.poll().host.warnings)


def test_a_domain_undefined_between_the_listing_and_its_xml_is_left_out_not_a_failed_poll():
    """virsh's exit status is its last command's (or, in the session, says that any failed): a dumpxml of
    a domain undefined meanwhile fails, the others answer; the poll shows those, not an error."""
    kept, gone = "6695eb01-f6a4-8304-79aa-97f2502e193f", "7795eb01-f6a4-8304-79aa-97f2502e193f"
    listing = CommandResult(0, f"{kept} a\n{gone} b\n{SECTION_MARKER}\nDomain: 'a'\n  state.state=5\n"
                               f"Domain: 'b'\n  state.state=5\n{SECTION_MARKER}\n{SECTION_MARKER}\n", "")
    xml = CommandResult(1, f"<domain type='kvm'><name>a</name><uuid>{kept}</uuid></domain>\n{SECTION_MARKER}\n",
                        f"error: failed to get domain '{gone}'\n")
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), ScriptedTransport([NODE_OK, listing, xml]))
    driver.connect()
    assert [d.name for d in driver.poll().domains] == ["a"]


def test_a_description_holding_an_earlier_scripts_marker_is_harmless():
    """The poll script's marker is on every SSH host's /proc/*/cmdline: a guest's description written
    with it once made every later poll of the host fail. Each script now has a marker of its own."""
    poll, _ = one_domain()

    class SpoofingTransport(ScriptedTransport):
        def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
            if argv[0] != "sh" and "dumpxml" in argv[-1]:
                self.settle_combined(argv)
                seen = MARKER.findall(" ".join(c[-1] for c in self.commands))  # every marker the host saw
                self.answers.insert(0, CommandResult(0, f"<domain type='kvm'><name>a</name><uuid>{UUID}</uuid>"
                                                        f"<description>{' '.join(seen)}</description></domain>", ""))
            return super().run(argv, timeout=timeout)

    transport = SpoofingTransport([NODE_OK, poll, poll, poll])
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), transport)
    driver.connect()
    assert [d.name for d in driver.poll().domains] == ["a"]
    driver._xml.clear()  # noqa: SLF001 - the XML fetched again, as after a reconnect
    assert [d.name for d in driver.poll().domains] == ["a"]
    markers = [set(MARKER.findall(c[-1])) for c in transport.commands if MARKER.search(c[-1])]
    assert all(len(m) == 1 for m in markers) and len(set().union(*markers)) == len(markers) == 2


def test_absurd_counts_in_domstats_cost_nothing():
    """block.count / net.count of 10**11 used to walk 10**11 indexes: the host's poll never ended."""
    listing, xml = one_domain(stats="state.state=1\nblock.count=100000000000\nnet.count=100000000000\n"
                                    "net.0.rx.bytes=5")
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), ScriptedTransport([NODE_OK, listing, xml]))
    driver.connect()
    started = time.monotonic()
    dom = driver.poll().domains[0]
    assert dom.net_rx_bytes == 5 and time.monotonic() - started < 10


def test_an_event_stream_that_opens_again_says_so_and_every_xml_is_fetched_again():
    """Events sent while the stream was down were heard by nobody: after it reopens, and after a
    reconnect, every domain's XML is fetched again, not only the ones a heard event named."""
    import threading

    from virttui.drivers.events import EventWatcher
    from virttui.drivers.transport import LineStream
    from virttui.drivers.virshparse import VirshEvent

    class Lines(LineStream):
        def __init__(self, lines: list[str]) -> None:
            self.lines = lines

        def readline(self) -> str:
            return self.lines.pop(0) if self.lines else ""

        def close(self) -> None:
            self.lines = []

    opened = []

    class TwoStreams(Transport):
        def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
            raise AssertionError("no command here")

        def stream(self, argv):  # noqa: ANN001, ANN201
            opened.append(argv)
            if len(opened) > 2:
                raise ConnectionFailed("down")
            return Lines(["event 'lifecycle' for domain 'a': Started Booted\n"])

    heard = []
    done = threading.Event()

    def on_event(event) -> None:  # noqa: ANN001
        heard.append((event.kind, event.domain))
        if len(heard) == 3:
            done.set()

    watcher = EventWatcher(TwoStreams(), ["virsh", "event"], on_event, "qemu:///system")
    watcher.start()
    try:
        assert done.wait(10)
    finally:
        watcher.stop()
    assert heard[:3] == [("lifecycle", "a"), ("reopened", ""), ("lifecycle", "a")]

    listing, xml = one_domain()
    transport = ScriptedTransport([NODE_OK, listing, xml, listing, NODE_OK, listing, xml, listing, xml])
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), transport)
    driver.connect()
    driver.poll()
    driver.poll()  # steady state: no dumpxml
    driver.connect()  # a reconnect: the cache is gone
    driver.poll()
    driver._event(VirshEvent("reopened", ""))  # noqa: SLF001 - what the watcher delivers
    driver.poll()
    dumps = [c[-1] for c in transport.commands if "dumpxml" in c[-1]]
    assert len(dumps) == 3 and transport.answers == []


@pytest.mark.parametrize("refusal", [
    "error: command 'domstats' doesn't support option --nowait\n",  # an older virsh
    "error: unsupported flags (0x20000000) in function qemuConnectGetAllDomainStats\n",  # an older daemon
])
def test_the_poll_asks_for_stats_without_waiting_and_falls_back_on_a_virsh_without_nowait(refusal):
    old_virsh = CommandResult(1, "", refusal)
    listing, xml = one_domain(stats="state.state=1")
    transport = ScriptedTransport([NODE_OK, old_virsh, listing, xml, listing])
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), transport)
    driver.connect()
    assert driver.poll().domains[0].state is DomainState.RUNNING
    assert driver.poll().domains[0].state is DomainState.RUNNING
    polls = [c[-1] for c in transport.commands if "domstats" in c[-1]]
    assert "--nowait" in polls[0] and all("--nowait" not in p for p in polls[1:]) and len(polls) == 3


def test_actions_address_domains_by_uuid_only():
    transport = ScriptedTransport([CommandResult(0, "", "")])
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), transport)
    driver.perform("6695eb01-f6a4-8304-79aa-97f2502e193f", Action.DESTROY)
    assert transport.commands == [["virsh", "-q", "-c", "qemu:///system",
                                   "destroy 6695eb01-f6a4-8304-79aa-97f2502e193f"]]
    with pytest.raises(DomainNotFound):
        driver.perform("x'; touch /tmp/pwned; '", Action.START)


def test_a_script_cuts_its_output_at_its_own_marker():
    first, second = script(["a", "b"]), script(["a", "b"])
    assert first.text == f"a ; echo {first.marker} ; b" and first.marker != second.marker
    # a payload holding an earlier script's marker (a domain description written after reading
    # /proc/*/cmdline on the host) is plain text to the next script
    assert second.split(f"x {first.marker} y\n{second.marker}\nz") == [f"x {first.marker} y\n", "z"]


# -- Debian's virsh, with libvirt's test driver inside it ----------------------------------------
@needs_virsh
def test_virsh_driver_reads_the_demo_node_like_the_embedded_driver(clock):
    uri = f"test://{DEMO_NODE}"
    real = VirshDriver(uri, parse_uri(uri), LocalTransport())
    embedded = open_driver(uri, clock=clock)
    real.connect()
    embedded.connect()
    try:
        def view(snap):  # noqa: ANN001, ANN202 - capacity: libvirt's test driver keeps no block stats
            return {d.uuid: (d.name, d.state, d.vcpus, d.max_memory_kib,
                             [(k.target, k.source, k.format, k.readonly, k.shareable) for k in d.disks])
                    for d in snap.domains}

        got, want = view(real.poll()), view(embedded.poll())
        assert got == want
        snap = real.poll()
        assert snap.host.cpus == 32 and snap.host.hypervisor == "TEST"
        running = next(d for d in snap.domains if d.state is DomainState.RUNNING)
        assert f"<uuid>{running.uuid}</uuid>" in real.domain_xml(running.uuid)
    finally:
        real.close()
        embedded.close()


@needs_virsh
@pytest.mark.parametrize("with_session", [False, True])
def test_the_first_poll_of_a_host_with_thousands_of_domains_fits_every_virsh_run_in_an_argument(tmp_path, with_session):
    """All domains are new on the first poll: their XML comes in batches, each script an argument under
    Linux's 128 KiB cap (one batch for 1700 domains was over it: the host stayed in error)."""
    import uuid as uuidlib

    count = 1700
    domains = "".join(
        f'<domain type="test"><name>vm{i:04d}</name><uuid>{uuidlib.UUID(int=i + 1)}</uuid>'
        f'<memory unit="MiB">64</memory><vcpu>1</vcpu><os><type arch="x86_64">hvm</type></os></domain>'
        for i in range(count))
    node = tmp_path / "big.xml"
    node.write_text(f"<node><cpu><nodes>1</nodes><sockets>1</sockets><cores>2</cores><threads>1</threads></cpu>"
                    f"<memory>8388608</memory>{domains}</node>")
    uri = f"test://{node}"
    runs: list[int] = []

    class Measured(LocalTransport):
        def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
            runs.append(max(len(arg.encode()) for arg in argv))
            return super().run(argv, timeout=timeout)

    session = VirshSession(uri) if with_session else None
    driver = VirshDriver(uri, parse_uri(uri), Measured(), session=session)
    driver.connect()
    try:
        snap = driver.poll()
        assert len(snap.domains) == count and snap.domains[-1].name == f"vm{count - 1:04d}"
        assert snap.domains[0].memory_kib == 64 * 1024  # from each domain's XML
        assert runs or with_session  # one-shot virsh runs are measured; the session's go down its stdin
        assert not runs or max(runs) < 128 * 1024
    finally:
        driver.close()


@needs_virsh
def test_steady_state_poll_runs_virsh_once():
    uri = f"test://{DEMO_NODE}"
    runs: list[list[str]] = []

    class Counting(LocalTransport):
        def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
            if argv[0] == "virsh":
                runs.append(list(argv))
            return super().run(argv, timeout=timeout)

    driver = VirshDriver(uri, parse_uri(uri), Counting())
    driver.connect()
    driver.poll()  # connect: the node's facts with the listing; the first poll: one batched dumpxml
    assert len(runs) == 2 and "nodeinfo" in runs[0][-1] and "domstats" in runs[0][-1]
    runs.clear()
    driver.poll()
    assert len(runs) == 1 and "domstats" in runs[0][-1]


@needs_virsh
def test_unknown_uri_scheme_is_a_one_line_cli_error(capsys):
    assert main(["status", "-c", "bogus:///system"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bogus:///system" in err[0]


@needs_virsh
def test_status_json_of_a_local_virsh_uri_matches_virsh(capsys, tmp_path):
    uri = f"test://{DEMO_NODE}"
    # test:// URIs go to the embedded driver; the same node through virsh must agree with it.
    assert main(["status", "--json", "-c", uri]) == 0
    embedded = json.loads(capsys.readouterr().out)
    listing = subprocess.run(["virsh", "-c", uri, "list", "--all", "--uuid", "--name"], capture_output=True,
                             text=True, check=True).stdout
    names = {line.split(" ", 1)[1] for line in listing.splitlines() if line.strip()}
    assert {d["name"] for d in embedded["hosts"][0]["domains"]} == names


@needs_virsh
def test_snapshot_names_that_look_like_options_name_only_themselves():
    from virttui.drivers.virshsession import VirshSession

    uri = "test:///default"  # one interactive virsh keeps the test driver's state between commands
    driver = VirshDriver(uri, parse_uri(uri), LocalTransport(), session=VirshSession(uri))
    driver.connect()
    try:
        test = next(d for d in driver.poll().domains if d.name == "test")
        driver.create_snapshot(test.uuid, "--current")
        driver.create_snapshot(test.uuid, "keep-me")  # the current snapshot now
        assert {s.name for s in driver.snapshots(test.uuid)} == {"--current", "keep-me"}
        driver.delete_snapshot(test.uuid, "--current")
        assert [s.name for s in driver.snapshots(test.uuid)] == ["keep-me"]
    finally:
        driver.close()


@needs_virsh
def test_a_line_virsh_cannot_parse_is_its_error_not_a_dead_session():
    from virttui.drivers.virshsession import VirshSession

    session = VirshSession("test:///default")
    try:
        failed = session.run("list --no-such-option", 20)  # virsh drops the whole line it can't parse
        assert failed.returncode == 1 and "no-such-option" in failed.stderr
        assert session.run("list --name", 20).stdout == "test\n"  # same session, still in step
    finally:
        session.close()


@needs_virsh
def test_a_flood_on_stderr_does_not_stall_the_session():
    from virttui.drivers.virshsession import VirshSession

    session = VirshSession("test:///default")
    try:  # ~130 KiB of errors in one command line: twice what a pipe holds
        failed = session.run(" ; ".join(["dominfo no-such-domain-" + "x" * 40] * 1500), 20)
        assert failed.returncode == 1 and failed.stderr.count("no-such-domain") >= 1000
        assert session.run("list --name", 20).stdout == "test\n"
    finally:
        session.close()


@needs_virsh
def test_a_closed_host_starts_no_virsh_for_a_late_action_or_watch_until_it_connects_again():
    """An action in flight when its host is removed, or a poll ending after the app closed: no new
    interactive virsh, no event stream that would outlive the console."""
    uri = f"test://{DEMO_NODE}"
    driver = VirshDriver(uri, parse_uri(uri), LocalTransport(), session=VirshSession(uri))
    driver.connect()
    uuid = driver.poll().domains[0].uuid
    driver.close()
    with pytest.raises(ConnectionFailed, match="closed"):
        driver.perform(uuid, Action.DESTROY)
    assert driver.session._proc is None  # noqa: SLF001
    driver.watch(lambda: None)
    assert driver._watcher is None  # noqa: SLF001
    driver.connect()  # a reconnect of the same host works again
    try:
        assert driver.poll().domains
    finally:
        driver.close()


def test_slow_commands_get_their_own_virsh_and_minutes_not_the_sessions_30_seconds():
    """A memory snapshot of a big guest takes minutes: reported failed after 30 s while libvirtd went on, and
    holding the host's session (its polls) all along. Its own virsh process, LONG_ACTION_TIMEOUT."""
    from virttui.drivers.virsh import LONG_ACTION_TIMEOUT

    uuid = "6695eb01-f6a4-8304-79aa-97f2502e193f"
    timeouts: list[tuple[str, float]] = []

    class Recording(ScriptedTransport):
        def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
            timeouts.append((argv[-1].split()[0], timeout))
            return super().run(argv, timeout=timeout)

    class NoSession:  # the interactive virsh: it must not be held for minutes
        def run(self, command, timeout):  # noqa: ANN001, ANN201
            raise AssertionError(f"{command} ran in the session")

        def reopen(self) -> None: ...

        def close(self) -> None: ...

    ok = CommandResult(0, "", "")
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), Recording([ok] * 4), session=NoSession())
    driver.create_snapshot(uuid, "before")
    driver.revert_snapshot(uuid, "before")
    driver.delete_snapshot(uuid, "before")
    driver.undefine(uuid, remove_storage=True)
    assert timeouts == [("snapshot-create-as", LONG_ACTION_TIMEOUT), ("snapshot-revert", LONG_ACTION_TIMEOUT),
                        ("snapshot-delete", LONG_ACTION_TIMEOUT), ("undefine", LONG_ACTION_TIMEOUT)]
    assert LONG_ACTION_TIMEOUT >= 600


@pytest.mark.parametrize("state, reason, expected", [
    (3, "5", "paused (I/O error)"),  # a full disk: `p` would resume it straight back into the error
    (3, "1", "paused"),  # paused by hand: nothing to add
    (5, "3", "shut off (crashed)"),
    (5, "1", "shut off"),
    (3, "junk", "paused"),  # a reason is worth showing, not failing the poll for
])
def test_a_notable_state_reason_is_shown_with_the_state(state, reason, expected):
    poll, xml = one_domain(stats=f"state.state={state}\nstate.reason={reason}")
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), ScriptedTransport([NODE_OK, poll, xml]))
    driver.connect()
    assert driver.poll().domains[0].state_text == expected


def test_a_driver_closed_while_its_poll_runs_gives_a_host_error_never_an_assertion():
    """Quitting closes every driver on its own thread while a poll may still be running (found by
    a CI run: `assert facts is not None` after close() had cleared the node facts)."""
    poll, xml = one_domain()

    class ClosedMidPoll(ScriptedTransport):
        driver: VirshDriver

        def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
            answer = super().run(argv, timeout=timeout)
            if answer is poll:
                self.driver.close()  # the quit, landing between the poll's virsh run and its end
            return answer

        def close(self) -> None: ...

    transport = ClosedMidPoll([NODE_OK, poll, xml])
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), transport)
    transport.driver = driver
    driver.connect()
    try:
        snapshot = driver.poll()
    except DriverError:
        return  # a host error is fine: the app is quitting
    assert snapshot.host.hostname == "hv"  # or the poll finished with the facts it started with


@pytest.mark.parametrize(("unreadable", "warned"), [
    (0, "/etc/libvirt/qemu.conf"), (1, "/etc/libvirt/qemu-sanlock.conf"), (2, "")])
def test_a_lock_config_file_that_cannot_be_read_is_a_warning_not_a_missing_file(tmp_path, unreadable, warned):
    """The driver's own shell, run for real: a 0600 qemu.conf read by a non-root login looked absent,
    and the host showed no lock manager where sanlock ran. Only qemu.conf and the chosen manager's
    own file matter: an unreadable qemu-lockd.conf on a sanlock host changes nothing. (Root reads
    any file: a directory stands in for one it may not.)"""
    paths = [tmp_path / "qemu.conf", tmp_path / "qemu-sanlock.conf", tmp_path / "qemu-lockd.conf"]
    paths[0].write_text('lock_manager = "sanlock"\n')
    paths[1].write_text("auto_disk_leases = 1\nhost_id = 1\n")
    paths[unreadable].unlink(missing_ok=True)
    paths[unreadable].mkdir()

    class Host(ScriptedTransport):
        def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
            if argv[0] == "sh":
                return LocalTransport().run([*argv[:4], *map(str, paths)])
            return super().run(argv, timeout=timeout)

    driver = VirshDriver("qemu+ssh://hv1/system", parse_uri("qemu+ssh://hv1/system"), Host([NODE_OK]))
    driver.connect()
    warning = driver._lock_warning  # noqa: SLF001 - what the next poll's snapshot carries
    if warned:
        assert driver.lease_manager() is None and warning.startswith(f"lock configuration: cannot read {warned}")
    else:
        assert driver.lease_manager() is not None and warning == ""


@pytest.mark.parametrize(("line", "kind", "name"), [  # virsh 9's own formats (virsh-domain-event.c)
    ("event 'tray-change' for domain 'vm1' disk hdc: opened", "tray-change", "vm1"),
    ("event 'disk-change' for domain 'vm 1' disk vdb: /a.iso -> /b.iso: dropped", "disk-change", "vm 1"),
    ("event 'agent-lifecycle' for domain 'vm1': state: 'connected' reason: 'channel event'", "agent-lifecycle",
     "vm1"),
    ("event 'migration-iteration' for domain 'a': b': iteration: '3'", "migration-iteration", "a': b"),
    ("event 'tunable' for domain 'vm1':", "tunable", "vm1"),
    ("event 'reboot' for domain 'vm1'", "reboot", "vm1"),
    ("event 'balloon-change' for domain 'vm1': 1048576KiB", "balloon-change", "vm1"),
])
def test_event_lines_of_every_shape_name_their_domain(line, kind, name):
    """A wrong name ("" for a tray change) re-fetched the XML of every domain on the host."""
    assert parse_event(line + "\n") == VirshEvent(kind, name)


def test_a_name_with_a_leading_space_is_not_fetched_again_every_poll():
    listing, xml = one_domain(" db", stats="state.state=1")
    transport = ScriptedTransport([NODE_OK, listing, xml, listing, listing])
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), transport)
    driver.connect()
    for _ in range(3):
        driver.poll()
    assert [c[-1] for c in transport.commands if "dumpxml" in c[-1]] == [f"dumpxml {UUID}"]


def test_an_action_between_connect_and_poll_is_seen_by_the_poll():
    """The poll right after connect takes the listing read with the node's facts, unless anything
    ran on the host in between: the autostart an action set must show, not the listing from before."""
    listing, xml = one_domain()
    autostarted = CommandResult(0, listing.stdout.rsplit(SECTION_MARKER, 2)[0] + f"{SECTION_MARKER}\na\n"
                                   f"{SECTION_MARKER}\n", "")
    transport = ScriptedTransport([NODE_OK, listing, CommandResult(0, "", ""), autostarted, xml])
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), transport)
    driver.connect()
    driver.set_autostart(UUID, True)
    assert driver.poll().domains[0].autostart is True
    assert sum("domstats" in c[-1] for c in transport.commands) == 2  # the connect's, and the poll's own


def test_an_action_that_ran_while_the_connect_read_the_listing_is_seen_by_the_poll():
    """An action on another thread can finish while the connect's run (node facts and listing) is
    still answering, so the listing may predate it: the poll then reads its own."""
    import threading

    listing, xml = one_domain()
    autostarted = CommandResult(0, listing.stdout.rsplit(SECTION_MARKER, 2)[0] + f"{SECTION_MARKER}\na\n"
                                   f"{SECTION_MARKER}\n", "")
    combined_running, release = threading.Event(), threading.Event()

    class Host(ScriptedTransport):
        def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
            if argv[0] != "sh" and argv[-1].startswith("nodeinfo "):
                combined_running.set()
                assert release.wait(10)
                return self._marked(argv, CommandResult(0, f"{NODE_OK.stdout}\n{SECTION_MARKER}\n{listing.stdout}", ""))
            return super().run(argv, timeout=timeout)

    transport = Host([CommandResult(0, "", ""), autostarted, xml])
    driver = VirshDriver("qemu:///system", parse_uri("qemu:///system"), transport)
    connecting = threading.Thread(target=driver.connect)
    connecting.start()
    assert combined_running.wait(10)
    driver.set_autostart(UUID, True)  # answered while the connect's run is still in flight
    release.set()
    connecting.join(10)
    assert driver.poll().domains[0].autostart is True
