"""The real-stack harness itself: private libvirt test hosts in their own mount namespaces.

These tests check what the other real-stack tests rely on: each host is a separate libvirtd
reachable from the root namespace (local_uri) and over SSH, guests start, daemons restart, a
crashed run is cleaned up, failures name the component, and the machine's own libvirt
directories are never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid as uuidlib
from pathlib import Path

import pytest

from realstack.harness import RealStack, RealStackError, cleanup_stale_runs

pytestmark = pytest.mark.realstack

MACHINE_PATHS = ("/etc/libvirt", "/var/lib/libvirt", "/var/log/libvirt", "/var/cache/libvirt", "/run/libvirt",
                 "/run/sshd", "/run/sanlock", "/run/libvirtd.pid", "/run/virtlogd.pid")
MACHINE_FILES = ("/etc/passwd", "/etc/group", "/etc/shadow")


def unique(prefix: str = "vttest-") -> str:
    return f"{prefix}{uuidlib.uuid4().hex[:8]}"


def outside_virsh(uri: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Plain virsh from the root mount namespace (this test process's)."""
    return subprocess.run(["virsh", "-c", uri, *args], capture_output=True, text=True, check=check, timeout=60)


def machine_snapshot() -> dict[str, object]:
    """Listing (path, type, size, mtime) of the machine's libvirt locations, plus user database hashes."""
    snap: dict[str, object] = {}
    for top in MACHINE_PATHS:
        if not os.path.exists(top):
            snap[top] = None
            continue
        entries = []
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(dirnames + filenames):
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                entries.append((path, st.st_mode, st.st_size if os.path.isfile(path) else 0, st.st_mtime_ns))
        snap[top] = entries
    # libvirt would create /machine partitions in the machine's (shared) cgroup tree
    cgroups = Path("/sys/fs/cgroup")
    if cgroups.is_dir():
        for controller in sorted(cgroups.iterdir()):
            for partition in ("machine", "machine.slice"):
                snap[str(controller / partition)] = (controller / partition).exists()
    for path in MACHINE_FILES:
        snap[path] = hashlib.sha256(Path(path).read_bytes()).hexdigest() if os.path.exists(path) else None
    return snap


def processes_of(pids) -> list[int]:  # noqa: ANN001
    return [pid for pid in pids if os.path.exists(f"/proc/{pid}")]


def test_hosts_are_separate_libvirtds_reachable_from_the_root_namespace(realstack):
    one, two = realstack.hosts
    assert (one.name, one.index, two.name, two.index) == ("vthost1", 1, "vthost2", 2)
    own_ns = os.readlink("/proc/self/ns/mnt")
    ns = {os.readlink(f"/proc/{h.holder_pid}/ns/mnt") for h in realstack.hosts}
    assert len(ns) == 2 and own_ns not in ns
    names = {h.name: unique(f"vttest-{h.name}-") for h in realstack.hosts}
    for host in realstack.hosts:
        host.define_guest(names[host.name])
    try:
        for host in realstack.hosts:
            assert host.local_uri == f"qemu:///system?socket=/proc/{host.holder_pid}/root/run/libvirt/libvirt-sock"
            listed = outside_virsh(host.local_uri, "list", "--all", "--name").stdout.split()
            assert names[host.name] in listed
            other = names["vthost2" if host.name == "vthost1" else "vthost1"]
            assert other not in listed
    finally:
        for host in realstack.hosts:
            host.undefine_guest(names[host.name])
    for host in realstack.hosts:
        assert names[host.name] not in outside_virsh(host.local_uri, "list", "--all", "--name").stdout.split()


def test_a_guest_on_host1_is_invisible_on_host2(realstack):
    one, two = realstack.hosts
    name = unique()
    uuid = one.define_guest(name)
    try:
        assert one.virsh("domuuid", name).strip() == uuid
        assert two.virsh("domuuid", name, check=False).strip() == ""
        assert "failed to get domain" in two.run("virsh", "-c", "qemu:///system", "dominfo", uuid,
                                                 check=False).stderr
        # its disk exists only in host 1's private /var/lib/libvirt
        assert os.path.exists(one.outside(one.disk_path(name)))
        assert not os.path.exists(two.outside(one.disk_path(name)))
        assert not os.path.exists(one.disk_path(name))  # nor on the machine itself
    finally:
        one.undefine_guest(name)
    assert not os.path.exists(one.outside(one.disk_path(name)))


def test_a_started_guest_runs_and_reports_stats(realstack):
    host = realstack.hosts[1]
    name = unique()
    host.define_guest(name, start=True)
    try:
        stats = dict(line.strip().split("=", 1) for line in
                     outside_virsh(host.local_uri, "domstats", "--raw", name).stdout.splitlines() if "=" in line)
        assert stats["state.state"] == "1"  # VIR_DOMAIN_RUNNING
        assert int(stats["cpu.time"]) > 0
        assert stats["balloon.maximum"] == str(32 * 1024)
        pid = host.guest_pid(name)
        assert pid and Path(f"/proc/{pid}/comm").read_text().startswith("qemu-system")
        assert os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink(f"/proc/{host.holder_pid}/ns/mnt")
        assert f"<domain type='{realstack.domain_type}'" in host.virsh("dumpxml", name)
        assert "<console type='pty'" in host.virsh("dumpxml", name)
    finally:
        host.undefine_guest(name)
    assert name not in host.virsh("list", "--all", "--name").split()


def test_hostile_guest_names_are_passed_through_verbatim(realstack):
    host = realstack.hosts[0]
    name = "vttest-x'; touch vttest-pwned; '<&>\" naïve $(id)`id`"  # libvirt refuses only '/' in names
    host.define_guest(name)
    try:
        assert name in host.virsh("list", "--all", "--name").splitlines()
        assert os.path.exists(host.outside(host.disk_path(name)))
    finally:
        host.undefine_guest(name)
    assert not os.path.exists("/vttest-pwned") and not os.path.exists(host.outside("/vttest-pwned"))


def test_ssh_with_the_run_key_reaches_the_right_host(realstack):
    names = {h.name: unique() for h in realstack.hosts}
    for host in realstack.hosts:
        host.define_guest(names[host.name])
    try:
        known = Path(realstack.known_hosts).read_text().splitlines()
        assert sorted(line.split()[0] for line in known) == sorted(f"[127.0.0.1]:{h.ssh_port}"
                                                                   for h in realstack.hosts)
        for host in realstack.hosts:
            out = host.ssh("virsh -c qemu:///system list --all --name; readlink /proc/self/ns/mnt").stdout.split()
            assert names[host.name] in out
            assert set(names.values()) - {names[host.name]} <= set(names.values()) - set(out)
            assert out[-1] == os.readlink(f"/proc/{host.holder_pid}/ns/mnt")
            assert host.ssh_uri == (f"qemu+ssh://root@127.0.0.1:{host.ssh_port}/system"
                                    f"?keyfile={realstack.client_key}&known_hosts={realstack.known_hosts}")
            # libvirt's own SSH transport: libssh honours known_hosts (plain qemu+ssh would not)
            listed = outside_virsh(host.libssh_uri, "list", "--all", "--name").stdout.split()
            assert names[host.name] in listed
    finally:
        for host in realstack.hosts:
            host.undefine_guest(names[host.name])


def test_ssh_refuses_a_key_of_another_run(realstack, tmp_path):
    host = realstack.hosts[0]
    key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    argv = host.ssh_argv("true")
    argv[argv.index(realstack.client_key)] = str(key)
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 255 and "Permission denied" in proc.stderr


def test_libvirtd_restart_keeps_guests_running(realstack):
    host = realstack.hosts[0]
    name = unique()
    host.define_guest(name, start=True)
    pid = host.guest_pid(name)
    try:
        host.stop_libvirtd()
        failed = outside_virsh(host.local_uri, "list", check=False)
        assert failed.returncode != 0 and "failed to connect" in failed.stderr.lower()
        assert os.path.exists(f"/proc/{pid}")  # QEMU survives, as on a real host
        host.start_libvirtd()
        assert outside_virsh(host.local_uri, "domstate", name).stdout.strip() == "running"
        assert host.guest_pid(name) == pid
        host.restart_libvirtd()
        assert host.virsh("domstate", name).strip() == "running"
    finally:
        host.start_libvirtd()
        host.undefine_guest(name)
    assert not processes_of([pid])


def test_the_holder_reaps_guests_that_exit_together(realstack):
    """QEMU processes are the holder's (a subreaper's) children: reaped at once, holder stays up."""
    host = realstack.hosts[1]
    names = [unique() for _ in range(3)]
    try:
        pids = []
        for name in names:
            host.define_guest(name, start=True)
            pids.append(host.guest_pid(name))
        for pid in pids:
            assert int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]) == host.holder_pid
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 3
        while processes_of(pids) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert processes_of(pids) == []  # no zombies left for init
        assert processes_of([host.holder_pid]) == [host.holder_pid]
        host.restart_libvirtd()  # spawning through the holder still works
    finally:
        for name in names:
            host.undefine_guest(name)


def test_sshd_stop_and_start(realstack):
    host = realstack.hosts[1]
    port = host.ssh_port
    host.stop_sshd()
    try:
        down = host.ssh("true", check=False)
        assert down.returncode == 255 and "refused" in down.stderr
    finally:
        host.start_sshd()
    assert host.ssh_port == port
    assert host.ssh("echo", "back").stdout.strip() == "back"  # same host key: known_hosts still matches


def test_failures_name_the_component_and_show_its_log(realstack):
    with RealStack.start(1) as stack:
        host = stack.hosts[0]
        conf = host.dir / "etc-libvirt/qemu.conf"
        good = conf.read_text()
        conf.write_text(good.replace('user = "root"', 'user = "no-such-user-vttest"'))
        host.stop_libvirtd()
        with pytest.raises(RealStackError) as info:
            host.start_libvirtd()
        message = str(info.value)
        assert message.startswith("vthost1: libvirtd ")
        assert "no-such-user-vttest" in message  # from the tail of libvirtd.log
        conf.write_text(good)
        host.start_libvirtd()
        assert outside_virsh(host.local_uri, "list").returncode == 0


def test_a_crashed_run_is_cleaned_up_by_the_next(realstack):
    stack = RealStack.start(1)
    host = stack.hosts[0]
    name = unique()
    host.define_guest(name, start=True)
    session = host.ssh("true")
    assert session.returncode == 0
    pids = [p["pid"] for p in stack._state["processes"]]
    pids.append(host.guest_pid(name))
    assert len(processes_of(pids)) >= 5  # holder, virtlogd, libvirtd, sshd, qemu
    # "crash": the owner goes away without stopping anything; its lock is released
    os.close(stack._lock_fd)
    stack._lock_fd = None
    stack._stopped = True
    try:
        cleaned = cleanup_stale_runs()
        host._holder.wait(5)  # in a real crash init reaps it; here it is still this process's child
        assert stack.run_id in cleaned
        assert realstack.run_id not in cleaned  # a live run (its lock is held) is left alone
        assert processes_of(pids) == []
        assert not stack.run_dir.exists()
        assert realstack.run_dir.exists()
        for other in realstack.hosts:
            assert outside_virsh(other.local_uri, "list").returncode == 0
    finally:
        stack._stopped = False
        stack.stop()


@pytest.mark.realstack  # starts its own stack, without the fixture that would mark it
def test_the_machines_own_libvirt_is_untouched():
    """A whole stack lifecycle (own stack, next to the session's) leaves the machine as it was."""
    before = machine_snapshot()
    stack = RealStack.start(1)
    try:
        host = stack.hosts[0]
        name = unique()
        host.define_guest(name, start=True)
        host.ssh("virsh", "-c", "qemu:///system", "list")
        host.restart_libvirtd()
        host.undefine_guest(name)
        all_pids = [p["pid"] for p in stack._state["processes"]]
        assert machine_snapshot() == before  # while running, too
    finally:
        stack.stop()
    assert machine_snapshot() == before
    assert processes_of(all_pids) == []
    assert not stack.run_dir.exists()


@pytest.mark.realstack
@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGHUP])
def test_a_run_killed_by_sigterm_or_sighup_still_stops_its_stack(tmp_path, number):
    """A CI timeout or a dropped terminal: the session's teardown stops every daemon it started."""
    report = tmp_path / "stack.json"
    (tmp_path / "test_inner.py").write_text(
        "import json, time\n"
        "def test_waits(realstack):\n"
        f"    open({str(report)!r}, 'w').write(json.dumps({{'run_dir': str(realstack.run_dir),\n"
        "        'pids': [p['pid'] for p in realstack._state['processes']]}))\n"
        "    time.sleep(120)\n")
    tests_dir = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(tests_dir)}
    env.pop("CI", None)
    inner = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "realstack.fixtures",
                              "--rootdir", str(tmp_path), "-c", "/dev/null", str(tmp_path / "test_inner.py")],
                             env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not report.exists() and inner.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        started = json.loads(report.read_text())
        assert len(processes_of(started["pids"])) >= 4  # holders, virtlogd, libvirtd, sshd
        inner.send_signal(number)
        inner.wait(60)
    finally:
        if inner.poll() is None:
            inner.kill()
            inner.wait()
    assert inner.returncode != 0
    assert processes_of(started["pids"]) == []
    assert not Path(started["run_dir"]).exists()
