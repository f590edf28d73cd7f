"""Fault injection against the real stack: one host breaks, the console carries on, and heals.

Every case drives the Textual app over both test hosts of a stack (SSH URIs,
as an operator would) and checks four things: the console keeps answering keys,
the failing host is marked with one clear line, the other host is not disturbed,
and once the fault is removed the console recovers by itself, without a restart.

Faults are injected for real, inside ONE host's mount namespace: sshd killed
while an action runs, the sshd host key swapped, a `virsh` earlier in that
host's PATH that prints garbage, the lease directory gone from that host, lease
files truncated and rewritten while they are scanned, a domain undefined under
its open detail screen. Every fault is undone in a `finally`, and each test
ends by checking the host is healthy again, so the session-wide stacks stay
usable by the tests that come after.

Already covered elsewhere, so not repeated here: sshd killed between actions and
libvirtd restarted (test_realhosts.py), a changed key met at the first connect
(test_realhosts.py), a stopped sanlock daemon (test_leases_real.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import shutil
import subprocess
import threading
import time
import uuid as uuidlib
from pathlib import Path

import pytest
from support.realhosts import select_domain, uri_with_known_hosts

from realstack.harness import _marker_processes
from virttui.console.app import VirtTUI
from virttui.drivers.model import ConnectionState, DomainState
from virttui.drivers.registry import open_driver
from virttui.locks.naming import sanlock_lease_name
from virttui.screens.confirm import ConfirmScreen
from virttui.screens.detail import DomainDetailScreen
from virttui.screens.main import MainScreen
from virttui.widgets.panes import DomainsTable, HostsTable, split_domain_key

pytestmark = pytest.mark.realstack
POLL = 0.25  # seconds between polls: a failing host retries after 0.25, 0.5, 1, 2 s…


# -- helpers ---------------------------------------------------------------------------------------
async def wait(pilot, predicate, timeout: float = 20.0, what: str = "") -> None:  # noqa: ANN001
    """Let the app run until predicate() holds. Unlike test_realhosts.until, never waits for workers
    to finish: an action worker may be blocked on the very fault being injected."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"the console never showed {what or 'the expected state'} within {timeout} s")


def state(app, uri: str) -> ConnectionState:  # noqa: ANN001
    return app.fleet.host(uri).state


def connected(app, *uris: str) -> bool:  # noqa: ANN001
    return all(state(app, uri) is ConnectionState.CONNECTED for uri in uris)


async def answers_keys(pilot) -> None:  # noqa: ANN001
    """A key press is handled now: `o` cycles the Domains sort."""
    screen = pilot.app.screen
    assert isinstance(screen, MainScreen)
    table = screen.query_one(DomainsTable)
    order = [key for key in DomainsTable.SORTABLE if key in table.shown_columns]
    before = table.sort_column
    await pilot.press("o")
    assert table.sort_column == order[(order.index(before) + 1) % len(order)]


async def marked_in_error(pilot, uri: str, *needles: str) -> str:  # noqa: ANN001
    """The host is in error with one printable line, and the Hosts pane shows exactly that line."""
    app = pilot.app
    host = app.fleet.host(uri)
    assert host.state is ConnectionState.ERROR
    error = host.last_error
    assert error and "\n" not in error and error.isprintable(), repr(error)
    assert not error.startswith("internal error"), error  # a typed failure, not a bug caught by the net
    for needle in needles:
        assert needle in error, error

    def cells() -> list[str]:
        return [cell.text for cell in app.screen.query_one(HostsTable).get_row(uri)]

    await wait(pilot, lambda: app.fleet.host(uri).last_error in cells(), timeout=5, what="the error in the Hosts pane")
    assert cells()[1] == "error" or cells()[1].startswith("retry in "), cells()
    return error


async def other_host_unaffected(pilot, uri: str) -> None:  # noqa: ANN001
    """The healthy host stays connected and keeps being polled while the other one fails."""
    app = pilot.app
    seen = app.fleet.snapshot(uri).taken_at
    await wait(pilot, lambda: app.fleet.snapshot(uri).taken_at > seen, timeout=10, what=f"a new poll of {uri}")
    assert app.fleet.host(uri).state is ConnectionState.CONNECTED and not app.fleet.host(uri).last_error


def error_notes(app) -> list[str]:  # noqa: ANN001
    return [n.message for n in app._notifications if n.severity == "error"]  # noqa: SLF001


def healthy(host) -> None:  # noqa: ANN001 - harness TestHost
    """The host answers over SSH with its own key and its own virsh, as the session's other tests expect."""
    out = host.ssh("virsh -c qemu:///system hostname && cat /proc/self/mountinfo").stdout  # ssh joins its args
    assert out.startswith(host.name) and " /usr/local/sbin " not in out


@contextlib.contextmanager
def fake_virsh(host, tmp_path: Path):  # noqa: ANN001, ANN201
    """A `virsh` earlier in PATH for SSH sessions of ONE host (bind-mounted over /usr/local/sbin in its
    namespace); `set_mode` chooses what it does. The harness's own virsh calls (no SSH_CONNECTION) and
    every other host run the real one."""
    bindir = tmp_path / f"fake-virsh-{host.name}"
    bindir.mkdir()
    mode = bindir / "mode"
    mode.write_text("pass")
    (bindir / "virsh").write_text(f"""#!/bin/sh
if [ -n "$SSH_CONNECTION" ]; then
  case "$(cat {mode}) $*" in
    "event-garbage "*" event "*)  # one line that is not UTF-8, then the real stream
      printf '\\377\\376 not UTF-8 \\351t\\351\\n' ;;
    *" event "*) ;;  # the other faults leave the event stream alone
    "garbage "*)
      printf '\\377\\376\\000garbage \\033[2J on stdout\\n@@virttui-section@@\\n'
      printf 'virsh: \\033[31msegfault\\033[0m in \\033]0;owned\\007libvirt\\nat line 2\\n' >&2
      exit 3 ;;
    "garbage-exit-0 "*)
      printf 'Segmentation fault\\n\\377\\376 not what virsh prints\\n'
      exit 0 ;;
    "slow-start "*" start "*)
      sleep 2 ;;
  esac
fi
exec /usr/bin/virsh "$@"
""")
    (bindir / "virsh").chmod(0o755)
    host.run("mount", "--bind", str(bindir), "/usr/local/sbin")
    try:
        yield mode.write_text
    finally:
        mode.write_text("pass")
        if host.run("umount", "/usr/local/sbin", check=False).returncode != 0:
            host.run("umount", "-l", "/usr/local/sbin")  # a wrapper still running keeps it busy


def remote_processes(host, *words: str) -> list[int]:  # noqa: ANN001
    """Processes inside the host's namespace whose command line has all these words."""
    found = []
    for pid in _marker_processes(host.marker):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if all(word in cmdline.split() for word in words):
            found.append(pid)
    return found


def two_host_app(stack, first_uri: str | None = None) -> tuple[VirtTUI, list]:  # noqa: ANN001
    drivers = [open_driver(first_uri or stack.hosts[0].ssh_uri), open_driver(stack.hosts[1].ssh_uri)]
    return VirtTUI(drivers, poll_interval=POLL), drivers


@pytest.fixture
def guest(realstack):
    host = realstack.hosts[0]
    name = f"vttest-f{uuidlib.uuid4().hex[:6]}"
    uuid = host.define_guest(name)
    yield host, name, uuid
    if host.virsh("domuuid", name, check=False).strip():
        host.undefine_guest(name)
    else:
        host.run("rm", "-f", host.disk_path(name))


# -- sshd killed while an action runs ----------------------------------------------------------------
async def test_sshd_killed_while_an_action_runs(realstack, guest, tmp_path, ssh_client):
    host, name, uuid = guest
    app, drivers = two_host_app(realstack)
    one, two = (d.uri for d in drivers)
    with fake_virsh(host, tmp_path) as set_mode:
        set_mode("slow-start")  # `virsh start` takes 2 s on this host: the action is surely in flight
        try:
            async with app.run_test(size=(120, 40)) as pilot:
                await wait(pilot, lambda: connected(app, one, two) and app.fleet.domain(one, uuid) is not None)
                await select_domain(pilot, one, uuid)
                await pilot.press("s")
                await wait(pilot, lambda: remote_processes(host, "sleep", "2"), timeout=10,
                           what="the start running on the host")
                assert app.actions.pending.get((one, uuid)) == "starting"
                host.stop_sshd()  # the listener and every session, the action's included
                try:
                    await wait(pilot, lambda: (one, uuid) not in app.actions.pending
                               and state(app, one) is ConnectionState.ERROR, what="the action and host failing")
                    failed = [m for m in error_notes(app) if name in m]
                    assert failed and all("\n" not in m for m in failed), failed
                    await marked_in_error(pilot, one)
                    await answers_keys(pilot)
                    await other_host_unaffected(pilot, two)
                finally:
                    host.start_sshd()
                await wait(pilot, lambda: connected(app, one), what="host 1 reconnected")
                # the start's outcome is unknown to the console; once it settles, it shows what virsh says
                await wait(pilot, lambda: not remote_processes(host, "sleep", "2")
                           and not remote_processes(host, "start", uuid), what="the orphaned start ending")
                truth = {"running": DomainState.RUNNING, "shut off": DomainState.SHUT_OFF}
                await wait(pilot, lambda: app.fleet.domain(one, uuid).state is truth[
                    host.virsh("domstate", uuid).strip()], what="the domain's real state")
                assert not app.actions.pending
        finally:
            host.start_sshd()
    healthy(host)


# -- the host key changes while connected -----------------------------------------------------------
@pytest.mark.parametrize("key_type", ["ed25519", "rsa"])  # the same type, or one known_hosts has no key of
async def test_a_host_key_changed_while_connected_is_refused_until_restored(realstack, tmp_path, key_type, ssh_client):
    host = realstack.hosts[0]
    known = tmp_path / "known_hosts"
    shutil.copyfile(realstack.known_hosts, known)
    pinned = known.read_bytes()
    keys = [host.dir / "ssh/host_key", host.dir / "ssh/host_key.pub"]
    saved = [path.read_bytes() for path in keys]
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", "impostor", "-f", str(tmp_path / "new")],
                   check=True, capture_output=True)
    app, drivers = two_host_app(realstack, uri_with_known_hosts(host, str(known)))
    one, two = (d.uri for d in drivers)
    swapped = False
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait(pilot, lambda: connected(app, one, two))
            for path, new in zip(keys, (tmp_path / "new", tmp_path / "new.pub"), strict=True):
                path.write_bytes(new.read_bytes())
            swapped = True
            host.stop_sshd()  # drops the session: the console must reconnect and meet the new key
            host.start_sshd()
            await wait(pilot, lambda: "CHANGED" in app.fleet.host(one).last_error, what="the CHANGED refusal")
            await marked_in_error(pilot, one, "CHANGED", "refusing to connect")
            assert not isinstance(app.screen, ConfirmScreen)  # never offered for acceptance
            assert drivers[0].pending_host_key() is None
            await answers_keys(pilot)
            await other_host_unaffected(pilot, two)
            await pilot.pause(1.0)  # a retry or two later: still refused, nothing saved
            assert state(app, one) is ConnectionState.ERROR and "CHANGED" in app.fleet.host(one).last_error
            assert known.read_bytes() == pinned
            for path, data in zip(keys, saved, strict=True):
                path.write_bytes(data)
            swapped = False
            host.stop_sshd()
            host.start_sshd()
            await wait(pilot, lambda: connected(app, one), what="the host reconnected with its own key")
            assert known.read_bytes() == pinned
    finally:
        if swapped:
            for path, data in zip(keys, saved, strict=True):
                path.write_bytes(data)
            host.stop_sshd()
        host.start_sshd()
    healthy(host)


# -- virsh answers garbage -----------------------------------------------------------------------------
async def test_virsh_printing_garbage_is_a_clear_host_error(realstack, tmp_path, ssh_client):
    host = realstack.hosts[0]
    app, drivers = two_host_app(realstack)
    one, two = (d.uri for d in drivers)
    with fake_virsh(host, tmp_path) as set_mode:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait(pilot, lambda: connected(app, one, two))
            set_mode("garbage")  # exit status 3, binary junk and a marker on stdout, terminal escapes on stderr
            await wait(pilot, lambda: state(app, one) is ConnectionState.ERROR, what="host 1 in error")
            error = await marked_in_error(pilot, one, "segfault", "at line 2")
            assert "\x1b" not in error and "\x07" not in error  # the host's escapes never reach the terminal
            await answers_keys(pilot)
            await other_host_unaffected(pilot, two)
            set_mode("garbage-exit-0")  # success, and still nothing virsh would print
            await wait(pilot, lambda: "segfault" not in app.fleet.host(one).last_error
                       and state(app, one) is ConnectionState.ERROR, what="the second garbage error")
            await marked_in_error(pilot, one)
            await answers_keys(pilot)
            set_mode("pass")
            await wait(pilot, lambda: connected(app, one), what="host 1 recovered")
            assert app.fleet.snapshot(one).host.hostname == host.name
    healthy(host)


# -- lease directory unreadable on one host ---------------------------------------------------------------
def _hide_lease_dir(host) -> None:  # noqa: ANN001
    # root reads a chmod 000 directory anyway (CAP_DAC_OVERRIDE), so the fault is the lease mount gone
    # from this host: lazily unmounted (its sanlock keeps its open lockspace) and the mount point removed
    inside = host.lease_dir_inside
    host.run("sh", "-c", f"umount -l {inside} && rmdir {inside}")


def _restore_lease_dir(host, stack) -> None:  # noqa: ANN001
    inside = host.lease_dir_inside
    mounted = host.run("findmnt", "-n", inside, check=False).returncode == 0
    if not mounted:
        host.run("sh", "-c", f"mkdir -p {inside} && mount --bind {stack.lease_dir} {inside}")


async def test_an_unreadable_lease_directory_is_a_per_host_lease_error(sanlock_stack):
    h1, h2 = sanlock_stack.hosts
    app, drivers = two_host_app(sanlock_stack)
    one, two = (d.uri for d in drivers)

    def leases(uri: str):  # noqa: ANN202
        snap = app.fleet.snapshot(uri)
        return snap.leases if snap is not None else None

    def lockspace_cell(uri: str) -> str:
        return app.screen.query_one(HostsTable).get_row(uri)[-1].text

    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await wait(pilot, lambda: connected(app, one, two) and leases(one) and leases(two)
                       and not leases(two).error and lockspace_cell(two) == "id 2 live")
            _hide_lease_dir(h2)
            await wait(pilot, lambda: leases(two).error, what="host 2's lease error")
            error = leases(two).error
            assert error == "lease directory /var/lib/libvirt/sanlock: No such file or directory"
            await wait(pilot, lambda: lockspace_cell(two) == "id 2 error"
                       and error in str(app.screen.query_one("#leases").border_title), what="the panes showing it")
            assert lockspace_cell(one) == "id 1 live"
            assert connected(app, one, two)  # a lease problem is not a connection problem
            assert not leases(one).error  # host 1 still reads the shared directory
            await answers_keys(pilot)
            await other_host_unaffected(pilot, one)
            _restore_lease_dir(h2, sanlock_stack)
            await wait(pilot, lambda: not leases(two).error and lockspace_cell(two) == "id 2 live",
                       what="host 2's leases back")
            assert {f.name for f in leases(two).files} == {f.name for f in leases(one).files}
    finally:
        _restore_lease_dir(h2, sanlock_stack)
    assert h2.lockspace_joined()  # its sanlock kept the lockspace throughout
    assert h2.run("test", "-e", f"{h2.lease_dir_inside}/__LIBVIRT__DISKS__", check=False).returncode == 0


# -- lease files truncated while being read ------------------------------------------------------------------
async def test_lease_files_truncated_while_scanned_never_crash(sanlock_stack, caplog):
    names = [sanlock_lease_name(f"/fault/truncate/{uuidlib.uuid4()}") for _ in range(10)]
    paths = [Path(sanlock_stack.make_stale_lease(name)) for name in names]
    size = paths[0].stat().st_size
    good = {path: path.read_bytes()[:4096] for path in paths}

    def restore(path: Path) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, good[path], 0)
            os.ftruncate(fd, size)
        finally:
            os.close(fd)
    stop = threading.Event()
    mangled = {"count": 0}

    def mangle() -> None:
        rng = random.Random(1234)
        while not stop.is_set():
            path = rng.choice(paths)
            action = rng.choice(["truncate", "truncate", "rewrite", "vanish", "torn"])
            try:
                if action == "truncate":
                    os.truncate(path, rng.choice([0, 3, 4, 100, 199, 200, 511]))
                elif action == "rewrite":
                    restore(path)
                elif action == "vanish":
                    path.unlink(missing_ok=True)
                    time.sleep(0.002)
                    restore(path)
                else:  # half a new header over the old one
                    with open(path, "r+b") as handle:
                        handle.write(os.urandom(rng.randrange(1, 200)))
            except OSError:
                pass
            mangled["count"] += 1
            time.sleep(0.001)

    app, drivers = two_host_app(sanlock_stack)
    one, two = (d.uri for d in drivers)
    seen_errors: set[str] = set()
    thread = threading.Thread(target=mangle, name="mangle leases", daemon=True)
    try:
        with caplog.at_level(logging.ERROR):
            async with app.run_test(size=(120, 40)) as pilot:
                await wait(pilot, lambda: connected(app, one, two) and app.fleet.snapshot(two).leases is not None)
                for driver in drivers:  # a pass over the files on every poll, so every poll meets the mangling
                    driver.lease_manager().slow_interval = 0.0
                thread.start()
                deadline = time.monotonic() + 2.0
                while time.monotonic() < deadline:
                    await pilot.pause(0.05)
                    assert connected(app, one, two), [app.fleet.host(u).last_error for u in (one, two)]
                    for uri in (one, two):
                        snap = app.fleet.snapshot(uri)
                        assert not snap.leases.error  # the directory stays readable: only files are bad
                        seen_errors |= {f.error for f in snap.leases.files if f.name in names and f.error}
                    app.fleet.lease_rows()  # the Leases pane's view of the mess
                await answers_keys(pilot)
                stop.set()
                thread.join(5)
                for path in paths:
                    restore(path)
                polled = app.fleet.snapshot(two).taken_at

                def all_good() -> bool:
                    rows = {s.name: s for _, s in app.fleet.lease_rows()}
                    return app.fleet.snapshot(two).taken_at > polled and all(
                        name in rows and rows[name].state.value in ("free", "orphan") for name in names)

                await wait(pilot, all_good, what="every lease file readable again")
                assert not error_notes(app)
    finally:
        stop.set()
        thread.join(5)
        for path in paths:
            path.unlink(missing_ok=True)
    assert mangled["count"] > 100
    assert any("short leader record" in e for e in seen_errors), seen_errors  # the fault did hit the scans
    assert not [r for r in caplog.records if r.name.startswith("virttui") and r.levelno >= logging.ERROR], \
        caplog.text  # nothing was caught as an unexpected exception (each would be logged with its traceback)


# -- a domain undefined under its detail screen ----------------------------------------------------------------
async def test_a_domain_undefined_under_its_detail_screen(realstack, guest):
    host, name, uuid = guest
    app, drivers = two_host_app(realstack)
    one, two = (d.uri for d in drivers)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait(pilot, lambda: connected(app, one, two) and app.fleet.domain(one, uuid) is not None)
        await select_domain(pilot, one, uuid)
        await pilot.press("enter")
        await wait(pilot, lambda: isinstance(app.screen, DomainDetailScreen))
        detail = app.screen
        xml = detail.query_one("#xml")
        await wait(pilot, lambda: f"<uuid>{uuid}</uuid>" in getattr(xml.content, "code", ""), what="the XML")
        host.undefine_guest(name)
        head = detail.query_one("#detail-head")
        await wait(pilot, lambda: "is gone" in head.content.plain, what="the domain shown as gone")
        assert head.content.plain == f"{name} is gone from {app.fleet.host(one).label}"  # named as last seen
        assert app.screen is detail and connected(app, one, two)
        await pilot.press("s")  # lifecycle keys on a gone domain: nothing to act on, nothing breaks
        await pilot.pause(0.2)
        assert not app.actions.pending and not error_notes(app)
        await pilot.press("escape")
        await wait(pilot, lambda: isinstance(app.screen, MainScreen))
        await answers_keys(pilot)
        assert app.fleet.domain(one, uuid) is None
        assert all(split_domain_key(key.value)[1] != uuid for key in app.screen.query_one(DomainsTable).rows)
        await other_host_unaffected(pilot, two)
    healthy(host)


# -- an event stream line that is not UTF-8 ------------------------------------------------------------------
async def test_an_event_line_that_is_not_utf8_leaves_the_event_stream_running(realstack, guest, tmp_path,
                                                                              monkeypatch, ssh_client):
    host, name, uuid = guest
    crashed: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: crashed.append(args.exc_value))
    driver = open_driver(host.ssh_uri)
    app = VirtTUI([driver], poll_interval=3600)  # no timed poll: only the event stream can show a change
    with fake_virsh(host, tmp_path) as set_mode:
        set_mode("event-garbage")  # one line of Latin-1 junk, then the real `virsh event` stream
        async with app.run_test(size=(120, 40)) as pilot:
            await wait(pilot, lambda: connected(app, driver.uri) and app.fleet.domain(driver.uri, uuid))
            await wait(pilot, lambda: remote_processes(host, "/usr/bin/virsh", "event"), what="the event stream")
            await pilot.pause(0.5)  # the junk line has been read
            host.virsh("start", uuid)
            await wait(pilot, lambda: crashed or app.fleet.domain(driver.uri, uuid).state is DomainState.RUNNING,
                       timeout=8, what="the start, told by an event")
            if crashed:
                raise crashed[0]  # the stream's thread died: no event will ever come
            assert app.fleet.domain(driver.uri, uuid).state is DomainState.RUNNING
            await answers_keys(pilot)
    healthy(host)
