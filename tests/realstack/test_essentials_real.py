"""Operator essentials on real libvirt: snapshots of qcow2 guests, autostart, undefine, memory stats, console."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
import uuid as uuidlib

import pytest

from virttui.drivers.base import Action
from virttui.drivers.errors import DriverError
from virttui.drivers.registry import open_driver

pytestmark = pytest.mark.realstack


@pytest.fixture(params=["local", "ssh"])
def connected(request, realstack):
    host = realstack.hosts[0]
    name = f"vttest-e{uuidlib.uuid4().hex[:6]}"
    uuid = host.define_guest(name)
    driver = open_driver(host.local_uri if request.param == "local" else host.ssh_uri)
    driver.connect()
    yield host, driver, name, uuid
    driver.close()
    if host.virsh("list", "--all", "--name").split().count(name):
        host.undefine_guest(name)


def test_snapshots_create_list_revert_delete(connected):
    host, driver, name, uuid = connected
    driver.create_snapshot(uuid, 'before "upgrade"', "clean install, shut off")
    driver.perform(uuid, Action.START)
    driver.create_snapshot(uuid, "running one")
    snaps = {s.name: s for s in driver.snapshots(uuid)}
    assert snaps['before "upgrade"'].description == "clean install, shut off"
    assert snaps['before "upgrade"'].state == "shutoff" and snaps["running one"].state == "running"
    assert snaps["running one"].current and snaps["running one"].parent == 'before "upgrade"'
    assert set(host.virsh("snapshot-list", uuid, "--name").split("\n")) - {""} == set(snaps)
    driver.revert_snapshot(uuid, 'before "upgrade"')
    assert host.virsh("domstate", uuid).strip() == "shut off"
    driver.delete_snapshot(uuid, "running one")
    assert [s.name for s in driver.snapshots(uuid)] == ['before "upgrade"']
    with pytest.raises(DriverError):
        driver.revert_snapshot(uuid, "no such snapshot")
    with pytest.raises(DriverError):
        driver.create_snapshot(uuid, "two\nlines")
    driver.delete_snapshot(uuid, 'before "upgrade"')


def test_autostart_toggle_and_undefine_keeps_storage(connected):
    host, driver, name, uuid = connected
    driver.set_autostart(uuid, True)
    assert "enable" in host.virsh("dominfo", uuid)
    assert {d.uuid: d.autostart for d in driver.poll().domains}[uuid] is True
    driver.set_autostart(uuid, False)
    assert {d.uuid: d.autostart for d in driver.poll().domains}[uuid] is False
    disk = host.disk_path(name)
    driver.undefine(uuid)
    assert name not in host.virsh("list", "--all", "--name").split()
    assert uuid not in {d.uuid for d in driver.poll().domains}
    assert host.run("test", "-f", disk, check=False).returncode == 0  # storage stays unless asked
    host.run("rm", "-f", disk)


def test_memory_stats_period_on_a_running_guest(connected):
    host, driver, name, uuid = connected
    with pytest.raises(DriverError, match="not running"):
        driver.set_memory_stats_period(uuid, 5)
    driver.perform(uuid, Action.START)
    driver.set_memory_stats_period(uuid, 5)
    assert "<stats period='5'/>" in host.virsh("dumpxml", uuid)
    dom = {d.uuid: d for d in driver.poll().domains}[uuid]
    assert dom.memory_used_kib is None  # no balloon driver in a guest without an OS: "n/a", not a guess
    driver.perform(uuid, Action.DESTROY)


def _attach_in_a_pty(uri: str, uuid: str, ssh_client: str = "paramiko") -> tuple[int, bytes]:
    main_fd, child_fd = pty.openpty()
    code = ("import sys; from virttui.drivers.registry import open_driver; "
            "from virttui.drivers.sshclients import choose_ssh_clients; choose_ssh_clients(sys.argv[3]); "
            "d = open_driver(sys.argv[1]); "
            "d.connect(); d.attach_console(sys.argv[2]); print('DETACHED', flush=True); d.close()")
    proc = subprocess.Popen([sys.executable, "-c", code, uri, uuid, ssh_client], stdin=child_fd, stdout=child_fd,
                            stderr=child_fd, start_new_session=True)
    os.close(child_fd)
    out = b""
    deadline = time.monotonic() + 30
    sent = False
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([main_fd], [], [], 0.2)
            if ready:
                try:
                    out += os.read(main_fd, 4096)
                except OSError:
                    break
            if not sent and b"Escape character is ^]" in out:
                time.sleep(0.3)
                os.write(main_fd, b"\x1d")  # Ctrl+]
                sent = True
        proc.wait(timeout=10)
        try:
            while select.select([main_fd], [], [], 0.2)[0]:
                out += os.read(main_fd, 4096)
        except OSError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main_fd)
    return proc.returncode, out


@pytest.mark.parametrize("kind", ["local", "ssh", "openssh"])
def test_serial_console_attaches_and_ctrl_bracket_detaches(realstack, kind):
    host = realstack.hosts[1]
    name = f"vttest-c{uuidlib.uuid4().hex[:6]}"
    uuid = host.define_guest(name, start=True)
    try:
        code, out = _attach_in_a_pty(host.local_uri if kind == "local" else host.ssh_uri, uuid,
                                     "openssh" if kind == "openssh" else "paramiko")
        assert b"Connected to domain" in out, out[-500:]
        assert code == 0 and b"DETACHED" in out, out[-500:]
    finally:
        host.undefine_guest(name)


def test_c_in_the_console_attaches_and_ctrl_bracket_returns_to_an_intact_screen(realstack, tmp_path):
    """End to end in a real terminal: virttui over SSH, filter to the guest, c, Ctrl+], q."""
    host = realstack.hosts[1]
    name = f"vttest-tui{uuidlib.uuid4().hex[:6]}"
    host.define_guest(name, start=True)
    # the only guest of the host, so the Domains cursor starts on it, as an operator would see it
    assert host.virsh("list", "--all", "--name").split() == [name]
    main_fd, child_fd = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "HOME": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "virttui", "--log", str(tmp_path / "log"), "-c", host.ssh_uri],
                            stdin=child_fd, stdout=child_fd, stderr=child_fd, env=env, start_new_session=True)
    os.close(child_fd)
    out = bytearray()

    def wait_for(needle: bytes, since: int, limit: float = 30) -> int:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            found = out.find(needle, since)
            if found >= 0:
                return found
            if select.select([main_fd], [], [], 0.1)[0]:
                out.extend(os.read(main_fd, 65536))
        raise AssertionError(f"{needle!r} never appeared; screen tail: {bytes(out[-400:])!r}")

    try:
        wait_for(b"running", wait_for(name.encode(), 0))
        time.sleep(0.5)
        mark = len(out)
        os.write(main_fd, b"c")
        attached = wait_for(b"Escape character is ^]", mark)
        time.sleep(0.3)
        os.write(main_fd, b"\x1d")
        wait_for(name.encode(), attached)  # the TUI is drawn again
        os.write(main_fd, b"q")
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(main_fd)
        host.undefine_guest(name)
    assert proc.returncode == 0
    assert b"Traceback" not in out
