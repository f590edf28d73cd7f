"""libvirt's sanlock lock plugin on the real stack: two test hosts sharing one lease directory.

Each host of the ``sanlock_stack`` fixture runs its own sanlock daemon (own /run/sanlock) and a
libvirtd with ``lock_manager = "sanlock"`` and automatic disk leases (``host_id`` = host index);
the lease directory is one real directory bind-mounted at /var/lib/libvirt/sanlock in both, like
an NFS lease directory shared by two hypervisors.  These tests check what the lease features of
virttui rely on: the lockspace is live on both hosts, a running guest holds md5(disk path), the
other host cannot start the same disk, destroy releases, and Debian's virt-sanlock-cleanup
removes exactly the leases nobody holds.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import uuid as uuidlib
from functools import partial

import pytest
from support.realhosts import wait_until

from realstack.harness import LOCKSPACE, RealStack, RealStackError, cleanup_stale_runs

pytestmark = pytest.mark.realstack


def unique(prefix: str = "vttest-") -> str:
    return f"{prefix}{uuidlib.uuid4().hex[:8]}"


def disk_lease_name(host, guest: str) -> str:  # noqa: ANN001
    """libvirt's automatic disk lease: md5 of the disk path as libvirtd sees it (in the namespace)."""
    return hashlib.md5(host.disk_path(guest).encode()).hexdigest()


def held_resources(host) -> dict[str, int]:  # noqa: ANN001
    """Resource name -> holding pid, from `sanlock client status` of host."""
    held = {}
    for line in host.sanlock_status().splitlines():
        m = re.fullmatch(rf"r {LOCKSPACE}:([^:]+):{re.escape(host.lease_dir_inside)}/\1:0:\d+ p (\d+)", line)
        if m:
            held[m.group(1)] = int(m.group(2))
    return held


def try_acquire(host, stack: RealStack, name: str):  # noqa: ANN001, ANN201
    """Acquire-and-release lease name on host once (`sanlock client command ... -c /bin/true`)."""
    return host.run("sanlock", "client", "command", "-r", stack.lease_resource(name), "-c", "/bin/true",
                    check=False)


def remove_lease_file(stack: RealStack, name: str) -> None:
    try:
        os.unlink(stack.lease_dir / name)
    except FileNotFoundError:
        pass


def test_each_host_runs_its_own_sanlock_daemon_and_joins_the_shared_lockspace(sanlock_stack):
    stack = sanlock_stack
    assert stack.sanlock and stack.lease_dir == stack.run_dir / "leases"
    assert stack.lockspace_path == stack.lease_dir / LOCKSPACE and stack.lockspace_path.stat().st_size == 1 << 20
    # a real filesystem: sanlock reads and writes leases with O_DIRECT (tmpfs refuses it)
    fd = os.open(stack.lockspace_path, os.O_RDONLY | os.O_DIRECT)
    os.close(fd)
    daemons = set()
    for host in stack.hosts:
        assert host.lease_dir_inside == "/var/lib/libvirt/sanlock"
        # the same directory inside every namespace
        inside, outside = os.stat(host.outside(host.lease_dir_inside)), os.stat(stack.lease_dir)
        assert (inside.st_dev, inside.st_ino) == (outside.st_dev, outside.st_ino)
        # its own daemon, inside its namespace, with the setrlimit shim preloaded
        pid = host._daemons["sanlock"][0]
        daemons.add(pid)
        assert host._comm(pid) == "sanlock"
        assert os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink(f"/proc/{host.holder_pid}/ns/mnt")
        environ = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
        assert f"LD_PRELOAD={stack.sanlock_shim}".encode() in environ
        assert os.path.exists(host.outside("/run/sanlock/sanlock.sock"))
        status = host.sanlock_status().splitlines()
        assert status[0] == f"daemon {host.sanlock_host_name}"
        # joined with its own host_id (an "ADD" suffix would mean: still joining)
        lockspaces = [line for line in status if line.startswith("s ")]
        assert lockspaces == [f"s {LOCKSPACE}:{host.index}:/var/lib/libvirt/sanlock/{LOCKSPACE}:0"]
        # the private qemu-sanlock.conf, as virt-sanlock-cleanup reads it (augtool) inside the namespace
        got = host.run("augtool", "get", "/files/etc/libvirt/qemu-sanlock.conf/disk_lease_dir").stdout.strip()
        assert got == "/files/etc/libvirt/qemu-sanlock.conf/disk_lease_dir = /var/lib/libvirt/sanlock"
        assert f"host_id = {host.index}\n" in host.run("cat", "/etc/libvirt/qemu-sanlock.conf").stdout
        assert 'lock_manager = "sanlock"' in host.run("cat", "/etc/libvirt/qemu.conf").stdout
    assert len(daemons) == 2


def test_host_status_on_either_host_shows_both_host_ids_live(sanlock_stack):
    def listed(host) -> set[int]:  # noqa: ANN001
        return {int(line.split()[0]) for line in host.host_status().splitlines()
                if re.fullmatch(r"\d+ timestamp \d+", line)}

    def both_live(host) -> bool:  # noqa: ANN001
        states = host.host_states()
        return states.get(1) == "LIVE" and states.get(2) == "LIVE"

    for host in sanlock_stack.hosts:
        wait_until(partial(lambda h: listed(h) >= {1, 2}, host),
                   what=f"host_status on {host.name} listing host_ids 1 and 2")
        wait_until(partial(both_live, host), what=f"{host.name} seeing host_ids 1 and 2 LIVE")
    # and the timestamps keep moving: both daemons renew (every 2 * io_timeout)
    one = sanlock_stack.hosts[0]

    def timestamps() -> dict[int, int]:
        return {int(f[0]): int(f[2]) for f in (line.split() for line in one.host_status().splitlines())
                if len(f) == 3 and f[1] == "timestamp"}

    before = timestamps()
    wait_until(lambda: all(ts > before[i] for i, ts in timestamps().items()) and len(timestamps()) == 2,
               what="both host_ids renewing their delta leases")


def test_a_running_guest_holds_its_disk_lease_which_host2_cannot_take(sanlock_stack):
    one, two = sanlock_stack.hosts
    name = unique()
    lease = disk_lease_name(one, name)
    assert one.disk_path(name) == f"/var/lib/libvirt/images/{name}.qcow2"
    lease_file = sanlock_stack.lease_dir / lease
    try:
        one.define_guest(name, start=True)
        qemu = one.guest_pid(name)
        assert lease_file.is_file() and lease_file.stat().st_size == 1 << 20
        assert held_resources(one).get(lease) == qemu
        assert sanlock_stack.lease_owner(lease) == 1  # on disk, for every host to see
        # host 2: its own (private) disk file at the very same path, same lease
        two.define_guest(name)
        assert os.path.exists(two.outside(two.disk_path(name)))
        started = two.run("virsh", "-c", "qemu:///system", "start", name, check=False)
        assert started.returncode != 0
        assert "Failed to acquire lock" in started.stderr and "held by another host" in started.stderr
        assert two.virsh("domstate", name).strip() == "shut off"
        assert lease not in held_resources(two)
        # destroying on host 1 releases the lease; the file stays
        one.virsh("destroy", name)
        wait_until(lambda: lease not in held_resources(one) and sanlock_stack.lease_owner(lease) is None,
                   timeout=10, what="the lease to be released (on disk too)")
        assert lease_file.is_file()
        # now host 2 can start the same disk: the release is real, across hosts
        two.start_guest(name)
        assert held_resources(two).get(lease) == two.guest_pid(name)
        assert sanlock_stack.lease_owner(lease) == 2
        again = one.run("virsh", "-c", "qemu:///system", "start", name, check=False)
        assert again.returncode != 0 and "held by another host" in again.stderr
        two.virsh("destroy", name)
        wait_until(lambda: lease not in held_resources(two) and sanlock_stack.lease_owner(lease) is None,
                   timeout=10, what="host 2 to release the lease")
    finally:
        for host in (one, two):
            if name in host.virsh("list", "--all", "--name").split():
                host.undefine_guest(name)
        remove_lease_file(sanlock_stack, lease)


def test_make_stale_lease_and_hold_lease(sanlock_stack):
    stack = sanlock_stack
    one, two = stack.hosts
    name = unique("vttest-stale-")
    path = stack.make_stale_lease(name)
    try:
        assert path == str(stack.lease_dir / name) and os.path.getsize(path) == 1 << 20
        assert stack.lease_resource(name) == f"{LOCKSPACE}:{name}:/var/lib/libvirt/sanlock/{name}:0"
        leader = stack.lease_leader(name)
        assert (leader["space_name"], leader["resource_name"], leader["timestamp"]) == (LOCKSPACE, name, "0")
        assert stack.lease_owner(name) is None
        with pytest.raises(FileExistsError):
            stack.make_stale_lease(name)
        # free: host 1 can take it (and give it back at once)
        assert try_acquire(one, stack, name).returncode == 0
        # host 1's release may reach the disk a moment later on a loaded machine: until then host 2
        # would meet -243 (held by a live host)
        wait_until(lambda: stack.lease_owner(name) is None, what=f"{name} released on disk")
        hold = two.hold_lease(name)
        try:
            assert hold.held and held_resources(two).get(name) == hold.pid
            assert os.readlink(f"/proc/{hold.pid}/ns/mnt") == os.readlink(f"/proc/{two.holder_pid}/ns/mnt")
            assert stack.lease_owner(name) == 2
            # held by host 2: host 1 cannot acquire it (-243: SANLK_ACQUIRE_IDLIVE, the owner is alive)
            refused = try_acquire(one, stack, name)
            assert refused.returncode != 0 and "acquire done -243" in refused.stdout
            with pytest.raises(RealStackError, match=name):
                one.hold_lease(name)
            assert name not in held_resources(one)
        finally:
            hold.release()
        assert not hold.held and name not in held_resources(two) and stack.lease_owner(name) is None
        hold.release()  # idempotent
        assert try_acquire(one, stack, name).returncode == 0
        # a lease held on the same host by another process is refused too (right after that
        # acquire-and-release, hold_lease may meet -11 while sanlock finishes the release: it retries;
        # on a loaded machine the leader on disk may still name host 1 for a moment: -243, so wait)
        wait_until(lambda: stack.lease_owner(name) is None, what=f"{name} released on disk")
        with one.hold_lease(name) as mine:
            assert held_resources(one).get(name) == mine.pid and stack.lease_owner(name) == 1
            assert try_acquire(one, stack, name).returncode != 0
        assert name not in held_resources(one) and stack.lease_owner(name) is None
    finally:
        remove_lease_file(stack, name)


def test_virt_sanlock_cleanup_removes_stale_leases_and_keeps_held_ones(sanlock_stack):
    stack = sanlock_stack
    one, two = stack.hosts
    guest = unique()
    stale = [unique("vttest-stale-") for _ in range(2)]
    held_by_two = unique("vttest-held-")
    guest_lease = disk_lease_name(one, guest)
    hold = None
    try:
        one.define_guest(guest, start=True)
        hold = two.hold_lease(held_by_two)
        for name in stale:
            stack.make_stale_lease(name)
        before = set(os.listdir(stack.lease_dir))
        assert {guest_lease, held_by_two, *stale, LOCKSPACE} <= before
        out = one.run("virt-sanlock-cleanup").stdout  # Debian's, reading the namespace's qemu-sanlock.conf
        after = set(os.listdir(stack.lease_dir))
        for name in stale:
            assert name not in after
            assert f"Cleanup: {LOCKSPACE}:{name}:/var/lib/libvirt/sanlock/{name}:0 PASS" in out
        assert {guest_lease, held_by_two, LOCKSPACE} <= after
        assert re.search(rf"Cleanup: {LOCKSPACE}:{guest_lease}:\S+ .*FAIL", out, re.S)
        assert re.search(rf"Cleanup: {LOCKSPACE}:{held_by_two}:\S+ .*FAIL", out, re.S)
        # the holders are unaffected
        assert held_resources(one).get(guest_lease) == one.guest_pid(guest)
        assert hold.held
        assert one.virsh("domstate", guest).strip() == "running"
    finally:
        if hold is not None:
            hold.release()
        if guest in one.virsh("list", "--all", "--name").split():
            one.undefine_guest(guest)
        for name in (guest_lease, held_by_two, *stale):
            remove_lease_file(stack, name)


def test_sanlock_stop_and_start_on_one_host(sanlock_stack):
    host = sanlock_stack.hosts[1]
    guest = unique()
    lease = disk_lease_name(host, guest)
    try:
        host.define_guest(guest)
        host.stop_sanlock()  # graceful: leaves the lockspace (and would kill lease holders)
        assert "sanlock" not in host._daemons
        assert host.run("sanlock", "client", "status", check=False).returncode != 0  # nobody answers
        failed = host.run("virsh", "-c", "qemu:///system", "start", guest, check=False)
        assert failed.returncode != 0 and "Process exited prior to exec" in failed.stderr
        # the lock plugin's error reaches virsh only if libvirtd read the guest log in time; it is always there
        qemu_log = (host.dir / "var-log-libvirt/qemu" / f"{guest}.log").read_text()
        assert "Lock Driver error" in qemu_log and "Connection refused" in qemu_log
        host.start_sanlock()  # libvirtd is running: the harness rejoins the lockspace itself
        assert host.lockspace_joined()
        host.start_guest(guest)
        assert held_resources(host).get(lease) == host.guest_pid(guest)
    finally:
        if not host.lockspace_joined():
            host.start_sanlock()
        host.undefine_guest(guest)
        remove_lease_file(sanlock_stack, lease)


def test_a_sanlock_stack_next_to_the_plain_one(realstack, sanlock_stack):
    """Both session stacks at once: independent runs; the plain one has no sanlock at all."""
    assert realstack.run_id != sanlock_stack.run_id
    assert not realstack.sanlock and realstack.lease_dir is None and realstack.lockspace_path is None
    for host in realstack.hosts:
        assert "sanlock" not in host._daemons
        assert not os.path.exists(host.outside("/var/lib/libvirt/sanlock"))
        assert "lock_manager" not in host.run("cat", "/etc/libvirt/qemu.conf").stdout
        assert host.run("sanlock", "client", "status", check=False).returncode != 0  # no daemon there
        with pytest.raises(RealStackError, match="sanlock=True"):
            host.sanlock_status()
    with pytest.raises(RealStackError, match="sanlock=True"):
        realstack.make_stale_lease("vttest-x")
    plain = realstack.hosts[0]
    name = unique()
    try:
        plain.define_guest(name, start=True)  # no lock manager, no sanlock daemon: starts all the same
        assert plain.virsh("domstate", name).strip() == "running"
        for host in sanlock_stack.hosts:
            assert host.lockspace_joined()
            assert hashlib.md5(plain.disk_path(name).encode()).hexdigest() not in held_resources(host)
        assert not os.path.exists(sanlock_stack.lease_dir / hashlib.md5(plain.disk_path(name).encode()).hexdigest())
    finally:
        plain.undefine_guest(name)


def test_a_crashed_sanlock_run_is_cleaned_up_quickly(realstack, sanlock_stack):
    stack = RealStack.start(1, sanlock=True)
    host = stack.hosts[0]
    assert stack.run_id not in (realstack.run_id, sanlock_stack.run_id)
    name = unique()
    host.define_guest(name, start=True)
    hold = host.hold_lease(unique("vttest-held-"))
    pids = [p["pid"] for p in stack._state["processes"]] + [host.guest_pid(name), hold.pid]
    sanlock_pid = host._daemons["sanlock"][0]
    assert sanlock_pid in pids
    os.close(stack._lock_fd)  # "crash": the lock is released, nothing is stopped
    stack._lock_fd = None
    stack._stopped = True
    try:
        t0 = time.monotonic()
        cleaned = cleanup_stale_runs()
        elapsed = time.monotonic() - t0
        host._holder.wait(5)
        assert stack.run_id in cleaned
        assert realstack.run_id not in cleaned and sanlock_stack.run_id not in cleaned
        assert [pid for pid in pids if os.path.exists(f"/proc/{pid}")] == []
        # sanlock ignores SIGTERM in a lockspace: it gets SIGKILL at once, not after a 10 s SIGTERM wait
        assert elapsed < 10
        assert not stack.run_dir.exists()
        for other in sanlock_stack.hosts:
            assert other.lockspace_joined()
    finally:
        stack._stopped = False
        stack.stop()
