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

This module deliberately does not import pytest.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
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
AuthorizedKeysFile {authorized_keys}
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


def _alive(pid: int, start: int | None = None) -> bool:
    st = _proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return start is None or st[1] == start


def _marker_processes(prefix: str) -> dict[int, str]:
    """Processes whose root (mount namespace) shows a marker starting with prefix -> marker."""
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
        if text.startswith(prefix):
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


# --------------------------------------------------------------------------- test host

class TestHost:
    """One private libvirt host living in its own mount namespace."""

    __test__ = False  # not a pytest test class

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
        cmd = [BINARIES["nsenter"], "-m", "-t", str(self.holder_pid), "--", *argv]
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
    def _spawn(self, component: str, argv: list[str]) -> int:
        """Have the holder start argv (in the namespace, new session); returns the pid."""
        request = {"argv": argv, "log": str(self.dir / "logs" / f"{component}.out"),
                   "env": {"PATH": SYSTEM_PATH, "LC_ALL": "C", "HOME": str(self.dir / "home")}}
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
            _write(config, SSHD_CONFIG.format(name=self.name, port=port, host_key=self.dir / "ssh/host_key",
                                              authorized_keys=self.stack.run_dir / "authorized_keys"), 0o600)
            self._spawn("sshd", [BINARIES["sshd"], "-D", "-f", str(config), "-E", str(log)])
            try:
                self._wait_ready("sshd", lambda: _ssh_banner(port), [self.dir / "logs/sshd.out", log])
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
        try:
            return Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            return ""

    # ---- lifecycle (driven by RealStack)
    def _prepare_files(self) -> None:
        for sub in ("logs", "home", "ssh", "etc-private", *PRIVATE_DIRS.values()):
            (self.dir / sub).mkdir(parents=True)
        (self.dir / "var-lib-libvirt/images").mkdir()
        etc = self.dir / "etc-libvirt"
        _write(etc / "libvirtd.conf", LIBVIRTD_CONF)
        _write(etc / "qemu.conf", QEMU_CONF)
        _write(etc / "virtlogd.conf", VIRTLOGD_CONF)
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
        subprocess.run([BINARIES["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-C", self.name,
                        "-f", str(self.dir / "ssh/host_key")], check=True, capture_output=True)

    def _setup_script(self) -> str:
        lines = ["set -e",
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
        return "\n".join(lines) + "\n"

    def _start(self) -> None:
        self._prepare_files()
        holder_log = self.dir / "logs/holder.out"
        holder_sock = self.dir / "holder.sock"
        with open(holder_log, "ab") as out:
            self._holder = subprocess.Popen(
                [BINARIES["unshare"], "-m", "--propagation", "private", "--",
                 sys.executable, "-I", str(HOLDER_SCRIPT), str(holder_sock), str(holder_log)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd="/",
                start_new_session=True)
        self.holder_pid = self._holder.pid
        self.stack._record(self.holder_pid, f"{self.name}/holder")
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
        self.start_virtlogd()
        self.start_libvirtd()
        self.start_sshd()

    def _teardown(self) -> None:
        """Stop everything in this host's namespace, then the holder (last: it reaps the others)."""
        self._stop_daemon("libvirtd")
        inside = [pid for pid in _marker_processes(self.marker) if pid != self.holder_pid]
        _kill_and_wait(inside)
        for component in list(self._daemons):
            self._stop_daemon(component)
        _wait_gone(inside)  # the holder reaps them; stopping it earlier would leave zombies to init
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


# --------------------------------------------------------------------------- the stack

class RealStack:
    """A set of private test hosts plus the per-run SSH client key and known_hosts file."""

    def __init__(self, root: Path, run_id: str, lock_fd: int) -> None:
        self.root = root
        self.run_id = run_id
        self.run_dir = root / run_id
        self._lock_fd: int | None = lock_fd
        self.hosts: list[TestHost] = []
        self.client_key = str(self.run_dir / "client_key")
        self.known_hosts = str(self.run_dir / "known_hosts")
        self.domain_type = "kvm" if kvm_usable() else "qemu"
        self._state_lock = threading.Lock()
        self._state: dict = {"run_id": run_id, "owner_pid": os.getpid(),
                             "owner_start": _starttime(os.getpid()), "namespaces": {}, "processes": []}
        self._stopped = False
        self.start_seconds = 0.0
        self.stop_seconds = 0.0

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
    def start(cls, n_hosts: int = 2, *, root: Path | str = ROOT) -> RealStack:
        """Clean up crashed earlier runs, then start n_hosts test hosts (in parallel)."""
        t0 = time.monotonic()
        missing = [path for path in BINARIES.values() if not os.access(path, os.X_OK)]
        if missing:
            raise RealStackError(f"real stack: missing programs {missing} (see scripts/test.sh)")
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o700)
        cleanup_stale_runs(root)
        run_id = f"run-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        run_dir = root / run_id
        run_dir.mkdir(mode=0o700)
        lock_fd = os.open(run_dir / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        stack = cls(root, run_id, lock_fd)
        atexit.register(stack.stop)
        try:
            stack._save_state()
            subprocess.run([BINARIES["ssh-keygen"], "-q", "-t", "ed25519", "-N", "", "-C", f"virttui-{run_id}",
                            "-f", stack.client_key], check=True, capture_output=True)
            shutil.copyfile(stack.client_key + ".pub", run_dir / "authorized_keys")
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

    def _write_known_hosts(self) -> None:
        lines = []
        for host in self.hosts:
            key_type, key = (host.dir / "ssh/host_key.pub").read_text().split()[:2]
            lines.append(f"[127.0.0.1]:{host.ssh_port} {key_type} {key}\n")
        _write(Path(self.known_hosts), "".join(lines), 0o600)

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
        threads = [threading.Thread(target=h._teardown, name=f"stop-{h.name}") for h in self.hosts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # anything recorded that is still alive (e.g. a holder whose start failed half-way)
        _kill_and_wait([p["pid"] for p in self._state["processes"] if _alive(p["pid"], p["start"])])
        leftovers = _marker_processes(self.run_id + " ")
        _kill_and_wait(leftovers)
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


def cleanup_stale_runs(root: Path | str = ROOT) -> list[str]:
    """Kill the processes of earlier runs under root whose lock is free, remove their dirs.

    Only processes the run recorded (pid and start time match) and processes inside its
    namespaces (their /run shows the run's marker file) are killed.  Returns the run ids cleaned.
    """
    root = Path(root)
    cleaned = []
    for run_dir in sorted(root.glob("run-*")):
        if not run_dir.is_dir():
            continue
        lock_path = run_dir / "lock"
        fd = None
        if not lock_path.exists() and time.time() - run_dir.stat().st_mtime < 60:
            continue  # a run being created right now (it locks right after mkdir)
        if lock_path.exists():
            fd = os.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
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
            recorded = [p for p in state.get("processes", [])
                        if p.get("start") is not None and _alive(p["pid"], p["start"])]
            holders = {p["pid"] for p in recorded if p.get("what", "").endswith("/holder")}
            # everything but the holders first: they reap the others (else zombies go to init)
            others = {p["pid"] for p in recorded} | set(_marker_processes(run_dir.name + " "))
            others -= holders
            _kill_and_wait(others)
            _wait_gone(others)
            _kill_and_wait(holders)
            _kill_and_wait(_marker_processes(run_dir.name + " "))
            shutil.rmtree(run_dir, ignore_errors=True)
            cleaned.append(run_dir.name)
        finally:
            if fd is not None:
                os.close(fd)
    return cleaned
