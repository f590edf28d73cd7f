"""The SSH transport: one persistent paramiko connection per host.

Opening an exec channel costs ~130 ms on loopback here, more than the virsh
call itself, so commands do not get a channel each: they run in long-lived
remote `/bin/sh` sessions, framed by an unguessable per-session marker that
carries the exit status. A small pool of such sessions lets an action run
while a poll is in flight. Host keys are checked strictly against
known_hosts; an unknown key raises UnknownHostKey carrying the key, so the UI
can show its fingerprint and save it only if the operator accepts.

paramiko is imported here only, and this module only when an SSH URI is used:
it costs ~0.1 s of start-up.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import secrets
import shlex
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import paramiko

from virttui.drivers.errors import ConnectionFailed, InvalidURI
from virttui.drivers.knownhosts import lists_key, load_known_hosts
from virttui.drivers.transport import (
    COMMAND_TIMEOUT,
    MAX_COMMAND_OUTPUT,
    MAX_LINE,
    READ_CHUNK,
    CommandResult,
    LineStream,
    OverCap,
    Transport,
    line_buffered,
    mib,
    over_cap,
)
from virttui.drivers.uri import LibvirtURI

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
KEEPALIVE_SECONDS = 15
MAX_SESSIONS = 3


class UnknownHostKey(ConnectionFailed):
    """The host presented a key known_hosts does not have; nothing was sent to it."""

    def __init__(self, host: str, key: paramiko.PKey, known_hosts: str) -> None:
        self.host = host
        self.key = key
        self.known_hosts = known_hosts
        self.key_type = key.get_name()
        self.fingerprint = fingerprint(key)
        super().__init__(f"{host}: unknown SSH host key {key.get_name()} {fingerprint(key)}; "
                         f"accept it in the console or add it to {known_hosts}")


class HostKeyChanged(ConnectionFailed):
    """The host's key differs from the one in known_hosts: possibly an attack, always refused."""


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH's SHA256 fingerprint, as `ssh-keygen -l` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def known_host_name(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts."""
    return host if port == 22 else f"[{host}]:{port}"


class _Refuse(paramiko.MissingHostKeyPolicy):
    """Strict checking: remember the unknown key and refuse it (a revoked one is never offered for trust)."""

    def __init__(self, revoked: frozenset[str] = frozenset()) -> None:
        self.rejected: paramiko.PKey | None = None
        self.revoked = revoked
        self.revoked_seen = False

    def missing_host_key(self, client, hostname, key):  # noqa: ANN001, ANN201 - paramiko's signature
        if key.get_base64() in self.revoked:
            self.revoked_seen = True
        else:
            self.rejected = key
        raise paramiko.SSHException(f"unknown host key for {hostname}")


class _AcceptUnverified(_Refuse):
    """no_verify=1, as libvirt means it: a host with no key in known_hosts is accepted (not saved);
    a known host's key is still checked (paramiko asks a policy only about hosts it has no key for
    at all: a changed key, or one of a type not on file, is refused as CHANGED). A revoked key never
    passes."""

    def missing_host_key(self, client, hostname, key):  # noqa: ANN001, ANN201
        if key.get_base64() in self.revoked:
            super().missing_host_key(client, hostname, key)
        log.warning("accepting the unverified host key of %s (no_verify=1)", hostname)


# A network path that silently drops packets (a VPN or NAT entry gone, a laptop that changed
# networks) never resets the connection: paramiko's keepalives pile up unacknowledged and TCP
# retries them for ~15 minutes, every command timing out meanwhile. The kernel gives up on such a
# peer after DEAD_PEER_SECONDS instead; the transport then ends, and the next poll reconnects.
DEAD_PEER_SECONDS = 45


def _detect_dead_peers(sock: object) -> None:
    """TCP keepalive probes on an idle connection and a bound on unacknowledged data (Linux)."""
    if not isinstance(sock, socket.socket):
        return  # a ProxyCommand's pipe: its own process deals with the network
    options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
    for name, value in (("TCP_KEEPIDLE", KEEPALIVE_SECONDS), ("TCP_KEEPINTVL", 5), ("TCP_KEEPCNT", 4),
                        ("TCP_USER_TIMEOUT", DEAD_PEER_SECONDS * 1000)):
        if hasattr(socket, name):
            options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
    for level, option, value in options:
        try:
            sock.setsockopt(level, option, value)
        except OSError:  # not TCP (a unix socket), or an option this kernel lacks
            pass


@dataclass(frozen=True)
class SSHTarget:
    """Where and as whom to connect, after the URI and ~/.ssh/config had their say."""

    host: str  # as written in the URI (known_hosts names it so)
    address: str  # HostName from ssh config, else host
    port: int
    user: str
    key_files: tuple[str, ...]
    known_hosts: str
    verify: bool


def resolve_target(uri: LibvirtURI, ssh_config_path: str | None = None) -> SSHTarget:
    """Merge the URI with ~/.ssh/config: the URI wins where it says something."""
    if not uri.host:
        raise InvalidURI(f"{uri.raw}: an ssh URI needs a host")
    config_path = ssh_config_path or os.path.expanduser("~/.ssh/config")
    entry: dict = {}
    if os.path.exists(config_path):
        try:
            entry = paramiko.SSHConfig.from_path(config_path).lookup(uri.host)
        except (OSError, paramiko.SSHException, ValueError) as exc:
            log.warning("ignoring %s: %s", config_path, exc)
    port = uri.port or _int(entry.get("port"), 22)
    if not 0 < port < 65536:  # else 70000 connects to 4464 and a huge one overflows in socket code
        raise InvalidURI(f"{config_path}: Port {entry.get('port')} for {uri.host} is not a port number")
    user = uri.user or entry.get("user") or _local_user()
    keys: list[str] = []
    if uri.param("keyfile"):
        keys.append(os.path.expanduser(uri.param("keyfile")))
    keys.extend(os.path.expanduser(path) for path in entry.get("identityfile", []) if os.path.exists(
        os.path.expanduser(path)))
    known = os.path.expanduser(uri.param("known_hosts") or "~/.ssh/known_hosts")
    verify = uri.param("no_verify", "0") not in ("1", "yes", "true")
    return SSHTarget(uri.host, entry.get("hostname", uri.host), port, user, tuple(keys), known, verify)


def _int(value: object, default: int) -> int:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return default


def _local_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root"


def _answered_within(channel: paramiko.Channel, request, *args: object) -> None:  # noqa: ANN001
    """Send a channel request (exec_command, get_pty) and wait for the host's answer, at most CONNECT_TIMEOUT.

    paramiko waits for the answer with no timeout: a host that accepts the channel and never answers
    the request would hang the poll forever, the host shown as connected. A timer closes the channel,
    which wakes paramiko's wait."""
    fired = threading.Event()
    timeout = CONNECT_TIMEOUT

    def give_up() -> None:
        fired.set()
        channel.close()

    timer = threading.Timer(timeout, give_up)
    timer.daemon = True
    timer.start()
    try:
        request(*args)
    except (OSError, EOFError, paramiko.SSHException):
        if fired.is_set():
            raise paramiko.SSHException(f"the host did not answer within {timeout:.0f} s") from None
        raise
    finally:
        timer.cancel()


def _peer_name(transport: paramiko.Transport | None) -> str:
    """The host a connection reaches, as errors about what it sent name it."""
    try:
        return str(transport.getpeername()[0])  # type: ignore[union-attr]
    except (AttributeError, OSError, IndexError, TypeError):
        return "SSH host"


class _ShellSession:
    """One remote /bin/sh on its own channel, running one framed command at a time."""

    name = "SSH host"  # the host, as errors name it

    def __init__(self, client: paramiko.SSHClient) -> None:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectionFailed("SSH connection is closed")
        self.client = client  # the connection this shell lives on: never pooled with a newer one
        self.name = _peer_name(transport)
        self.marker = "__virttui_" + secrets.token_hex(16)
        self.channel = transport.open_session(timeout=CONNECT_TIMEOUT)
        _answered_within(self.channel, self.channel.exec_command, "exec /bin/sh")
        self._out = bytearray()  # stdout read past what was returned; consumed from its front
        self._err = b""
        self._deadline: float | None = None

    def run(self, command: str, timeout: float) -> CommandResult:
        """The whole command within `timeout`: a host that sends a byte now and then can't hold it."""
        self.start(command, timeout)
        self._deadline = time.monotonic() + timeout
        head = f"\n{self.marker} ".encode()
        out, at = self._read_until(self._out, head, self.channel.recv)
        out, end = self._read_until(out, b"\n", self.channel.recv, start=at + len(head))
        before, code, self._out = out[:at], out[at + len(head):end], bytearray(out[end + 1:])
        err = self._drain_stderr()
        try:
            returncode = int(code)
        except ValueError:
            raise ConnectionFailed("SSH session answered out of frame") from None
        return CommandResult(returncode, before.decode("utf-8", "replace"), err.decode("utf-8", "replace"))

    def start(self, command: str, timeout: float | None) -> None:
        """Send a framed command: its output, then a newline, the marker and its exit status."""
        script = (f"{command} </dev/null; printf '\\n%s %d\\n' {self.marker} $?; "
                  f"printf '\\n%s\\n' {self.marker} >&2\n")
        self._deadline = None  # a stream's timeout is per line (next_line); run() sets a deadline
        self.channel.settimeout(timeout)
        self.channel.sendall(script.encode("utf-8", "surrogateescape"))  # a name read as bytes goes back as them

    def next_line(self) -> bytes | int:
        """The started command's next stdout line, or its exit status once its output ended.

        Linear in the output: the buffer is consumed from its front (O(1) for a bytearray) and no
        byte is searched twice; a line over MAX_LINE is a ConnectionFailed."""
        head = f"\n{self.marker} ".encode()
        if not isinstance(self._out, bytearray):
            self._out = bytearray(self._out)
        buffer = self._out
        scan = 0  # buffer[:scan] holds no newline
        while True:
            newline = buffer.find(b"\n", scan)
            if newline < 0:
                scan = len(buffer)
            elif buffer.startswith(head, newline):  # the framing starts with a newline: this one's
                return self._take(newline) if newline > 0 else self._status(len(head))
            elif len(buffer) - newline >= len(head) or not head.startswith(buffer[newline:]):
                return self._take(newline + 1)  # a whole line, and its newline is not the framing's
            else:
                scan = newline  # maybe the framing's start: more is needed to tell
            if (scan if newline < 0 else newline) > MAX_LINE:
                raise over_cap(self.name, MAX_LINE, "an output line")
            buffer += self._recv(self.channel.recv)

    def _take(self, size: int) -> bytes:
        """The first size bytes of the output read ahead: one line."""
        if size > MAX_LINE + 1:
            raise over_cap(self.name, MAX_LINE, "an output line")
        line = bytes(self._out[:size])
        del self._out[:size]
        return line

    def _status(self, framing: int) -> int:
        """The exit status after the framing (its first `framing` bytes) at the front of the output read ahead."""
        buffer = self._out
        start = framing
        while (end := buffer.find(b"\n", start)) < 0:
            if len(buffer) > MAX_LINE:
                raise over_cap(self.name, MAX_LINE, "an output line")
            start = len(buffer)
            buffer += self._recv(self.channel.recv)
        code = bytes(buffer[framing:end])
        del buffer[:end + 1]
        self._drain_stderr()
        try:
            return int(code)
        except ValueError:
            raise ConnectionFailed("SSH session answered out of frame") from None

    def _drain_stderr(self) -> bytes:
        tail = f"\n{self.marker}\n".encode()
        data, at = self._read_until(self._err, tail, self.channel.recv_stderr)
        self._err = data[at + len(tail):]
        return data[:at]

    def _read_until(self, data: bytes | bytearray, marker: bytes, read, start: int = 0) -> tuple[bytes, int]:  # noqa: ANN001
        """data and what the host sends after it, until marker appears at or after start; returns
        (all of it, where the marker is). Linear in the output: a bytearray grows in place and only
        its new tail is searched (bytes += and a search from the start made a 32 MiB answer cost
        12 s of CPU, holding the GIL the console needs)."""
        buffer = bytearray(data)
        while (found := buffer.find(marker, start)) < 0:
            if len(buffer) > MAX_COMMAND_OUTPUT:
                raise over_cap(self.name)
            start = max(start, len(buffer) - len(marker) + 1)
            buffer += self._recv(read)
        return bytes(buffer), found

    def _recv(self, read) -> bytes:  # noqa: ANN001 - channel.recv or recv_stderr
        if self._deadline is not None:
            left = self._deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out")
            self.channel.settimeout(left)
        data = read(READ_CHUNK)
        if not data:
            raise ConnectionFailed("SSH session closed by the host")
        return data

    @property
    def usable(self) -> bool:
        """Its channel is open and its shell has not exited (sshd killed it, or the host went down)."""
        return not self.channel.closed and not self.channel.exit_status_ready()

    def close(self) -> None:
        try:
            self.channel.close()
        except Exception:  # noqa: BLE001 - a dead channel closes with any error
            pass


class _ChannelStream(LineStream):
    """A long-running command's stdout on its own channel, each line at most MAX_LINE bytes.

    Read here rather than with paramiko's makefile readline, which has no bound on a line and
    rescans it whole at every packet."""

    def __init__(self, channel: paramiko.Channel) -> None:
        self._channel = channel
        self._buffer = bytearray()  # read past the lines returned; consumed from its front
        self._ended = False

    def readline(self) -> str:
        buffer = self._buffer
        scan = 0  # buffer[:scan] holds no newline
        while (newline := buffer.find(b"\n", scan)) < 0:
            if len(buffer) > MAX_LINE:
                return self._over_cap()
            if self._ended:  # the last line, without a newline of its own; then ""
                line = bytes(buffer)
                buffer.clear()
                return line.decode("utf-8", "replace")
            scan = len(buffer)
            buffer += self._recv()
        if newline > MAX_LINE:
            return self._over_cap()
        line = bytes(buffer[:newline + 1])
        del buffer[:newline + 1]
        return line.decode("utf-8", "replace")  # bytes: a line that is not UTF-8 is replaced, not fatal

    def _recv(self) -> bytes:
        try:
            data = self._channel.recv(READ_CHUNK)
        except (OSError, EOFError, paramiko.SSHException, socket.timeout):
            data = b""
        if not data:
            self._ended = True
        return data

    def _over_cap(self) -> str:
        """A line past MAX_LINE: the stream ends here (its reader reopens it), nothing more is buffered."""
        log.error("%s: a streamed line over %s; the stream is ended",
                  _peer_name(self._channel.get_transport()), mib(MAX_LINE))
        self._ended = True
        self._buffer.clear()
        self.close()
        return ""

    def close(self) -> None:
        try:
            self._channel.close()
        except Exception:  # noqa: BLE001
            pass


class _SessionLines(LineStream):
    """A finite command's output, line by line, from a pooled shell session (no channel to open)."""

    def __init__(self, transport: SSHTransport, session: _ShellSession) -> None:
        self._transport = transport
        self._session: _ShellSession | None = session
        self._status: int | None = None

    def readline(self) -> str:
        session = self._session
        if session is None:
            return ""
        try:
            item = session.next_line()
        except (OSError, EOFError, paramiko.SSHException, ConnectionFailed) as exc:
            if isinstance(exc, OverCap):
                log.error("command output stream ended: %s", exc)
            self._give_back(ok=False)  # timed out or broken: the session's framing is lost
            return ""
        if isinstance(item, int):
            self._status = item
            self._give_back(ok=True)
            return ""
        return item.decode("utf-8", "replace")

    def exit_status(self) -> int | None:
        return self._status

    def close(self) -> None:
        self._give_back(ok=False)  # still running: closing the channel ends it

    def _give_back(self, *, ok: bool) -> None:
        session, self._session = self._session, None
        if session is not None:
            self._transport._checkin(session, ok)


class SSHTransport(Transport):
    """Commands on a remote host over one persistent, keep-alive SSH connection."""

    def __init__(self, uri: LibvirtURI, *, ssh_config_path: str | None = None) -> None:
        self.uri = uri
        self.target = resolve_target(uri, ssh_config_path)
        self.description = f"ssh {self.target.user}@{self.target.address}:{self.target.port}"
        self._client: paramiko.SSHClient | None = None
        self._idle: list[_ShellSession] = []
        self._busy = 0
        self._lock = threading.Lock()
        self._freed = threading.Condition(self._lock)
        self.pending_key: UnknownHostKey | None = None

    # -- connection ------------------------------------------------------------
    def connect(self) -> None:
        with self._lock:
            if self._client is not None and self._alive(self._client):
                return
            self._drop_locked()
            self._client = self._open_client()

    def _listed(self, name: str, key: paramiko.PKey) -> bool:
        try:
            return lists_key(self.target.known_hosts, name, key)
        except OSError:
            return False

    @staticmethod
    def _alive(client: paramiko.SSHClient) -> bool:
        transport = client.get_transport()
        return transport is not None and transport.is_active()

    def _open_client(self, listed_key: paramiko.PKey | None = None) -> paramiko.SSHClient:
        """A connected client. listed_key: a key known_hosts lists for the host beside another of its
        type, which paramiko alone would call changed: the one key to expect on a second try."""
        target = self.target
        name = known_host_name(target.address, target.port)
        client = paramiko.SSHClient()
        revoked: frozenset[str] = frozenset()
        if os.path.exists(target.known_hosts):  # with no_verify too: a known host's key is still checked
            try:
                revoked = load_known_hosts(target.known_hosts, client.get_host_keys())
            except OSError as exc:
                raise ConnectionFailed(f"{target.known_hosts}: cannot read known hosts: "
                                       f"{exc.strerror or exc}") from None
        if listed_key is not None:  # in place of the one of its type paramiko kept: the rest still counts
            known = client.get_host_keys().lookup(name)
            if known is None:
                client.get_host_keys().add(name, listed_key.get_name(), listed_key)
            else:
                known[listed_key.get_name()] = listed_key
        policy: paramiko.MissingHostKeyPolicy = _Refuse(revoked) if target.verify else _AcceptUnverified(revoked)
        client.set_missing_host_key_policy(policy)
        try:
            client.connect(
                target.address, port=target.port, username=target.user,
                # paramiko takes a list of files too (its docs); types-paramiko says str only
                key_filename=list(target.key_files) or None,  # type: ignore[arg-type]
                timeout=CONNECT_TIMEOUT,
                banner_timeout=CONNECT_TIMEOUT, auth_timeout=CONNECT_TIMEOUT, channel_timeout=CONNECT_TIMEOUT,
                allow_agent=True, look_for_keys=not target.key_files,
            )
        except paramiko.BadHostKeyException as exc:
            client.close()
            if listed_key is None and self._listed(name, exc.key):
                return self._open_client(listed_key=exc.key)
            raise HostKeyChanged(
                f"{self.uri.raw}: the SSH host key of {name} has CHANGED "
                f"(now {exc.key.get_name()} {fingerprint(exc.key)}); "
                f"refusing to connect. If the change is expected, remove the old key from {target.known_hosts}"
            ) from None
        except paramiko.AuthenticationException:
            client.close()
            raise ConnectionFailed(f"{self.uri.raw}: SSH authentication failed for user {target.user}") from None
        except paramiko.SSHException as exc:
            client.close()
            if isinstance(policy, _Refuse) and policy.revoked_seen:
                raise HostKeyChanged(self._revoked_message(name)) from None
            if isinstance(policy, _Refuse) and policy.rejected is not None:
                self.pending_key = UnknownHostKey(name, policy.rejected, target.known_hosts)
                raise self.pending_key from None
            raise ConnectionFailed(f"{self.uri.raw}: SSH error: {exc}") from None
        except (OSError, EOFError, ValueError) as exc:  # ValueError: getaddrinfo's UnicodeError on a bad name
            client.close()
            reason = "timed out" if isinstance(exc, (socket.timeout, TimeoutError)) else (
                getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
            raise ConnectionFailed(f"{self.uri.raw}: cannot connect to {name}: {reason}") from None
        self.pending_key = None
        transport = client.get_transport()
        if transport is not None:
            transport.set_keepalive(KEEPALIVE_SECONDS)
            _detect_dead_peers(transport.sock)
        return client

    def _revoked_message(self, name: str) -> str:
        return (f"{self.uri.raw}: the SSH host key of {name} is marked @revoked in "
                f"{self.target.known_hosts}; refusing to connect")

    def trust_key(self, pending: UnknownHostKey) -> None:
        """The operator accepted this key: append it to known_hosts (never logged beyond its fingerprint).

        `pending` is the key the operator was shown, not whatever the latest connect saw: retries
        go on while the dialog is open, and a man in the middle could offer another key meanwhile.
        """
        path = pending.known_hosts
        os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", mode=0o700, exist_ok=True)
        line = f"{pending.host} {pending.key.get_name()} {pending.key.get_base64()}\n"
        with open(path, "a+b") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # a file edited by hand may end without one: never glue to its last line
                    line = "\n" + line
            handle.write(line.encode("utf-8"))
        log.info("trusted host key %s %s for %s", pending.key.get_name(), fingerprint(pending.key), pending.host)
        if self.pending_key is not None and self.pending_key.fingerprint == pending.fingerprint:
            self.pending_key = None

    def close(self) -> None:
        with self._lock:
            self._drop_locked()

    def _drop_locked(self) -> None:
        for session in self._idle:
            session.close()
        self._idle.clear()
        if self._client is not None:
            self._client.close()
            self._client = None
        self._freed.notify_all()

    # -- commands --------------------------------------------------------------
    def run(self, argv: Sequence[str], *, timeout: float = COMMAND_TIMEOUT) -> CommandResult:
        session = self._checkout(timeout)
        ok = False
        try:
            result = session.run("LC_ALL=C.UTF-8 " + shlex.join(argv), timeout)
            ok = True
            return result
        except (OSError, EOFError, paramiko.SSHException, UnicodeError) as exc:
            reason = f"timed out after {timeout:g} s" if isinstance(exc, (socket.timeout, TimeoutError)) else str(exc)
            raise ConnectionFailed(f"{self.uri.raw}: command failed over SSH: {reason}") from None
        finally:
            self._checkin(session, ok)

    def run_lines(self, argv: Sequence[str], *, line_timeout: float) -> LineStream:
        session = self._checkout(line_timeout)
        try:
            session.start("LC_ALL=C.UTF-8 " + shlex.join(argv), line_timeout)
        except (OSError, EOFError, paramiko.SSHException, UnicodeError) as exc:
            self._checkin(session, False)
            raise ConnectionFailed(f"{self.uri.raw}: command failed over SSH: {exc}") from None
        except BaseException:
            self._checkin(session, False)  # whatever it was, the session is never lost to the pool
            raise
        return _SessionLines(self, session)

    def _checkout(self, timeout: float) -> _ShellSession:
        with self._lock:
            while not self._idle and self._busy >= MAX_SESSIONS:
                if not self._freed.wait(timeout):
                    raise ConnectionFailed(f"{self.uri.raw}: every SSH session stayed busy for {timeout:g} s")
            if self._client is None or not self._alive(self._client):
                raise ConnectionFailed(f"{self.uri.raw}: SSH connection lost")
            self._busy += 1
            while self._idle:
                session = self._idle.pop()
                if session.usable:
                    return session
                session.close()  # its shell ended while idle: a fresh one instead of a spurious failure
            client = self._client
        try:
            return _ShellSession(client)
        except (OSError, EOFError, paramiko.SSHException, ConnectionFailed) as exc:
            with self._lock:
                self._busy -= 1
                self._freed.notify()
            raise ConnectionFailed(f"{self.uri.raw}: cannot open an SSH session: {exc}") from None

    def _checkin(self, session: _ShellSession, ok: bool) -> None:
        with self._lock:
            self._busy -= 1
            if ok and session.client is self._client and session.usable:
                self._idle.append(session)
            else:  # its framing is unknown after a failure, or its connection was replaced meanwhile
                session.close()
            self._freed.notify()

    def interactive(self, argv: Sequence[str], stdin_fd: int | None = None, stdout_fd: int | None = None) -> int:
        """Run argv on the host in a pty, relaying this terminal (raw) to it until it exits."""
        import select
        import sys
        import termios
        import tty

        stdin_fd = sys.stdin.fileno() if stdin_fd is None else stdin_fd
        stdout_fd = sys.stdout.fileno() if stdout_fd is None else stdout_fd
        with self._lock:
            client = self._client
        if client is None or not self._alive(client):
            raise ConnectionFailed(f"{self.uri.raw}: SSH connection lost")
        try:
            columns, rows = os.get_terminal_size(stdout_fd)
        except OSError:
            columns, rows = 80, 24
        transport = client.get_transport()
        assert transport is not None
        try:
            channel = transport.open_session(timeout=CONNECT_TIMEOUT)
            _answered_within(channel, lambda: channel.get_pty(term=os.environ.get("TERM", "xterm"), width=columns,
                                                              height=rows))
            _answered_within(channel, channel.exec_command, shlex.join(argv))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise ConnectionFailed(f"{self.uri.raw}: cannot open a terminal on the host: {exc}") from None
        saved = termios.tcgetattr(stdin_fd) if os.isatty(stdin_fd) else None
        try:
            if saved is not None:
                tty.setraw(stdin_fd)
            channel.settimeout(0.0)
            while not channel.exit_status_ready() or channel.recv_ready():
                ready, _, _ = select.select([channel, stdin_fd], [], [], 0.5)
                if channel in ready:
                    try:
                        data = channel.recv(65536)
                    except socket.timeout:  # select woke for stderr or a window change: nothing to read
                        continue
                    if not data:
                        break
                    os.write(stdout_fd, data)
                if stdin_fd in ready:
                    data = os.read(stdin_fd, 4096)
                    if not data:
                        break
                    channel.settimeout(COMMAND_TIMEOUT)  # a big paste waits for the window, not 0 s
                    try:
                        channel.sendall(data)
                    except socket.timeout:
                        raise ConnectionFailed(f"{self.uri.raw}: the console stopped taking input") from None
                    channel.settimeout(0.0)
            return channel.recv_exit_status() if channel.exit_status_ready() else 0
        finally:
            if saved is not None:
                termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
            channel.close()

    def stream(self, argv: Sequence[str]) -> LineStream:
        with self._lock:
            client = self._client
        if client is None or not self._alive(client):
            raise ConnectionFailed(f"{self.uri.raw}: SSH connection lost")
        try:
            transport = client.get_transport()
            assert transport is not None
            channel = transport.open_session(timeout=CONNECT_TIMEOUT)
            _answered_within(channel, channel.exec_command, shlex.join(["env", "LC_ALL=C.UTF-8", *line_buffered(argv)]))
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise ConnectionFailed(f"{self.uri.raw}: cannot open an SSH channel: {exc}") from None
        return _ChannelStream(channel)
