"""The SSH transport: one persistent paramiko connection per host.

Opening an exec channel costs ~130 ms on loopback here, more than the virsh
call itself, so commands do not get a channel each: they run in long-lived
remote `/bin/sh` sessions, framed by an unguessable per-session marker that
carries the exit status. A small pool of such sessions lets an action run
while a poll is in flight. Host keys are checked strictly against
known_hosts; an unknown key raises UnknownHostKey carrying the key, so the UI
can show its fingerprint and save it only if the operator accepts.

Beside this module: the host keys (sshhostkeys), where a URI connects (sshtarget),
the way there through jump hosts or a ProxyCommand (sshroute, sshbastions, sshproxy),
opening the connection (sshconnect), the agent's keys and certificates offered (sshauth),
commands on channels of their own (sshchannel) and the serial console (sshterminal).

paramiko is imported here and in those modules only, which only this module imports,
and this module only when an SSH URI is used: it costs ~0.1 s of start-up.
"""

from __future__ import annotations

import logging
import os
import shlex
import socket
import threading
import time
from collections.abc import Sequence

import paramiko

from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.sshbastions import Release, open_routed
from virttui.drivers.sshchannel import ChannelStream, answered_within, peer_name
from virttui.drivers.sshhostkeys import UnknownHostKey, append_known_host, fingerprint
from virttui.drivers.sshroute import plan_route
from virttui.drivers.sshtarget import resolve_target
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
    over_cap,
)
from virttui.drivers.uri import LibvirtURI

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 10.0
MAX_SESSIONS = 3


class _ShellSession:
    """One remote /bin/sh on its own channel, running one framed command at a time."""

    name = "SSH host"  # the host, as errors name it

    def __init__(self, client: paramiko.SSHClient) -> None:
        transport = client.get_transport()
        if transport is None or not transport.is_active():
            raise ConnectionFailed("SSH connection is closed")
        self.client = client  # the connection this shell lives on: never pooled with a newer one
        self.name = peer_name(transport)
        self.marker = "__virttui_" + os.urandom(16).hex()
        self.channel = transport.open_session(timeout=CONNECT_TIMEOUT)
        answered_within(self.channel, self.channel.exec_command, "exec /bin/sh", timeout=CONNECT_TIMEOUT)
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
        self.route = plan_route(uri.raw, self.target, ssh_config_path)  # a mandated bastion is never bypassed
        via = (f" via {' -> '.join(hop.name for hop in self.route.hops)}" if self.route.hops
               else " via its ProxyCommand" if self.route.proxy_command else "")
        self.description = f"ssh {self.target.user}@{self.target.address}:{self.target.port}{via}"
        self._client: paramiko.SSHClient | None = None
        self._release: Release | None = None  # lets the jump hosts of the connection go
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
            release, self._release = self._release, None
            try:
                self._drop_locked()
                self._client = self._open_client()
            finally:  # let the old jump hosts go only now: one still up serves the new connection
                if release is not None:
                    release()

    @staticmethod
    def _alive(client: paramiko.SSHClient) -> bool:
        transport = client.get_transport()
        return transport is not None and transport.is_active()

    def _open_client(self) -> paramiko.SSHClient:
        """A connected client (see sshconnect.open_client), along its route (sshbastions); an unknown
        host key, the host's or a jump host's, is kept as pending_key."""
        try:
            client, self._release = open_routed(self.uri.raw, self.target.host, self.target, self.route,
                                                CONNECT_TIMEOUT)
        except UnknownHostKey as exc:
            self.pending_key = exc
            raise
        self.pending_key = None
        return client

    def trust_key(self, pending: UnknownHostKey) -> None:
        """The operator accepted this key: append it to known_hosts (never logged beyond its fingerprint).

        `pending` is the key the operator was shown, not whatever the latest connect saw: retries
        go on while the dialog is open, and a man in the middle could offer another key meanwhile.
        """
        append_known_host(pending)
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
        if self._release is not None:
            self._release()
            self._release = None
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
            return self._new_session(client)
        except (OSError, EOFError, paramiko.SSHException, ConnectionFailed) as exc:
            with self._lock:
                self._busy -= 1
                self._freed.notify()
            raise ConnectionFailed(f"{self.uri.raw}: cannot open an SSH session: {exc}") from None

    def _new_session(self, client: paramiko.SSHClient) -> _ShellSession:
        """A fresh shell session on the connection (the OpenSSH transport's run over its master)."""
        return _ShellSession(client)

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
        import sys

        from virttui.drivers.sshterminal import relay_terminal

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
            answered_within(channel, lambda: channel.get_pty(term=os.environ.get("TERM", "xterm"), width=columns,
                                                             height=rows), timeout=CONNECT_TIMEOUT)
            answered_within(channel, channel.exec_command, shlex.join(argv), timeout=CONNECT_TIMEOUT)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise ConnectionFailed(f"{self.uri.raw}: cannot open a terminal on the host: {exc}") from None
        return relay_terminal(channel, stdin_fd, stdout_fd, self.uri.raw)

    def stream(self, argv: Sequence[str]) -> LineStream:
        with self._lock:
            client = self._client
        if client is None or not self._alive(client):
            raise ConnectionFailed(f"{self.uri.raw}: SSH connection lost")
        try:
            transport = client.get_transport()
            assert transport is not None
            channel = transport.open_session(timeout=CONNECT_TIMEOUT)
            answered_within(channel, channel.exec_command, shlex.join(["env", "LC_ALL=C.UTF-8", *line_buffered(argv)]),
                            timeout=CONNECT_TIMEOUT)
        except (OSError, EOFError, paramiko.SSHException) as exc:
            raise ConnectionFailed(f"{self.uri.raw}: cannot open an SSH channel: {exc}") from None
        return ChannelStream(channel)
