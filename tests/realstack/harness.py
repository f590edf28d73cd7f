"""Private libvirt "test hosts" for real-stack tests, one per mount namespace.

Each test host is a mount namespace (``unshare -m --propagation private``) kept alive by a
holder process (``holder.py``).  Inside it:

* a tmpfs on /run (so pid files and sockets are private; a marker file
  ``/run/virttui-realstack-host.id`` names the run and the host),
* private, initially clean directories bind-mounted over /etc/libvirt, /var/lib/libvirt,
  /var/log/libvirt and /var/cache/libvirt.  Where such a directory does not exist on the
  machine, its parent gets a private overlayfs first, so no mount point is ever created on the
  machine itself.  /var/log always gets a private overlay (sshd's wtmp/lastlog/btmp land there),
* private copies of /etc/passwd and /etc/group that add the ``libvirt-qemu`` user and groups
  libvirtd insists on resolving at start (the machine's own user database is left alone);
  QEMU itself runs as root (``user = "root"`` in the private qemu.conf),
* ``virtlogd``, ``libvirtd`` and ``sshd`` running in the foreground, spawned by the holder
  (``holder.py``: the process that keeps the namespace, a child subreaper, so daemonized QEMU
  processes are reaped at once and `virsh destroy` returns in milliseconds).

All state lives in ``/var/tmp/virttui-realstack/run-*/``; each run holds an flock on its
``lock`` file and records every process it starts in ``state.json``.  A new run first cleans up
the runs whose lock is free (a crashed earlier run): it kills the recorded processes (pid and
start time must match) and any process whose root sees that run's marker file (QEMU, SSH
sessions), then removes the run directory.  Nothing else on the machine is touched.

Guests: ``define_guest`` makes no-OS guests.  With qboot (``/usr/share/qemu/qboot.rom``, used
when present) a running guest costs ~0.35 s of CPU to start and then nothing (it halts); with
SeaBIOS under this machine's (nested) KVM it costs ~3.5 s to start and ~1 % of a core after.
libvirt runs with ``cgroup_controllers = [ ]`` (guests on different test hosts share the
machine's cgroup tree otherwise), so ``<cputune>`` has no effect here; domstats still reports
cpu.time (from /proc).

Sanlock (opt-in, ``RealStack.start(n, sanlock=True)``): one lease directory on a real
filesystem (``<run_dir>/leases``: sanlock does direct I/O, tmpfs refuses O_DIRECT) is
bind-mounted at libvirt's default ``/var/lib/libvirt/sanlock`` in every host, like an NFS lease
directory shared by real hosts.  Each host runs its own ``sanlock daemon`` inside its namespace
(private /run/sanlock), preloaded with a tiny setrlimit shim (``setrlimit_shim.c``, built with gcc
once and cached under ``<root>/cache``) because the sandbox lacks CAP_SYS_RESOURCE.  libvirt uses
the sanlock lock plugin with automatic disk leases and ``host_id = host.index``; the harness
initialises the ``__LIBVIRT__DISKS__`` lockspace file once before any libvirtd starts (two
libvirtds creating it at once would race) and waits until every host has joined it.

Throttled lease disk (opt-in, ``RealStack.start(n, sanlock=True, lease_disk=LeaseDisk(...))``):
the lease directory is then an ext4 filesystem on its own loop device (a sparse image in the run
dir, mounted at the same ``<run_dir>/leases``), and every process of the test hosts (the holder
joins the cgroup at its start, so sanlock, sshd and every SSH session inherit it) runs in one
cgroup-v1 blkio cgroup whose reads of that loop device are capped (``read_iops``): the renewals
and whatever the console runs over SSH compete for the reads, as on a busy shared NFS export.
Teardown and stale-run cleanup unmount it, detach the loop device and remove the cgroup.

This module deliberately does not import pytest.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import sysconfig
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

ROOT = Path("/var/tmp/virttui-realstack")
GUEST_PREFIX = "vttest-"
MARKER = "/run/virttui-realstack-host.id"
QBOOT = "/usr/share/qemu/qboot.rom"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
START_TIMEOUT = 30.0
BINARIES = {
    "unshare": "/usr/bin/unshare",
    "nsenter": "/usr/bin/nsenter",
    "virtlogd": "/usr/sbin/virtlogd",
    "libvirtd": "/usr/sbin/libvirtd",
    "sshd": "/usr/sbin/sshd",
    "ssh": "/usr/bin/ssh",
    "ssh-keygen": "/usr/bin/ssh-keygen",
    "virsh": "/usr/bin/virsh",
    "qemu-img": "/usr/bin/qemu-img",
}

# The private directories bind-mounted over the machine's libvirt directories.
PRIVATE_DIRS = {
    "/etc/libvirt": "etc-libvirt",
    "/var/lib/libvirt": "var-lib-libvirt",
    "/var/log/libvirt": "var-log-libvirt",
    "/var/cache/libvirt": "var-cache-libvirt",
}
ALWAYS_OVERLAY = ("/var/log",)
HOLDER_SCRIPT = Path(__file__).with_name("holder.py")

# ---- sanlock (opt-in)
SANLOCK_BINARIES = {
    "sanlock": "/usr/sbin/sanlock",
    "gcc": "/usr/bin/gcc",
    "lock-driver": f"/usr/lib/{sysconfig.get_config_var('MULTIARCH') or 'x86_64-linux-gnu'}"
                   "/libvirt/lock-driver/sanlock.so",
}
SHIM_SOURCE = Path(__file__).with_name("setrlimit_shim.c")
LOCKSPACE = "__LIBVIRT__DISKS__"  # libvirt's lockspace for automatic disk leases
LEASE_DIR_INSIDE = "/var/lib/libvirt/sanlock"  # libvirt's (and virt-sanlock-cleanup's) default
LEASE_SIZE = 1024 * 1024  # sanlock's 512-byte-sector / 1 MiB alignment, what libvirt allocates
# sanlock's io_timeout: joining a lockspace takes ~2*io_timeout + 1 s (delta_short_delay), hosts
# renew every 2*io_timeout and a host whose renewals fail for 8*io_timeout kills its lease holders.
SANLOCK_IO_TIMEOUT = 1

# ---- the lease directory on a throttled loop device (opt-in: LeaseDisk)
LEASE_DISK_BINARIES = {  # /sbin and /bin: where Debian's packages put them, merged /usr or not
    "losetup": "/sbin/losetup",
    "mkfs.ext4": "/sbin/mkfs.ext4",
    "mount": "/bin/mount",
    "umount": "/bin/umount",
}
BLKIO_ROOT = Path("/sys/fs/cgroup/blkio")  # cgroup v1: v2 has no io controller on these machines
CGROUP_PREFIX = "virttui-realstack-"  # + run id: the only cgroups cleanup ever removes


@dataclass(frozen=True)
class LeaseDisk:
    """The shared lease directory on its own loop device, its readers throttled like a busy NFS export.

    read_iops: the cap on the test hosts' reads of the device per second (0: none yet; see
    RealStack.set_lease_read_iops, e.g. after writing many lease files).  size_mib: the sparse image.
    in_memory: the image lies in a tmpfs of its own in the run dir, so the cap is the storage's only
    slowness.  On the machine's disk (False) other sessions' I/O shows through: renewals' reads took
    up to 20-200 ms with no reader of the lease device at all, against 0-5 ms from memory.
    """

    read_iops: int = 0
    size_mib: int = 512
    in_memory: bool = True


QEMU_CONF_SANLOCK = """\
lock_manager = "sanlock"
"""

QEMU_SANLOCK_CONF = """\
# virttui real-stack test host {name}: automatic disk leases in the shared lease directory
auto_disk_leases = 1
disk_lease_dir = "{lease_dir}"
host_id = {host_id}
require_lease_for_disks = 1
io_timeout = {io_timeout}
"""

LIBVIRTD_CONF = """\
# virttui real-stack test host: private, minimal configuration
unix_sock_group = "root"
unix_sock_ro_perms = "0770"
unix_sock_rw_perms = "0770"
unix_sock_admin_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
log_outputs = "3:file:/var/log/libvirt/libvirtd.log"
"""

# libvirtd resolves its compiled-in default user 'libvirt-qemu' before reading qemu.conf, so the
# user must exist (private /etc/passwd); QEMU then runs as root.  No cgroups: the machine's cgroup
# tree is shared by all test hosts (equal guest names would share one cgroup) and libvirt would
# leave /machine partitions behind.  No per-guest mount namespaces, so QEMU stays in the host's
# namespace (found by the marker on cleanup).
QEMU_CONF = """\
# virttui real-stack test host: private, minimal configuration
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
"""

VIRTLOGD_CONF = """\
log_outputs = "3:file:/var/log/libvirt/virtlogd.log"
"""

SSHD_CONFIG = """\
# virttui real-stack test host {name}
Port {port}
ListenAddress 127.0.0.1
AddressFamily inet
HostKey {host_key}
# a host certificate a test writes there (test_ssh_hostcert_real); none by default: sshd logs that it
# cannot load it and goes on, and each connection's re-executed sshd reads it afresh (no reload needed)
HostCertificate {host_key}-cert.pub
AuthorizedKeysFile {authorized_keys}
# user certificates signed by a CA a test writes there (test_ssh_auth_real); none by default: no file
TrustedUserCAKeys {authorized_keys}.ca
PidFile /run/sshd-virttui.pid
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
X11Forwarding no
PrintMotd no
PrintLastLog no
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp /usr/lib/openssh/sftp-server
LogLevel VERBOSE
"""

# A jump host's sshd: TCP forwarding on, and DEBUG1 so that its log shows each forwarded
# connection ("server_request_direct_tcpip: originator ... target 127.0.0.1 port N").
BASTION_SSHD_CONFIG = SSHD_CONFIG.replace("LogLevel VERBOSE\n", "LogLevel DEBUG1\n") + """\
AllowTcpForwarding yes
PermitTTY no
"""


class RealStackError(RuntimeError):
    """A component of the real stack could not be started or driven."""


class HostCommandError(subprocess.CalledProcessError):
    """A command inside a test host failed; str() includes its stderr."""

    def __init__(self, host: str, returncode: int, cmd: list[str], output: str, stderr: str) -> None:
        super().__init__(returncode, cmd, output, stderr)
        self.host = host

    def __str__(self) -> str:
        return (f"{self.host}: command {self.cmd!r} exited with {self.returncode}: "
                f"{(self.stderr or '').strip() or (self.output or '').strip()}")


# --------------------------------------------------------------------------- process helpers

def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in ticks) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            rest = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return rest[0], int(rest[19])


def _starttime(pid: int) -> int | None:
    st = _proc_stat(pid)
    return st[1] if st else None


def _alive(pid: int, start: int | None) -> bool:
    """Is the process that had this start time still running?  A start time never read (the process
    was gone before it was recorded) means gone: its pid may since belong to someone else."""
    st = _proc_stat(pid)
    if start is None or st is None or st[0] in ("Z", "X"):
        return False
    return st[1] == start


def _marker_processes(prefix: str) -> dict[int, str]:
    """Processes whose root (mount namespace) shows a marker starting with prefix -> marker.

    A prefix ending in a space names a whole run ("run-X "); any other is one host's whole
    marker ("run-X vthost1") and must match exactly: as a prefix it would match vthost10 too."""
    found = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            with open(f"/proc/{entry}/root{MARKER}") as f:
                text = f.read().strip()
        except OSError:
            continue
        if text == prefix or (prefix.endswith(" ") and text.startswith(prefix)):
            found[int(entry)] = text
    return found


def _kill_and_wait(pids: Iterable[int], timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL.  pids must already be verified as ours."""
    pending = {pid: _starttime(pid) for pid in pids}
    pending = {pid: start for pid, start in pending.items() if start is not None}
    for pid in pending:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {pid: s for pid, s in pending.items() if _alive(pid, s)}
        if pending:
            time.sleep(0.02)
    for pid, start in pending.items():
        if _alive(pid, start):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + 5.0
    while pending and time.monotonic() < deadline:
        pending = {pid: s for pid, s in pending.items() if _alive(pid, s)}
        if pending:
            time.sleep(0.02)


def _sigkill_and_wait(pids: Iterable[int], timeout: float = 5.0) -> None:
    """SIGKILL at once (sanlock ignores SIGTERM while it is in a lockspace), then wait.

    pids must already be verified as ours.
    """
    pending = {pid: _starttime(pid) for pid in pids}
    pending = {pid: start for pid, start in pending.items() if start is not None}
    for pid in pending:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {pid: s for pid, s in pending.items() if _alive(pid, s)}
        if pending:
            time.sleep(0.01)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _wait_gone(pids: Iterable[int], timeout: float = 3.0) -> None:
    """Wait until the processes are reaped (not even zombies), as far as timeout allows."""
    pending = set(pids)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = {pid for pid in pending if os.path.exists(f"/proc/{pid}")}
        if pending:
            time.sleep(0.01)


def _tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"  ({path}: {exc.strerror})"
    body = "\n".join("  " + line for line in text.splitlines()[-lines:])
    return body or "  (empty)"


def _wait_for(check: Callable[[], bool], timeout: float, exited: Callable[[], bool]) -> str | None:
    """Poll check() until true: None on success, else why not (the process exited / timeout)."""
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        if check():
            return None
        if exited():
            if check():
                return None
            return "exited (see the holder log for its status)"
        if time.monotonic() > deadline:
            return f"did not become ready within {timeout:.0f} s"
        time.sleep(delay)
        delay = min(delay * 1.5, 0.1)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_from(path: Path, offset: int) -> str:
    """What was written to path after its first offset bytes ("" if it is not there)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


def _ssh_banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.settimeout(1.0)
            return s.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def kvm_usable() -> bool:
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    os.close(fd)
    return True


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.write_text(text)
    path.chmod(mode)


def _build_shim(root: Path) -> Path:
    """The setrlimit preload shim for sanlock, built with gcc once per source (cached under root)."""
    source = SHIM_SOURCE.read_bytes()
    cache = root / "cache"
    cache.mkdir(mode=0o700, exist_ok=True)
    shim = cache / f"setrlimit-shim-{hashlib.sha256(source).hexdigest()[:16]}.so"
    if shim.exists():
        return shim
    tmp = cache / f".{shim.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    proc = subprocess.run([SANLOCK_BINARIES["gcc"], "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp),
                           str(SHIM_SOURCE), "-ldl"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise RealStackError(f"sanlock: building the setrlimit shim failed:\n{proc.stderr.strip()}")
    os.replace(tmp, shim)  # atomic: a concurrent session builds the same bytes
    return shim


def _check_lease_name(name: str) -> None:
    if not name or "/" in name or ":" in name or name in (".", "..") or len(name.encode()) > 47:
        raise ValueError(f"not a usable sanlock resource / lease file name: {name!r}")


def _run_tool(argv: list[str], what: str, timeout: float = 60) -> str:
    """Run a machine tool (losetup, mkfs, mount); stdout, or RealStackError with its stderr."""
    proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout)
    if proc.returncode != 0:
        raise RealStackError(f"{what}: {' '.join(argv)} exited with {proc.returncode}: "
                             f"{(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def _own_blkio_cgroup() -> Path:
    """This process's blkio cgroup directory: the run's cgroup is made inside it, so a CI job's own
    limits still apply to the hosts (and nothing is made outside what this job was given)."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if "blkio" in controllers.split(","):
                candidate = BLKIO_ROOT / path.lstrip("/")
                return candidate if candidate.is_dir() else BLKIO_ROOT
    except (OSError, ValueError):
        pass
    return BLKIO_ROOT


def _unescape_mountinfo(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _mounts_under(directory: Path) -> list[str]:
    """Mount points at or below directory in this mount namespace, latest first (the order to unmount)."""
    prefix = str(directory)
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            point = _unescape_mountinfo(fields[4])
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found[::-1]  # mountinfo lists mounts in the order they were made


def _loops_backed_in(directory: Path) -> list[str]:
    """Loop devices whose backing file lies in directory (a run's image): found by what they
    are, so a device attached just before a crash, never recorded, is found too."""
    devices = []
    for backing in Path("/sys/block").glob("loop*/loop/backing_file"):
        try:
            path = backing.read_text().strip().removesuffix(" (deleted)")
        except OSError:
            continue
        if path.startswith(str(directory) + "/"):
            devices.append(f"/dev/{backing.parent.parent.name}")
    return devices


def _valid_run_cgroup(path: str | None, run_id: str) -> Path | None:
    """The run's recorded cgroup, only if it is what the harness names its cgroups (a state file
    is root's own, but cleanup never rmdirs a path it did not make)."""
    if not path:
        return None
    cgroup = Path(path)
    if cgroup.name != CGROUP_PREFIX + run_id or BLKIO_ROOT not in (cgroup.parent, *cgroup.parent.parents):
        return None
    return cgroup


def _undo_lease_disk(run_dir: Path, state: dict) -> list[str]:
    """Unmount the run's lease filesystem, detach its loop device and remove its blkio cgroup;
    returns what could not be undone.  Call after the run's processes are gone."""
    problems = []
    for device in _loops_backed_in(run_dir):
        # first, while its image's path still reads as the run's: mounted or still open elsewhere
        # (another session's hosts copy this mount into their namespaces), the kernel then detaches it
        # when the last user closes it (autoclear), so losetup -d succeeds either way
        proc = subprocess.run([LEASE_DISK_BINARIES["losetup"], "-d", device], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)
        if proc.returncode != 0 and device in _loops_backed_in(run_dir):
            problems.append(f"losetup -d {device}: {proc.stderr.strip()}")
    for point in _mounts_under(run_dir):
        # the image's tmpfs is busy until the loop device lets its file go: a moment after the lease
        # filesystem's unmount; lazy at last, so a leftover open file can't keep the run dir forever
        deadline = time.monotonic() + 3.0
        while subprocess.run([LEASE_DISK_BINARIES["umount"], point], capture_output=True,
                             stdin=subprocess.DEVNULL, timeout=60).returncode != 0:
            if time.monotonic() > deadline:
                if subprocess.run([LEASE_DISK_BINARIES["umount"], "-l", point], capture_output=True,
                                  stdin=subprocess.DEVNULL, timeout=60).returncode != 0:
                    problems.append(f"umount {point} failed")
                break
            time.sleep(0.05)
    cgroup = _valid_run_cgroup(state.get("lease_disk", {}).get("cgroup"), run_dir.name)
    if cgroup is not None and cgroup.is_dir():
        deadline = time.monotonic() + 5.0
        while True:
            try:
                # anything left inherited the cgroup from the run's holder: back to the parent, unkilled
                for pid in (cgroup / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):  # exited meanwhile
                        (cgroup.parent / "cgroup.procs").write_text(pid)
                cgroup.rmdir()
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if time.monotonic() > deadline:
                    problems.append(f"rmdir {cgroup}: {exc.strerror}")
                    break
                time.sleep(0.05)  # a task still exiting
    return problems


class LeaseHold:
    """A sanlock resource lease held on a test host without a guest.

    The holder is a ``sanlock client command -r RESOURCE -c /bin/sleep ...`` process inside the
    host's namespace: it registers with that host's sanlock daemon, acquires the lease and execs
    sleep, so the lease stays held until the process exits (``release()``).
    """

    def __init__(self, host: TestHost, name: str, component: str, pid: int) -> None:
        self.host = host
        self.name = name
        self.resource = host.stack.lease_resource(name)
        self.pid = pid
        self._component = component

    @property
    def held(self) -> bool:
        return self.host._resource_held(self.name, self.pid)

    def release(self, timeout: float = 15.0) -> None:
        """End the holder; wait until sanlock has released the lease on disk too.  Idempotent.

        sanlock drops a lease from `client status` as soon as its holder exits but releases it
        on disk asynchronously; until then another host gets -243 (held by a live host) and this
        host -11 (EAGAIN: release in progress).
        """
        self.host._stop_daemon(self._component)
        stack, index = self.host.stack, self.host.index
        problem = _wait_for(lambda: not self.host._resource_held(self.name) and stack.lease_owner(self.name) != index,
                            timeout, lambda: False)
        if problem:
            raise RealStackError(f"{self.host.name}: lease {self.name} still held after its holder exited: "
                                 f"{problem}\n{self.host.sanlock_status()}\n{stack.lease_leader(self.name)}")

    def abandon(self) -> None:
        """End the holder without waiting for an on-disk release: after its host's sanlock daemon
        crashed nothing releases it, and the leader keeps naming the host, as after a real crash."""
        self.host._stop_daemon(self._component)

    def __enter__(self) -> LeaseHold:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<LeaseHold {self.name} on {self.host.name} pid={self.pid}>"


# --------------------------------------------------------------------------- test host

class TestHost:
    """One private libvirt host living in its own mount namespace."""

    __test__ = False  # not a pytest test class
    lease_dir_inside = LEASE_DIR_INSIDE  # the shared lease directory inside the namespace (sanlock)
    sshd_config = SSHD_CONFIG  # its template: name, port, host_key, authorized_keys

    def __init__(self, stack: RealStack, index: int) -> None:
        self.stack = stack
        self.index = index
        self.name = f"vthost{index}"
        self.dir = stack.run_dir / self.name
        self.holder_pid = 0
        self.ssh_port = 0
        self._holder: subprocess.Popen | None = None
        self._daemons: dict[str, tuple[int, int | None]] = {}  # component -> (pid, start time)
        self.marker = f"{stack.run_id} {self.name}"

    # ---- addresses
    @property
    def socket_path(self) -> str:
        """The libvirtd socket as reachable from outside the namespace."""
        return f"/proc/{self.holder_pid}/root/run/libvirt/libvirt-sock"

    @property
    def local_uri(self) -> str:
        return f"qemu:///system?socket={self.socket_path}"

    @property
    def ssh_uri(self) -> str:
        """qemu+ssh URI with keyfile and known_hosts.

        Note: libvirt's own ``qemu+ssh`` transport (OpenSSH binary) ignores ``known_hosts``; use
        :attr:`libssh_uri` to drive this host with virsh over SSH.
        """
        return (f"qemu+ssh://root@127.0.0.1:{self.ssh_port}/system"
                f"?keyfile={self.stack.client_key}&known_hosts={self.stack.known_hosts}")

    @property
    def libssh_uri(self) -> str:
        """Like ssh_uri but with the libssh transport, which honours known_hosts (virsh-usable)."""
        return self.ssh_uri.replace("qemu+ssh://", "qemu+libssh://", 1)

    def outside(self, inner_path: str) -> str:
        """A path inside the namespace, as seen from outside (via /proc/<holder>/root)."""
        return f"/proc/{self.holder_pid}/root{inner_path}"

    # ---- commands
    def run(self, *argv: str, check: bool = True, timeout: float = 60,
            input: str | None = None) -> subprocess.CompletedProcess:
        """Run argv inside the namespace (nsenter -m); text mode, output captured."""
        cmd = [BINARIES["nsenter"], "-m", "-u", "-t", str(self.holder_pid), "--", *argv]
        env = dict(os.environ)
        env["PATH"] = SYSTEM_PATH
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL, env=env, cwd="/")
        if check and proc.returncode != 0:
            raise HostCommandError(self.name, proc.returncode, list(argv), proc.stdout, proc.stderr)
        return proc

    def virsh(self, *args: str, check: bool = True, timeout: float = 60, input: str | None = None) -> str:
        """`virsh -c qemu:///system ARGS` inside the namespace; returns stdout."""
        return self.run("virsh", "-c", "qemu:///system", *args, check=check, timeout=timeout, input=input).stdout

    def ssh_argv(self, *command: str) -> list[str]:
        """An OpenSSH command line that runs command on this host as root (per-run key + known_hosts)."""
        return [BINARIES["ssh"], "-F", "/dev/null", "-i", self.stack.client_key,
                "-o", f"UserKnownHostsFile={self.stack.known_hosts}", "-o", "GlobalKnownHostsFile=/dev/null",
                "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
                "-o", "ConnectTimeout=10", "-p", str(self.ssh_port), "root@127.0.0.1", *command]

    def ssh(self, *command: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.ssh_argv(*command), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise HostCommandError(self.name, proc.returncode, ["ssh", *command], proc.stdout, proc.stderr)
        return proc

    # ---- guests
    def disk_path(self, name: str) -> str:
        """The guest's disk inside the namespace (names with unusual characters get a safe file name)."""
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)
        if safe != name:
            safe += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
        return f"/var/lib/libvirt/images/{safe}.qcow2"

    def guest_xml(self, name: str, *, memory_mib: int = 32, firmware: str = "auto",
                  extra_devices: str = "") -> str:
        if firmware == "auto":
            firmware = "qboot" if os.path.exists(QBOOT) else "seabios"
        loader = f"\n    <loader type='rom'>{QBOOT}</loader>" if firmware == "qboot" else ""
        return f"""<domain type='{self.stack.domain_type}'>
  <name>{escape(name)}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>{loader}
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file={quoteattr(self.disk_path(name))}/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>{extra_devices}
  </devices>
</domain>
"""

    def define_guest(self, name: str, *, start: bool = False, disk_mb: int = 8, memory_mib: int = 32,
                     firmware: str = "auto", extra_devices: str = "") -> str:
        """Create a qcow2 disk and define (optionally start) a guest with no OS; returns its UUID.

        firmware "auto" uses qboot when installed: a running no-OS guest then costs ~0.35 s of CPU
        to start and ~0 afterwards, against ~3 s and ~1 % of a core with SeaBIOS under nested KVM.
        """
        if not name.startswith(GUEST_PREFIX):
            raise ValueError(f"test guest names must start with {GUEST_PREFIX!r}: {name!r}")
        disk = self.disk_path(name)
        self.run("qemu-img", "create", "-q", "-f", "qcow2", disk, f"{disk_mb}M")
        self.virsh("define", "/dev/stdin", input=self.guest_xml(
            name, memory_mib=memory_mib, firmware=firmware, extra_devices=extra_devices))
        uuid = self.virsh("domuuid", name).strip()
        if start:
            self.start_guest(name)
        return uuid

    def start_guest(self, name: str) -> int:
        """virsh start; records and returns the QEMU pid."""
        self.virsh("start", name)
        pid = self.guest_pid(name)
        if pid:
            self.stack._record(pid, f"{self.name}/qemu:{name}")
        return pid or 0

    def guest_pid(self, name: str) -> int | None:
        try:
            return int(Path(self.outside(f"/run/libvirt/qemu/{name}.pid")).read_text().strip())
        except (OSError, ValueError):
            return None

    def undefine_guest(self, name: str) -> None:
        """Destroy (if running), undefine, and remove the guest's disk."""
        state = self.virsh("domstate", name, check=False).strip()
        if state and state not in ("shut off", "crashed"):
            self.virsh("destroy", name, check=False)
        self.virsh("undefine", name, "--managed-save", "--snapshots-metadata")
        self.run("rm", "-f", self.disk_path(name))

    # ---- daemons
    def _spawn(self, component: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        """Have the holder start argv (in the namespace, new session); returns the pid."""
        request = {"argv": argv, "log": str(self.dir / "logs" / f"{component}.out"),
                   "env": {"PATH": SYSTEM_PATH, "LC_ALL": "C", "HOME": str(self.dir / "home"), **(env or {})}}
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(30)
                conn.connect(str(self.dir / "holder.sock"))
                conn.sendall(json.dumps(request).encode() + b"\n")
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            reply = json.loads(data)
        except (OSError, ValueError) as exc:
            raise self._fail(component, f"could not be spawned by the namespace holder: {exc}",
                             [self.dir / "logs/holder.out"]) from exc
        if "pid" not in reply:
            raise self._fail(component, f"could not be spawned: {reply.get('error')}", [self.dir / "logs/holder.out"])
        pid = reply["pid"]
        self._daemons[component] = (pid, _starttime(pid))
        self.stack._record(pid, f"{self.name}/{component}")
        return pid

    def _fail(self, component: str, problem: str, logs: Iterable[Path]) -> RealStackError:
        parts = [f"{self.name}: {component} {problem}"]
        for log in logs:
            parts.append(f"--- tail of {log}:\n{_tail(log)}")
        return RealStackError("\n".join(parts))

    def _running(self, component: str) -> bool:
        entry = self._daemons.get(component)
        return entry is not None and _alive(*entry)

    def _stop_daemon(self, component: str, timeout: float = 10.0) -> None:
        entry = self._daemons.pop(component, None)
        if entry is not None and _alive(*entry):
            _kill_and_wait([entry[0]], timeout)

    def _wait_ready(self, component: str, check: Callable[[], bool], logs: list[Path]) -> None:
        pid, start = self._daemons[component]
        problem = _wait_for(check, START_TIMEOUT, lambda: not _alive(pid, start))
        if problem:
            self._stop_daemon(component)
            raise self._fail(component, problem, [self.dir / "logs/holder.out", *logs])

    def start_virtlogd(self) -> None:
        if self._running("virtlogd"):
            return
        self._spawn("virtlogd", [BINARIES["virtlogd"]])
        sock = Path(self.outside("/run/libvirt/virtlogd-sock"))
        self._wait_ready("virtlogd", sock.exists, [self.dir / "logs/virtlogd.out",
                                                   self.dir / "var-log-libvirt/virtlogd.log"])

    def stop_virtlogd(self) -> None:
        self._stop_daemon("virtlogd")

    def _libvirtd_answers(self) -> bool:
        if not os.path.exists(self.socket_path):
            return False
        proc = subprocess.run([BINARIES["virsh"], "-c", self.local_uri, "list", "--all"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30)
        return proc.returncode == 0

    def start_libvirtd(self) -> None:
        """Start libvirtd and wait until `virsh -c local_uri list` answers from outside."""
        if self._running("libvirtd"):
            return
        self._spawn("libvirtd", [BINARIES["libvirtd"]])
        self._wait_ready("libvirtd", self._libvirtd_answers, [self.dir / "logs/libvirtd.out",
                                                              self.dir / "var-log-libvirt/libvirtd.log"])

    def stop_libvirtd(self) -> None:
        """Stop libvirtd (guests keep running, as on a real host)."""
        self._stop_daemon("libvirtd")

    def restart_libvirtd(self) -> None:
        self.stop_libvirtd()
        self.start_libvirtd()

    def start_sshd(self) -> None:
        """Start sshd on 127.0.0.1:ssh_port inside the namespace; wait for its banner."""
        if self._running("sshd"):
            return
        log = self.dir / "logs/sshd.log"
        attempts = 1 if self.ssh_port else 5  # a fixed port can only be retried by the caller
        for attempt in range(attempts):
            port = self.ssh_port or _free_port()
            config = self.dir / "ssh/sshd_config"
            _write(config, self.sshd_config.format(name=self.name, port=port, host_key=self.dir / "ssh/host_key",
                                                   authorized_keys=self.stack.run_dir / "authorized_keys"), 0o600)
            logged_before = log.stat().st_size if log.exists() else 0
            self._spawn("sshd", [BINARIES["sshd"], "-D", "-f", str(config), "-E", str(log)])

            def ours_listening(port: int = port, logged_before: int = logged_before) -> bool:
                # a banner alone could be another session's sshd that took the port first
                said = _read_from(log, logged_before)
                return f"Server listening on 127.0.0.1 port {port}." in said and _ssh_banner(port)

            try:
                self._wait_ready("sshd", ours_listening, [self.dir / "logs/sshd.out", log])
            except RealStackError:
                if attempt + 1 == attempts:
                    raise
                continue
            self.ssh_port = port
            return

    def stop_sshd(self, *, kill_sessions: bool = True) -> None:
        """Stop the listening sshd and (by default) every SSH session process of this host."""
        self._stop_daemon("sshd")
        if kill_sessions:
            sessions = [pid for pid in _marker_processes(self.marker)
                        if self._comm(pid) == "sshd"]
            _kill_and_wait(sessions)

    @staticmethod
    def _comm(pid: int) -> str:
        return _comm(pid)

    # ---- sanlock (RealStack.start(..., sanlock=True))
    @property
    def sanlock_host_name(self) -> str:
        """The name this host's sanlock daemon writes into its delta lease (``sanlock daemon -e``)."""
        return f"{self.name}.{self.stack.run_id}"[:47]

    def _need_sanlock(self) -> None:
        if not self.stack.sanlock:
            raise RealStackError(f"{self.name}: this stack was started without sanlock=True")

    def _sanlock_client(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        return self.run(SANLOCK_BINARIES["sanlock"], "client", *args, check=check, timeout=timeout).stdout

    def sanlock_status(self) -> str:
        """`sanlock client status` inside the namespace (daemon, processes, lockspaces, resources)."""
        self._need_sanlock()
        return self._sanlock_client("status")

    def host_status(self) -> str:
        """`sanlock client host_status -s __LIBVIRT__DISKS__`: the host_ids this host's daemon sees."""
        self._need_sanlock()
        return self._sanlock_client("host_status", "-s", LOCKSPACE)

    def host_states(self) -> dict[int, str]:
        """host_id -> LIVE / UNKNOWN / FAIL / DEAD / FREE, as this host's sanlock judges the others.

        From ``sanlock client gets -h 1``.  A host is UNKNOWN until this daemon has seen its
        timestamp change (one renewal, 2*io_timeout); empty right after joining ("hosts not ready").
        """
        self._need_sanlock()
        states = {}
        for line in self._sanlock_client("gets", "-h", "1").splitlines():
            fields = line.split()
            if len(fields) >= 6 and fields[0] == "h" and fields[1].isdigit():
                states[int(fields[1])] = fields[-1]
        return states

    @property
    def lockspace_inside(self) -> str:
        """This host's lockspace as sanlock names it: __LIBVIRT__DISKS__:<host_id>:<path>:0."""
        return f"{LOCKSPACE}:{self.index}:{self.lease_dir_inside}/{LOCKSPACE}:0"

    def lockspace_joined(self) -> bool:
        """True when this host's sanlock lists the lockspace with its host_id as joined (not ADD/REM)."""
        if not self._running("sanlock"):
            return False
        proc = self.run(SANLOCK_BINARIES["sanlock"], "client", "status", check=False, timeout=30)
        return proc.returncode == 0 and f"s {self.lockspace_inside}" in proc.stdout.splitlines()

    def _resource_held(self, name: str, pid: int | None = None) -> bool:
        """Whether this host's sanlock lists resource name as held (by pid, when given)."""
        proc = self.run(SANLOCK_BINARIES["sanlock"], "client", "status", check=False, timeout=30)
        prefix = f"r {LOCKSPACE}:{name}:{self.lease_dir_inside}/{name}:0:"
        for line in proc.stdout.splitlines():
            if line.startswith(prefix) and (pid is None or line.endswith(f" p {pid}")):
                return True
        return False

    def _sanlock_answers(self) -> bool:
        if not os.path.exists(self.outside("/run/sanlock/sanlock.sock")):
            return False
        return self.run(SANLOCK_BINARIES["sanlock"], "client", "status", check=False, timeout=30).returncode == 0

    def start_sanlock(self) -> None:
        """Start this host's sanlock daemon (inside the namespace) and wait until it answers.

        libvirtd joins the lockspace only when it starts: if libvirtd is already running, the
        lockspace is joined here instead (and waited for).
        """
        self._need_sanlock()
        if self._running("sanlock"):
            return
        # -S -1: nothing to syslog.  This machine has no /dev/log, so glibc's LOG_CONS fallback would
        # open /dev/console and write every error line through the serial UART: sanlock logs three
        # for each lease removed under it (the release cannot reopen the file), and perf showed
        # those console writes as 15 % of a cleanup's CPU.  A real host's journald takes them for
        # microseconds; the lines still reach logs/sanlock.out (-D).
        self._spawn("sanlock", [SANLOCK_BINARIES["sanlock"], "daemon", "-D", "-S", "-1", "-w", "0", "-l", "0",
                                "-h", "0", "-U", "root", "-G", "root", "-e", self.sanlock_host_name],
                    env={"LD_PRELOAD": str(self.stack.sanlock_shim)})
        self._wait_ready("sanlock", self._sanlock_answers, [self.dir / "logs/sanlock.out"])
        if self._running("libvirtd"):
            self._sanlock_client("add_lockspace", "-o", str(self.stack.sanlock_io_timeout), "-s",
                                 self.lockspace_inside)
            self.wait_lockspace()

    def wait_lockspace(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until this host has joined __LIBVIRT__DISKS__ with its host_id."""
        self._need_sanlock()
        entry = self._daemons.get("sanlock")
        problem = _wait_for(self.lockspace_joined, timeout, lambda: entry is None or not _alive(*entry))
        if problem:
            status = self.run(SANLOCK_BINARIES["sanlock"], "client", "status", check=False).stdout
            raise self._fail(f"sanlock lockspace {self.lockspace_inside}", f"not joined: {problem}\n"
                             f"--- sanlock client status:\n{status}",
                             [self.dir / "logs/sanlock.out", self.dir / "var-log-libvirt/libvirtd.log"])

    def stop_sanlock(self, *, graceful: bool = True, timeout: float = 15.0) -> None:
        """Stop this host's sanlock daemon.

        graceful: ``sanlock client shutdown -f 1 -w 1``, which (as sanlock does) kills the processes
        holding leases here (running guests, lease holders), releases the host_id lease and leaves
        the lockspace (~2 s); a later start_sanlock() rejoins at once.  Not graceful: SIGKILL, like
        a crashed host: its host_id lease stays on disk and the other hosts see it stop renewing.
        """
        self._need_sanlock()
        entry = self._daemons.get("sanlock")
        if entry is not None and _alive(*entry) and graceful:
            try:
                self._sanlock_client("shutdown", "-f", "1", "-w", "1", check=False, timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
            _wait_for(lambda: not _alive(*entry), timeout, lambda: False)
        self._daemons.pop("sanlock", None)
        if entry is not None:
            _sigkill_and_wait([entry[0]] if _alive(*entry) else [])

    def hold_lease(self, name: str, *, timeout: float = START_TIMEOUT) -> LeaseHold:
        """Acquire resource lease ``name`` (a file in the shared lease dir) on this host, no guest needed.

        The lease file is created and initialised first when missing (see RealStack.make_stale_lease).
        Raises RealStackError when sanlock refuses the lease (e.g. another host holds it).
        """
        self._need_sanlock()
        _check_lease_name(name)
        if not (self.stack.lease_dir / name).exists():
            self.stack.make_stale_lease(name)
        component = f"lease-{name}"
        if self._running(component):
            raise RealStackError(f"{self.name}: lease {name} is already held by this harness")
        log = self.dir / f"logs/{component}.out"
        deadline = time.monotonic() + timeout
        while True:
            offset = log.stat().st_size if log.exists() else 0
            pid = self._spawn(component, [SANLOCK_BINARIES["sanlock"], "client", "command",
                                          "-r", self.stack.lease_resource(name), "-c", "/bin/sleep", "1000000"])
            try:
                self._wait_ready(component, lambda pid=pid: self._resource_held(name, pid), [log])
            except RealStackError:
                # -11 (EAGAIN): this host's sanlock is still releasing the lease on disk (a holder
                # that just exited); transient, unlike -243 (another live host holds it)
                with open(log, "rb") as f:
                    f.seek(offset)
                    again = b"acquire done -11" in f.read()
                if again and time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise
            return LeaseHold(self, name, component, pid)

    # ---- lifecycle (driven by RealStack)
    def _prepare_files(self) -> None:
        for sub in ("logs", "home", "ssh", "etc-private", *PRIVATE_DIRS.values()):
            (self.dir / sub).mkdir(parents=True)
        (self.dir / "var-lib-libvirt/images").mkdir()
        etc = self.dir / "etc-libvirt"
        _write(etc / "libvirtd.conf", LIBVIRTD_CONF)
        _write(etc / "qemu.conf", QEMU_CONF + (QEMU_CONF_SANLOCK if self.stack.sanlock else ""))
        _write(etc / "virtlogd.conf", VIRTLOGD_CONF)
        if self.stack.sanlock:
            (self.dir / "var-lib-libvirt/sanlock").mkdir()  # mount point of the shared lease dir
            _write(etc / "qemu-sanlock.conf", QEMU_SANLOCK_CONF.format(
                name=self.name, lease_dir=self.lease_dir_inside, host_id=self.index,
                io_timeout=self.stack.sanlock_io_timeout))
        # private user database: add what libvirtd resolves at start, if the machine lacks it
        passwd = Path("/etc/passwd").read_text()
        group = Path("/etc/group").read_text()
        users = {line.split(":")[0] for line in passwd.splitlines() if line}
        groups = {line.split(":")[0] for line in group.splitlines() if line}
        used_ids = {line.split(":")[2] for line in (passwd + group).splitlines() if line.count(":") >= 2}
        ids = (str(n) for n in range(64055, 65000) if str(n) not in used_ids)
        new_groups = {}
        for g in ("libvirt-qemu", "kvm", "libvirt"):
            if g not in groups:
                new_groups[g] = next(ids)
                group += f"{g}:x:{new_groups[g]}:\n"
        if "libvirt-qemu" not in users:
            gid = new_groups.get("libvirt-qemu") or next(
                line.split(":")[2] for line in group.splitlines() if line.startswith("libvirt-qemu:"))
            passwd += f"libvirt-qemu:x:{next(ids)}:{gid}:virttui test host:/var/lib/libvirt:/usr/sbin/nologin\n"
        self._private_etc = {}
        if passwd != Path("/etc/passwd").read_text():
            _write(self.dir / "etc-private/passwd", passwd)
            self._private_etc["/etc/passwd"] = self.dir / "etc-private/passwd"
        if group != Path("/etc/group").read_text():
            _write(self.dir / "etc-private/group", group)
            self._private_etc["/etc/group"] = self.dir / "etc-private/group"
        # sshd refuses public-key logins to a locked ('!...') root account when UsePAM is off
        try:
            shadow = Path("/etc/shadow").read_text()
        except OSError:
            shadow = ""
        lines = shadow.splitlines(keepends=True)
        for i, line in enumerate(lines):
            fields = line.split(":")
            if fields[0] == "root" and len(fields) > 1 and fields[1].startswith("!"):
                fields[1] = "*"
                lines[i] = ":".join(fields)
                _write(self.dir / "etc-private/shadow", "".join(lines), 0o600)
                self._private_etc["/etc/shadow"] = self.dir / "etc-private/shadow"
        # bash sources root's ~/.bashrc in every SSH session sshd starts: this machine's own (a development
        # box's, which may run `pyenv init`: ~100 ms a session) is not a hypervisor's, whose root has Debian's
        stock, rc = Path("/usr/share/base-files/dot.bashrc"), Path("/root/.bashrc")
        if rc.is_file() and (not stock.is_file() or rc.read_bytes() != stock.read_bytes()):
            _write(self.dir / "etc-private/root-bashrc", stock.read_text() if stock.is_file() else "")
            self._private_etc[str(rc)] = self.dir / "etc-private/root-bashrc"
        subprocess.run([BINARIES["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-C", self.name,
                        "-f", str(self.dir / "ssh/host_key")], check=True, capture_output=True)

    def _setup_script(self) -> str:
        lines = ["set -e",
                 f"hostname {self.name}",  # its own UTS namespace: hosts are told apart by name, as in life
                 "mount -t tmpfs -o mode=0755,size=64m virttui-run /run",
                 "mkdir -p /run/libvirt /run/sshd /run/sanlock /run/lock /run/user",
                 f"echo '{self.marker}' > {MARKER}"]
        overlays = set(ALWAYS_OVERLAY)
        for target in PRIVATE_DIRS:
            if not os.path.isdir(target):
                parent = os.path.dirname(target)
                if not os.path.isdir(parent):
                    raise RealStackError(f"{self.name}: cannot privatise {target}: {parent} is missing")
                overlays.add(parent)
        for parent in sorted(overlays):
            tag = parent.strip("/").replace("/", "-")
            upper, work = self.dir / "overlay" / tag / "upper", self.dir / "overlay" / tag / "work"
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            lines.append(f"mount -t overlay virttui-{tag} -o lowerdir={parent},upperdir={upper},workdir={work} "
                         f"{parent}")
        for target, sub in PRIVATE_DIRS.items():
            lines.append(f"mkdir -p {target}")
            lines.append(f"mount --bind {self.dir / sub} {target}")
        for target, source in self._private_etc.items():
            lines.append(f"mount --bind {source} {target}")
        if self.stack.sanlock:
            lines.append(f"mount --bind {self.stack.lease_dir} {self.lease_dir_inside}")
        return "\n".join(lines) + "\n"

    def _start(self) -> None:
        self._start_namespace()
        self.start_virtlogd()
        if self.stack.sanlock:
            self.start_sanlock()  # before libvirtd: its lock plugin joins the lockspace at start
        self.start_libvirtd()
        self.start_sshd()
        if self.stack.sanlock:
            self.wait_lockspace()

    def _start_namespace(self) -> None:
        """The holder in a mount namespace of its own, with the private mounts set up."""
        self._prepare_files()
        holder_log = self.dir / "logs/holder.out"
        holder_sock = self.dir / "holder.sock"
        with open(holder_log, "ab") as out:
            self._holder = subprocess.Popen(
                [BINARIES["unshare"], "-m", "-u", "--propagation", "private", "--",
                 sys.executable, "-I", str(HOLDER_SCRIPT), str(holder_sock), str(holder_log)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd="/",
                start_new_session=True)
        self.holder_pid = self._holder.pid
        self.stack._record(self.holder_pid, f"{self.name}/holder")
        self.stack._join_lease_cgroup(self.holder_pid)
        own_ns = os.readlink("/proc/self/ns/mnt")

        def unshared() -> bool:
            try:
                return os.readlink(f"/proc/{self.holder_pid}/ns/mnt") != own_ns and holder_sock.exists()
            except OSError:
                return False

        holder = self._holder
        problem = _wait_for(unshared, START_TIMEOUT, lambda: holder.poll() is not None)
        if problem:
            raise self._fail("namespace holder (unshare -m)", problem, [holder_log])
        self.ns = os.readlink(f"/proc/{self.holder_pid}/ns/mnt")
        self.stack._set_ns(self.name, self.ns)
        script = self._setup_script()
        (self.dir / "setup.sh").write_text(script)
        proc = self.run("sh", "-c", script, check=False)
        if proc.returncode != 0:
            raise RealStackError(f"{self.name}: namespace setup (mounts) failed with {proc.returncode}:\n"
                                 f"{proc.stderr.strip()}\n--- script:\n{script}")

    def _teardown(self) -> None:
        """Stop everything in this host's namespace, then the holder (last: it reaps the others).

        sanlock goes last but one, with SIGKILL: it ignores SIGTERM while in a lockspace and a
        clean exit takes seconds; its lease directory is deleted with the run anyway.
        """
        self._stop_daemon("libvirtd")
        sanlock = self._daemons.pop("sanlock", None)
        inside = [pid for pid in _marker_processes(self.marker) if pid != self.holder_pid]
        # the daemon, its helper and sanlock client calls (a lease holder has exec'd sleep by then)
        sanlocks = [pid for pid in inside if _comm(pid).startswith("sanlock")]
        if sanlock is not None and _alive(*sanlock) and sanlock[0] not in sanlocks:
            sanlocks.append(sanlock[0])
        _kill_and_wait([pid for pid in inside if pid not in sanlocks])
        for component in list(self._daemons):
            self._stop_daemon(component)
        _sigkill_and_wait(sanlocks)
        _wait_gone(inside + sanlocks)  # the holder reaps them; stopping it earlier would leave zombies to init
        if self._holder is not None:
            if self._holder.poll() is None:
                self._holder.terminate()
                try:
                    self._holder.wait(10)
                except subprocess.TimeoutExpired:
                    self._holder.kill()
                    self._holder.wait(5)
            self._holder = None

    def __repr__(self) -> str:
        return f"<TestHost {self.name} holder={self.holder_pid} ssh=127.0.0.1:{self.ssh_port}>"


class Bastion(TestHost):
    """A jump host: a mount namespace of its own (its sessions' wtmp and lastlog stay private) with
    nothing in it but an sshd on its own 127.0.0.1 port, which forwards TCP and logs each forwarded
    connection. The test hosts share the machine's network namespace (they unshare only mounts and
    the host name), so a bastion reaches their sshd on 127.0.0.1 as any process here does."""

    sshd_config = BASTION_SSHD_CONFIG

    def __init__(self, stack: RealStack, name: str) -> None:
        super().__init__(stack, 0)
        self.name = name
        self.dir = stack.run_dir / name
        self.marker = f"{stack.run_id} {name}"
        self.start_seconds = 0.0

    def _start(self) -> None:
        self._start_namespace()
        self.start_sshd()

    @property
    def log(self) -> Path:
        return self.dir / "logs/sshd.log"

    def log_size(self) -> int:
        """Where its log ends now: what a test reads after (log_since)."""
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, offset: int = 0) -> str:
        return _read_from(self.log, offset)

    def forwarded_to(self, port: int, since: int = 0) -> int:
        """How many connections to 127.0.0.1:port it forwarded (direct-tcpip) after its log's first `since` bytes."""
        return len(re.findall(rf"server_request_direct_tcpip: .* target 127\.0\.0\.1 port {port}\b",
                              self.log_since(since)))

    def logins(self, since: int = 0) -> int:
        """How many SSH connections authenticated to it after its log's first `since` bytes."""
        return self.log_since(since).count("Accepted publickey for ")

    def known_hosts_line(self, name: str | None = None) -> str:
        """Its host key as a known_hosts line, under name (default: [127.0.0.1]:port, as ssh looks it up)."""
        key_type, key = (self.dir / "ssh/host_key.pub").read_text().split()[:2]
        return f"{name or f'[127.0.0.1]:{self.ssh_port}'} {key_type} {key}\n"

    def __repr__(self) -> str:
        return f"<Bastion {self.name} holder={self.holder_pid} ssh=127.0.0.1:{self.ssh_port}>"


# --------------------------------------------------------------------------- the stack

class RealStack:
    """A set of private test hosts plus the per-run SSH client key and known_hosts file."""

    def __init__(self, root: Path, run_id: str, lock_fd: int) -> None:
        self.root = root
        self.run_id = run_id
        self.run_dir = root / run_id
        self._lock_fd: int | None = lock_fd
        self.hosts: list[TestHost] = []
        self.bastions: list[Bastion] = []  # jump hosts started on demand (start_bastion)
        self.client_key = str(self.run_dir / "client_key")
        self.known_hosts = str(self.run_dir / "known_hosts")
        self.domain_type = "kvm" if kvm_usable() else "qemu"
        self._state_lock = threading.Lock()
        self._state: dict = {"run_id": run_id, "owner_pid": os.getpid(),
                             "owner_start": _starttime(os.getpid()), "namespaces": {}, "processes": []}
        self._stopped = False
        self.start_seconds = 0.0
        self.stop_seconds = 0.0
        # sanlock (start(..., sanlock=True))
        self.sanlock = False
        self.lease_dir: Path | None = None  # the shared lease directory, as seen from the root namespace
        self.sanlock_shim: Path | None = None
        self.sanlock_io_timeout = SANLOCK_IO_TIMEOUT
        # the lease directory on its own throttled loop device (start(..., lease_disk=LeaseDisk()))
        self.lease_disk: LeaseDisk | None = None
        self.lease_device: str | None = None  # /dev/loopN
        self.lease_cgroup: Path | None = None  # the blkio cgroup every process of the hosts runs in

    # ---- state file
    def _save_state(self) -> None:
        tmp = self.run_dir / "state.json.tmp"
        tmp.write_text(json.dumps(self._state, indent=1))
        os.replace(tmp, self.run_dir / "state.json")

    def _record(self, pid: int, what: str) -> None:
        with self._state_lock:
            self._state["processes"].append({"pid": pid, "start": _starttime(pid), "what": what})
            self._save_state()

    def _set_ns(self, host: str, ns: str) -> None:
        with self._state_lock:
            self._state["namespaces"][host] = ns
            self._save_state()

    # ---- lifecycle
    @classmethod
    def start(cls, n_hosts: int = 2, *, sanlock: bool = False, root: Path | str = ROOT,
              lease_disk: LeaseDisk | None = None) -> RealStack:
        """Clean up crashed earlier runs, then start n_hosts test hosts (in parallel).

        sanlock: also run a sanlock daemon per host and have libvirt take automatic disk leases
        in one lease directory shared by all hosts (``lease_dir``); returns once every host has
        joined the ``__LIBVIRT__DISKS__`` lockspace (~3.5 s more).
        lease_disk (with sanlock): that directory on its own loop device, the hosts' reads of it
        capped in one blkio cgroup (see LeaseDisk, set_lease_read_iops).
        """
        t0 = time.monotonic()
        if lease_disk is not None and not sanlock:
            raise ValueError("lease_disk needs sanlock=True (it holds the shared lease directory)")
        missing = [path for path in BINARIES.values() if not os.access(path, os.X_OK)]
        if sanlock:
            missing += [path for path in SANLOCK_BINARIES.values() if not os.path.exists(path)]
        if lease_disk is not None:
            missing += [path for path in LEASE_DISK_BINARIES.values() if not os.access(path, os.X_OK)]
        if missing:
            raise RealStackError(f"real stack: missing programs {missing} (see scripts/test.sh)")
        if os.geteuid() != 0:
            raise RealStackError("real stack: needs root (it starts libvirtd, sshd and sanlock in private "
                                 "namespaces); run scripts/test.sh as root")
        root = _private_root(Path(root))
        with _root_lock(root):  # a run is born locked: another session's cleanup never takes it for stale
            _cleanup_stale_runs_locked(root)
            run_id, lock_fd = _new_run(root)
        stack = cls(root, run_id, lock_fd)
        atexit.register(stack.stop)
        try:
            stack._save_state()
            subprocess.run([BINARIES["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-C", f"virttui-{run_id}",
                            "-f", stack.client_key], check=True, capture_output=True)
            shutil.copyfile(stack.client_key + ".pub", stack.run_dir / "authorized_keys")
            if sanlock:
                stack._prepare_sanlock(root, lease_disk)
            stack.hosts = [TestHost(stack, i) for i in range(1, n_hosts + 1)]
            errors: list[BaseException] = []

            def start_host(host: TestHost) -> None:
                try:
                    host._start()
                except BaseException as exc:  # noqa: B036 - re-raised in the main thread
                    errors.append(exc)

            threads = [threading.Thread(target=start_host, args=(h,), name=f"start-{h.name}") for h in stack.hosts]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]
            stack._write_known_hosts()
        except BaseException:
            stack.stop()
            raise
        stack.start_seconds = time.monotonic() - t0
        return stack

    # ---- sanlock
    def _prepare_sanlock(self, root: Path, lease_disk: LeaseDisk | None = None) -> None:
        """Build the shim, create the shared lease dir (on its own loop device with lease_disk) and
        initialise the lockspace file in it.

        libvirtd creates and initialises __LIBVIRT__DISKS__ itself when the file is missing, but
        two libvirtds starting together race (one sees the file the other has only just created,
        before it is initialised, and fails to join); initialising it first avoids that.
        """
        self.sanlock = True
        self.sanlock_shim = _build_shim(root)
        self.lease_dir = self.run_dir / "leases"
        self.lease_dir.mkdir(mode=0o755)
        if lease_disk is not None:
            self._make_lease_disk(lease_disk)
        self._init_lease_file(LOCKSPACE, "-s", f"{LOCKSPACE}:0:{self.lease_dir / LOCKSPACE}:0")

    def _make_lease_disk(self, disk: LeaseDisk) -> None:
        """An ext4 loop device mounted on lease_dir, and the blkio cgroup the hosts will join.

        Each step is in state.json before it is taken (the cgroup's path) or found from the run dir
        (a mount below it, a loop device backed by its image), so stop() and a later session's
        stale-run cleanup undo exactly what was made (_undo_lease_disk).
        """
        if not (BLKIO_ROOT / "blkio.throttle.read_iops_device").exists():
            raise RealStackError(f"lease disk: no cgroup-v1 blkio controller with throttling at {BLKIO_ROOT} "
                                 "(cgroup v2 has no io controller on these machines)")
        self.lease_disk = disk
        parent = _own_blkio_cgroup()
        cgroup = parent / (CGROUP_PREFIX + self.run_id)
        image = self.run_dir / "leases.img"
        if disk.in_memory:
            image = self.run_dir / "lease-image" / "leases.img"
        with self._state_lock:
            self._state["lease_disk"] = {"cgroup": str(cgroup), "image": str(image), "mount": str(self.lease_dir)}
            self._save_state()
        if disk.in_memory:
            image.parent.mkdir(mode=0o700)
            _run_tool([LEASE_DISK_BINARIES["mount"], "-t", "tmpfs", "-o", f"size={disk.size_mib}m,mode=0700",
                       "virttui-lease-image", str(image.parent)], "lease disk")
        with open(image, "xb") as f:
            f.truncate(disk.size_mib * 1024 * 1024)  # sparse: costs only what is written
        # --direct-io=on: the loop device reads its image past the page cache (no second cache): each
        # read of the device reaches the image, as each read of an NFS export reaches the server
        device = _run_tool([LEASE_DISK_BINARIES["losetup"], "--find", "--show", "--direct-io=on", str(image)],
                           "lease disk").strip()
        self.lease_device = device
        with self._state_lock:
            self._state["lease_disk"]["device"] = device
            self._save_state()
        # no lazy init: ext4lazyinit would write the inode tables in the background during a measurement
        _run_tool([LEASE_DISK_BINARIES["mkfs.ext4"], "-q", "-F", "-m", "0", "-L", "vt-leases",
                   "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0", device], "lease disk", timeout=120)
        _run_tool([LEASE_DISK_BINARIES["mount"], "-t", "ext4", device, str(self.lease_dir)], "lease disk")
        # detached while mounted = autoclear: the device goes with the last mount of it, wherever that
        # is (another session's hosts copy this mount into their namespaces when they start)
        _run_tool([LEASE_DISK_BINARIES["losetup"], "-d", device], "lease disk")
        (self.lease_dir / "lost+found").rmdir()  # a lease directory holds leases: virttui would list it
        self.lease_dir.chmod(0o755)
        cgroup.mkdir()
        self.lease_cgroup = cgroup
        if disk.read_iops:
            self.set_lease_read_iops(disk.read_iops)

    @property
    def lease_device_number(self) -> tuple[int, int]:
        """(major, minor) of the lease loop device."""
        if self.lease_device is None:
            raise RealStackError("this stack was started without lease_disk")
        rdev = os.stat(self.lease_device).st_rdev
        return os.major(rdev), os.minor(rdev)

    def set_lease_read_iops(self, iops: int) -> None:
        """Cap the hosts' reads of the lease device at iops per second (0: no cap)."""
        if self.lease_cgroup is None:
            raise RealStackError("this stack was started without lease_disk")
        major, minor = self.lease_device_number
        (self.lease_cgroup / "blkio.throttle.read_iops_device").write_text(f"{major}:{minor} {int(iops)}\n")

    def lease_read_iops(self) -> int:
        """The cap in force (0: none), as the kernel reports it."""
        if self.lease_cgroup is None:
            raise RealStackError("this stack was started without lease_disk")
        major, minor = self.lease_device_number
        for line in (self.lease_cgroup / "blkio.throttle.read_iops_device").read_text().splitlines():
            if line.split()[0] == f"{major}:{minor}":
                return int(line.split()[1])
        return 0

    def lease_device_reads(self) -> int:
        """Reads the lease loop device has completed (/sys/block/loopN/stat, field 1), by anyone."""
        if self.lease_device is None:
            raise RealStackError("this stack was started without lease_disk")
        return int(Path(f"/sys/block/{os.path.basename(self.lease_device)}/stat").read_text().split()[0])

    def _join_lease_cgroup(self, pid: int) -> None:
        """Move a host's holder into the run's blkio cgroup before it spawns anything: every daemon,
        SSH session and lease agent of the host then inherits it."""
        if self.lease_cgroup is not None:
            (self.lease_cgroup / "cgroup.procs").write_text(str(pid))

    def _init_lease_file(self, name: str, kind: str, spec: str) -> Path:
        path = self.lease_dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, LEASE_SIZE)
        finally:
            os.close(fd)
        # `sanlock direct` needs no daemon and writes nothing but the lease file
        timeout_opt = ["-o", str(self.sanlock_io_timeout)] if kind == "-s" else []  # written into host_id leases
        proc = subprocess.run([SANLOCK_BINARIES["sanlock"], "direct", "init", *timeout_opt, kind, spec],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
        if proc.returncode != 0:
            path.unlink(missing_ok=True)
            raise RealStackError(f"sanlock direct init {kind} {spec} failed with {proc.returncode}: "
                                 f"{(proc.stderr or proc.stdout).strip()}")
        return path

    @property
    def lockspace_path(self) -> Path | None:
        """The __LIBVIRT__DISKS__ lockspace file (root namespace view), with sanlock=True."""
        return self.lease_dir / LOCKSPACE if self.lease_dir else None

    def lease_resource(self, name: str) -> str:
        """The sanlock RESOURCE string of lease file name, with the path as the hosts see it."""
        _check_lease_name(name)
        return f"{LOCKSPACE}:{name}:{LEASE_DIR_INSIDE}/{name}:0"

    def lease_leader(self, name: str) -> dict[str, str]:
        """The on-disk leader record of lease file name (`sanlock direct read_leader`): owner_id, lver, ..."""
        if self.lease_dir is None:
            raise RealStackError("this stack was started without sanlock=True")
        _check_lease_name(name)
        proc = subprocess.run([SANLOCK_BINARIES["sanlock"], "direct", "read_leader", "-r",
                               f"{LOCKSPACE}:{name}:{self.lease_dir / name}:0"],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
        if proc.returncode != 0:
            raise RealStackError(f"sanlock direct read_leader {name} failed with {proc.returncode}: "
                                 f"{(proc.stderr or proc.stdout).strip()}")
        return dict(line.split(" ", 1) for line in proc.stdout.splitlines()[1:] if " " in line)

    def lease_owner(self, name: str) -> int | None:
        """The host_id holding lease name according to the disk, or None when it is free."""
        leader = self.lease_leader(name)
        return None if leader.get("timestamp", "0") == "0" else int(leader["owner_id"])

    def make_stale_lease(self, name: str) -> str:
        """Create an initialised, unheld 1 MiB lease file in the shared lease dir; returns its path.

        Its on-disk lease is free, like one left behind by a guest that was destroyed or moved
        (virt-sanlock-cleanup removes such files).  Seen from the root namespace; the hosts see
        it as ``TestHost.lease_dir_inside/name``.
        """
        if not self.sanlock or self.lease_dir is None:
            raise RealStackError("this stack was started without sanlock=True")
        _check_lease_name(name)
        if name == LOCKSPACE:
            raise ValueError(f"{LOCKSPACE} is the lockspace, not a lease")
        return str(self._init_lease_file(name, "-r", f"{LOCKSPACE}:{name}:{self.lease_dir / name}:0"))

    def _write_known_hosts(self) -> None:
        lines = []
        for host in self.hosts:
            key_type, key = (host.dir / "ssh/host_key.pub").read_text().split()[:2]
            lines.append(f"[127.0.0.1]:{host.ssh_port} {key_type} {key}\n")
        _write(Path(self.known_hosts), "".join(lines), 0o600)

    def start_bastion(self, name: str = "vtbastion1") -> Bastion:
        """Start a jump host (see Bastion) for this run; stop_bastion or stop() ends it."""
        if not re.fullmatch(r"vtbastion[0-9]{1,3}", name) or any(b.name == name for b in self.bastions):
            raise ValueError(f"a bastion is named vtbastionN, once per run: {name!r}")
        bastion = Bastion(self, name)
        self.bastions.append(bastion)  # before it starts: stop() tears down a half-started one too
        t0 = time.monotonic()
        try:
            bastion._start()
        except BaseException:
            self.stop_bastion(bastion)
            raise
        bastion.start_seconds = time.monotonic() - t0
        return bastion

    def stop_bastion(self, bastion: Bastion) -> None:
        """Stop a bastion's processes and remove its directory (nothing else of the run)."""
        if bastion not in self.bastions:
            return
        bastion._teardown()
        self.bastions.remove(bastion)
        shutil.rmtree(bastion.dir, ignore_errors=True)

    def host(self, name_or_index: str | int) -> TestHost:
        for host in self.hosts:
            if name_or_index in (host.name, host.index):
                return host
        raise KeyError(name_or_index)

    def stop(self) -> None:
        """Stop every process of this run and remove its directory.  Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        t0 = time.monotonic()
        threads = [threading.Thread(target=h._teardown, name=f"stop-{h.name}") for h in [*self.hosts, *self.bastions]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # anything recorded that is still alive (e.g. a holder whose start failed half-way)
        _kill_and_wait([p["pid"] for p in self._state["processes"] if _alive(p["pid"], p["start"])])
        leftovers = _marker_processes(self.run_id + " ")
        _kill_and_wait(leftovers)
        problems = _undo_lease_disk(self.run_dir, self._state)
        if problems:  # keep the run dir: its state.json lets the next session's cleanup try again
            print(f"real stack {self.run_id}: could not undo: {'; '.join(problems)}", file=sys.stderr)
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        atexit.unregister(self.stop)
        self.stop_seconds = time.monotonic() - t0

    def __enter__(self) -> RealStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _private_root(root: Path) -> Path:
    """root, made if need be, and refused unless it is this user's own directory: a directory a
    local user made first in /var/tmp could plant the sanlock shim that root's daemons preload."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        st = os.lstat(root)
    except OSError as exc:  # a dangling symlink there, a file in the way
        raise RealStackError(f"real stack: {root}: {exc.strerror}; remove it") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise RealStackError(f"real stack: {root} is not a directory owned by this user; remove it")
    root.chmod(0o700)
    return root


@contextlib.contextmanager
def _root_lock(root: Path) -> Iterator[None]:
    """Serialises stale-run cleanups and run creation across test sessions."""
    fd = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _new_run(root: Path) -> tuple[str, int]:
    """A fresh run directory and its lock, held (close-on-exec: a leftover child can't keep it)."""
    base_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    for n in itertools.count():  # several stacks may start within one second in one process
        run_id = base_id if n == 0 else f"{base_id}.{n}"
        try:
            (root / run_id).mkdir(mode=0o700)
            break
        except FileExistsError:
            continue
    lock_fd = os.open(root / run_id / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    return run_id, lock_fd


def cleanup_stale_runs(root: Path | str = ROOT) -> list[str]:
    """Kill the processes of earlier runs under root whose lock is free, remove their dirs.

    Only processes the run recorded (pid and start time match) and processes inside its
    namespaces (their /run shows the run's marker file) are killed.  Returns the run ids cleaned.
    """
    root = _private_root(Path(root))
    with _root_lock(root):
        return _cleanup_stale_runs_locked(root)


def _cleanup_stale_runs_locked(root: Path) -> list[str]:
    cleaned = []
    for run_dir in sorted(root.glob("run-*")):
        if not run_dir.is_dir():
            continue
        fd = None
        try:
            fd = os.open(run_dir / "lock", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            pass  # a run that died between making its directory and its lock
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live run (another test session)
        try:
            try:
                state = json.loads((run_dir / "state.json").read_text())
            except (OSError, ValueError):
                state = {}
            recorded = [p for p in state.get("processes", []) if _alive(p["pid"], p.get("start"))]
            holders = {p["pid"] for p in recorded if p.get("what", "").endswith("/holder")}
            # everything but the holders first: they reap the others (else zombies go to init)
            others = {p["pid"] for p in recorded} | set(_marker_processes(run_dir.name + " "))
            others -= holders
            # sanlock ignores SIGTERM while it is in a lockspace: SIGKILL it (and its helper) first
            _sigkill_and_wait([pid for pid in others if _comm(pid).startswith("sanlock")])
            _kill_and_wait(others)
            _wait_gone(others)
            _kill_and_wait(holders)
            _kill_and_wait(_marker_processes(run_dir.name + " "))
            if _undo_lease_disk(run_dir, state):
                continue  # still mounted or in use: the next cleanup tries again, nothing is deleted under it
            shutil.rmtree(run_dir, ignore_errors=True)
            cleaned.append(run_dir.name)
        finally:
            if fd is not None:
                os.close(fd)
    return cleaned
