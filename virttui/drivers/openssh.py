"""The OpenSSH transport: the system `ssh`, for what paramiko can't do (FIDO/sk- keys, GSSAPI,
PKCS#11 tokens, host certificates, whatever the operator's ssh_config and agents already handle).

One private ControlMaster per host (`ssh -M -S DIR/ctl -N`, its own session and process group, its
socket in a fresh 0700 directory: never a predictable path) holds the one authenticated connection;
the pooled shells, the event stream and the serial console are `ssh -S DIR/ctl` clients sharing it.
The shells keep the paramiko transport's framing (ssh._ShellSession over pipes), its pool, its
timeouts and its quoting; dead peers are ServerAliveInterval/CountMax on the master, whose death
fails its clients at once and makes the next connect start a new master.

Host keys are checked by ssh alone and strictly: an unknown key fails with one line telling the
operator to check and add it (no trust dialog here), a changed or revoked key is refused naming the
host. ssh's stderr is bounded and made printable before it reaches an error.
"""

from __future__ import annotations

import logging
import os
import re
import selectors
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence

import virttui.drivers.ssh as sshmod
from virttui.drivers.errors import ConnectionFailed, InvalidURI
from virttui.drivers.processgroup import end_process_group
from virttui.drivers.sshresolve import ResolveFailed, check_argument, find_ssh
from virttui.drivers.sshsocket import KEEPALIVE_SECONDS
from virttui.drivers.sshtarget import SSHTarget, _config_file, resolve_target
from virttui.drivers.transport import READ_CHUNK, LineStream, _ProcessStream, line_buffered
from virttui.drivers.uri import LibvirtURI

log = logging.getLogger("virttui.drivers.ssh")  # the SSH transport's log, as its operators know it

MAX_ERROR_TEXT = 4096  # of ssh's stderr read back for an error
MAX_ERROR_LINE = 300  # characters of it an error quotes
PIPE_CAP = 4 * 1024 * 1024  # read ahead per pipe before it is left unread (the host then waits, as in a full window)
MAX_SOCKET_DIR = 80  # ssh binds DIR/ctl.<16 random characters>: a unix socket path has room for 107 bytes
CONTROL_DIR_PREFIX = "virttui-ssh-"
_PLAIN_PATH = re.compile(r"/[A-Za-z0-9_./-]*")


def _option(name: str, value: str) -> list[str]:
    return ["-o", f"{name}={value}"]


def _ssh_path(path: str, what: str) -> str:
    """A file name as ssh reads it in an option: % tokens escaped, quoted if it holds blanks.
    Whatever ssh could only read as something else is refused (one line)."""
    if not path or '"' in path or "${" in path or any(not ch.isprintable() for ch in path):
        raise InvalidURI(f"{what} {path[:64]!r} cannot be given to ssh")
    escaped = path.replace("%", "%%")
    return f'"{escaped}"' if any(ch.isspace() for ch in escaped) else escaped


def host_key_options(target: SSHTarget, scratch_known_hosts: str) -> list[str]:
    """StrictHostKeyChecking and the known_hosts files for a target.

    yes and ask (no dialog here) refuse an unknown key; accept-new is the operator's own choice and
    saves it as ssh does; no (or no_verify=1) takes an unknown key like libvirt's no_verify, but
    still refuses a changed one: accept-new whose first file, where ssh writes, is a scratch file of
    the private directory, so nothing is saved (plain `no` would connect despite a changed key)."""
    files = [_ssh_path(path, "known_hosts file") for path in target.known_files]
    if target.strict == "accept-new":
        strict = "accept-new"
    elif target.strict == "no":
        strict = "accept-new"
        files.insert(0, _ssh_path(scratch_known_hosts, "known_hosts file"))
    else:
        strict = "yes"
    return [*_option("StrictHostKeyChecking", strict), *_option("UserKnownHostsFile", " ".join(files)),
            *_option("GlobalKnownHostsFile", os.devnull), *_option("CheckHostIP", "no")]


def _plain(value: str, what: str) -> str:
    """A host or user as one plain argument of ssh (never an option); InvalidURI, one line, otherwise."""
    try:
        check_argument(value, what)
    except ResolveFailed as exc:
        raise InvalidURI(str(exc)) from None
    return value


def common_argv(ssh: str, uri: LibvirtURI, target: SSHTarget, config_args: Sequence[str], ctl: str) -> list[str]:
    """What every ssh of a host gets: its config, the control socket, never a prompt, the URI's user and port."""
    _plain(target.host, "host")
    argv = [ssh, *config_args, "-S", ctl, *_option("BatchMode", "yes"),
            *_option("ClearAllForwardings", "yes")]
    if uri.user:
        argv += ["-l", _plain(uri.user, "user")]
    if uri.port:
        argv += ["-p", str(int(uri.port))]
    return argv


def master_argv(ssh: str, uri: LibvirtURI, target: SSHTarget, config_args: Sequence[str], ctl: str,
                scratch_known_hosts: str, connect_timeout: float) -> list[str]:
    """The ControlMaster: authenticates, holds the connection, runs nothing itself (-N)."""
    argv = common_argv(ssh, uri, target, config_args, ctl)
    argv += ["-M", "-N", "-T", *_option("ControlMaster", "yes"), *_option("ControlPersist", "no"),
             *_option("ConnectTimeout", str(max(1, round(target.connect_timeout or connect_timeout)))),
             *_option("ServerAliveInterval", str(target.alive_interval or KEEPALIVE_SECONDS)),
             *_option("ServerAliveCountMax", str(target.alive_count_max)),
             *host_key_options(target, scratch_known_hosts)]
    if uri.param("keyfile"):
        argv += ["-i", _ssh_path(os.path.expanduser(uri.param("keyfile")), "keyfile")]
    return [*argv, "--", target.host]


def client_argv(ssh: str, uri: LibvirtURI, target: SSHTarget, config_args: Sequence[str], ctl: str,
                command: str, *, tty: bool = False) -> list[str]:
    """A session over the master running `command` (one string, quoted by the caller, as paramiko
    sends it). ProxyCommand=false: if the master is gone ssh would otherwise connect on its own,
    unchecked by the master's options; this way it fails at once."""
    argv = common_argv(ssh, uri, target, config_args, ctl)
    argv += ["-t" if tty else "-T", *_option("ControlMaster", "no"), *_option("ProxyCommand", "false"),
             *_option("RemoteCommand", "none"), *_option("LogLevel", "ERROR")]
    return [*argv, "--", target.host, command]


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def explain_ssh_failure(stderr: bytes, host: str) -> str:
    """ssh's complaint (bounded, printable) as one line naming the host."""
    text = stderr[-MAX_ERROR_TEXT:].decode("utf-8", "replace").replace("\r", "")
    lines = [_printable(line).strip() for line in text.split("\n")]
    lines = [line for line in lines if line and not line.startswith("@")]  # ssh's warning banners
    if "REMOTE HOST IDENTIFICATION HAS CHANGED" in text:
        return (f"{host}: host key CHANGED from the one in known_hosts, refusing to connect "
                f"(a man in the middle, or a reinstalled host: check, then update known_hosts)")
    if "REVOKED HOST KEY" in text or re.search(r"host key .* revoked", text, re.IGNORECASE):
        return f"{host}: host key is marked @revoked in known_hosts, refusing to connect"
    invalid = re.search(r"Certificate invalid: (.*)", text)
    if invalid and "Host key verification failed" in text:  # ssh then checked the plain key, not on file either
        return (f"{host}: host certificate refused ({_printable(invalid[1]).strip()[:MAX_ERROR_LINE]}) and its "
                f"key is not in known_hosts, refusing to connect")
    if "host key is known for" in text or "Host key verification failed" in text:
        return (f"{host}: host key not in known_hosts, refusing to connect: check its fingerprint and add it "
                f"(e.g. ssh-keyscan, or one interactive ssh), then retry; the OpenSSH client has no trust dialog")
    meaningful = [line for line in lines if not line.startswith("Warning: Permanently added")]
    reason = meaningful[-1] if meaningful else "ssh exited without saying why"
    return f"{host}: {reason[:MAX_ERROR_LINE]}"


def _tail(path: str) -> bytes:
    """The end of a log file, at most MAX_ERROR_TEXT bytes (ssh may have written a lot)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        size = os.fstat(fd).st_size
        return os.pread(fd, MAX_ERROR_TEXT, max(0, size - MAX_ERROR_TEXT))
    finally:
        os.close(fd)


def _private_dir() -> str:
    """A fresh directory only we can enter: mkdtemp makes it 0700 with a random name and never
    follows a planted one (mkdir fails on anything already there)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    # -S takes its path verbatim but for % tokens: only plain names, short enough for a socket path
    if not os.path.isdir(base) or not _PLAIN_PATH.fullmatch(base) \
            or len(base) + len(CONTROL_DIR_PREFIX) + 8 > MAX_SOCKET_DIR:
        base = "/tmp"  # noqa: S108 - a random 0700 directory in it, made by mkdtemp
    return tempfile.mkdtemp(prefix=CONTROL_DIR_PREFIX, dir=base)


class _Master:
    """The ControlMaster process and its private directory (socket, log, scratch known_hosts)."""

    def __init__(self, transport: OpenSSHTransport, timeout: float) -> None:
        self.name = transport.target.host
        self.directory = _private_dir()
        self.ctl = os.path.join(self.directory, "ctl")
        self.log_path = os.path.join(self.directory, "master.log")
        argv = master_argv(transport.ssh, transport.uri, transport.target, transport.config_args, self.ctl,
                           os.path.join(self.directory, "accepted_hosts"), timeout)
        self.client_argv = lambda command, tty=False: client_argv(  # noqa: E731 - bound to this master's socket
            transport.ssh, transport.uri, transport.target, transport.config_args, self.ctl, command, tty=tty)
        log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log_fd,
                                         start_new_session=True)  # its group: close ends any ProxyJump ssh too
        except OSError as exc:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise ConnectionFailed(f"{transport.uri.raw}: cannot run {transport.ssh}: {exc.strerror}") from None
        finally:
            os.close(log_fd)
        self._wait_ready(transport.uri.raw, timeout)

    def _wait_ready(self, uri: str, timeout: float) -> None:
        """ssh creates the control socket only once authenticated: wait for it, or for ssh to give up.
        ConnectTimeout bounds the TCP connection and the banner; this bounds the rest (kex, auth)."""
        deadline = time.monotonic() + 2 * timeout + 5
        delay = 0.005
        while not os.path.exists(self.ctl):
            if self.proc.poll() is not None:
                reason = explain_ssh_failure(_tail(self.log_path), self.name)
                self.close()
                raise ConnectionFailed(f"{uri}: {reason}")
            if time.monotonic() > deadline:
                self.close()
                raise ConnectionFailed(f"{uri}: {self.name}: no SSH connection within {2 * timeout + 5:g} s")
            time.sleep(delay)
            delay = min(0.05, delay * 2)

    def alive(self) -> bool:
        return self.proc.poll() is None and os.path.exists(self.ctl)

    def reason(self) -> str:
        """Why the master ended, as ssh logged it (e.g. "Timeout, server not responding")."""
        return explain_ssh_failure(_tail(self.log_path), self.name)

    def close(self) -> None:
        end_process_group(self.proc, grace=2)
        shutil.rmtree(self.directory, ignore_errors=True)


class _PipeChannel:
    """The part of a paramiko Channel _ShellSession uses, over an ssh client's pipes: both outputs
    read as they come (a full stderr pipe can't stall stdout), each buffered up to PIPE_CAP."""

    def __init__(self, proc: subprocess.Popen) -> None:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        self._proc = proc
        self._stdin = proc.stdin.fileno()
        os.set_blocking(self._stdin, False)
        self._out_fd, self._err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        self._buffers = {self._out_fd: bytearray(), self._err_fd: bytearray()}
        self._ended: set[int] = set()
        self._selector = selectors.DefaultSelector()  # not select(): fds past 1024 with many hosts
        for fd in self._buffers:
            self._selector.register(fd, selectors.EVENT_READ)
        self._timeout: float | None = None
        self._closed = False

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout

    def _deadline(self) -> float | None:
        return None if self._timeout is None else time.monotonic() + self._timeout

    def sendall(self, data: bytes) -> None:
        deadline = self._deadline()
        view = memoryview(data)
        with selectors.DefaultSelector() as writable:
            writable.register(self._stdin, selectors.EVENT_WRITE)
            while view:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise socket.timeout("timed out")
                if not writable.select(left):
                    continue
                try:
                    view = view[os.write(self._stdin, view):]
                except BlockingIOError:
                    continue

    def recv(self, size: int) -> bytes:
        return self._read(self._out_fd, size)

    def recv_stderr(self, size: int) -> bytes:
        return self._read(self._err_fd, size)

    def _read(self, fd: int, size: int) -> bytes:
        buffer = self._buffers[fd]
        deadline = self._deadline()
        while not buffer:
            if fd in self._ended:
                return b""
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise socket.timeout("timed out")
            self._pump(left)
        data = bytes(buffer[:size])
        del buffer[:size]
        if fd not in self._ended and len(buffer) < PIPE_CAP and fd not in self._selector.get_map():
            self._selector.register(fd, selectors.EVENT_READ)  # read on again: its reader caught up
        return data

    def _pump(self, timeout: float | None) -> None:
        for key, _ in self._selector.select(timeout):
            fd = int(key.fd)
            chunk = os.read(fd, READ_CHUNK)
            if not chunk:
                self._ended.add(fd)
                self._selector.unregister(fd)
                continue
            buffer = self._buffers[fd]
            buffer += chunk
            if len(buffer) >= PIPE_CAP:
                self._selector.unregister(fd)

    @property
    def closed(self) -> bool:
        return self._closed or self._out_fd in self._ended

    def exit_status_ready(self) -> bool:
        return self._proc.poll() is not None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        end_process_group(self._proc, grace=1)
        self._selector.close()
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


class _PipeSession(sshmod._ShellSession):
    """ssh._ShellSession's framing, over an `ssh -S ctl HOST 'exec /bin/sh'` client of the master."""

    def __init__(self, master: _Master) -> None:  # noqa: D107 - not the parent's: no paramiko channel to open
        if not master.alive():
            raise ConnectionFailed("SSH connection is closed")
        self.client = master  # type: ignore[assignment]  # pooled only while this master lives
        self.name = master.name
        self.marker = "__virttui_" + os.urandom(16).hex()
        proc = subprocess.Popen(master.client_argv("exec /bin/sh"), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        self.channel = _PipeChannel(proc)  # type: ignore[assignment]
        self._out = bytearray()
        self._err = b""
        self._deadline = None


class OpenSSHTransport(sshmod.SSHTransport):
    """SSHTransport's pool and framing over the system ssh and one private ControlMaster per host."""

    def __init__(self, uri: LibvirtURI, *, ssh_config_path: str | None = None) -> None:  # noqa: D107
        # not SSHTransport.__init__: the route (ProxyJump, ProxyCommand) is ssh's own business here
        import threading

        ssh = find_ssh()
        if ssh is None:
            raise InvalidURI(f"{uri.raw}: ssh_client \"openssh\" needs the OpenSSH client (ssh) on PATH")
        self.ssh = ssh
        self.uri = uri
        self.target = resolve_target(uri, ssh_config_path)
        self.config_args = _config_file(ssh_config_path)[1]
        master_argv(ssh, uri, self.target, self.config_args, "/ctl", "/scratch", 1.0)  # refuses bad values now
        self.description = f"openssh {self.target.user}@{self.target.address}:{self.target.port}"
        self._client = None
        self._release = None
        self._idle = []
        self._busy = 0
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self.pending_key = None  # ssh checks keys itself: nothing is ever offered for trust

    def _open_client(self) -> _Master:  # type: ignore[override]
        return _Master(self, sshmod.CONNECT_TIMEOUT)

    @staticmethod
    def _alive(client: object) -> bool:
        return isinstance(client, _Master) and client.alive()

    def _new_session(self, client: object) -> sshmod._ShellSession:
        assert isinstance(client, _Master)
        return _PipeSession(client)

    def trust_key(self, pending: object) -> None:
        raise ConnectionFailed(f"{self.uri.raw}: the OpenSSH client takes host keys from known_hosts only")

    def _master(self) -> _Master:
        with self._lock:
            master = self._client
        if not isinstance(master, _Master) or not master.alive():
            why = f": {master.reason()}" if isinstance(master, _Master) else ""
            raise ConnectionFailed(f"{self.uri.raw}: SSH connection lost{why}")
        return master

    def stream(self, argv: Sequence[str]) -> LineStream:
        master = self._master()
        command = shlex.join(["env", "LC_ALL=C.UTF-8", *line_buffered(argv)])
        try:
            proc = subprocess.Popen(master.client_argv(command), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True, errors="replace", start_new_session=True)
        except OSError as exc:
            raise ConnectionFailed(f"{self.uri.raw}: cannot run {self.ssh}: {exc.strerror}") from None
        return _ProcessStream(proc, self.target.host)

    def interactive(self, argv: Sequence[str], stdin_fd: int | None = None, stdout_fd: int | None = None) -> int:
        """Run argv on the host in a pty (ssh -t over the master), on this terminal until it exits."""
        import sys

        master = self._master()
        stdin_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
        stdout_fd = sys.stdout.fileno() if stdout_fd is None else stdout_fd
        try:
            return subprocess.call(master.client_argv(shlex.join(argv), tty=True), stdin=stdin_fd, stdout=stdout_fd)
        except OSError as exc:
            raise ConnectionFailed(f"{self.uri.raw}: cannot run {self.ssh}: {exc.strerror}") from None
