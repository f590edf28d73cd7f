"""A ProxyCommand run as OpenSSH runs one, as the socket of a paramiko connection.

ssh runs `exec COMMAND` with the user's shell ($SHELL, else /bin/sh), the tokens already expanded
(sshtokens.expand_proxy checks what they put in). paramiko's own ProxyCommand splits the command
itself, runs it without a shell in virttui's process group, never reads its stderr (a chatty
command blocks once the pipe is full), spins on a command that exited, and kills only its pid.
Here the command gets a session of its own (closing kills its whole process group), its stderr is
drained into a bounded buffer for the error message, an exit reads as the end of the connection,
and `failure()` says in one line what went wrong when no SSH server answered through it.

Imports paramiko: only virttui.drivers.ssh's modules import this one.
"""

from __future__ import annotations

import os
import select
import socket
import subprocess
import threading

import paramiko

from virttui.drivers.processgroup import end_process_group

MAX_STDERR = 4096  # the first bytes of its stderr: enough for the reason it failed
_HEAD = 256  # the first bytes of its stdout, to tell an SSH server's greeting from anything else


def _shell() -> str:
    """The shell ssh would run it with: $SHELL if that is an executable path, else /bin/sh."""
    shell = os.environ.get("SHELL", "")
    return shell if os.path.isabs(shell) and os.access(shell, os.X_OK) else "/bin/sh"


class ShellProxyCommand(paramiko.ProxyCommand):
    """The command's stdin and stdout as a socket (what paramiko's Transport needs of one)."""

    def __init__(self, command: str) -> None:  # no super().__init__(): it would start another process
        self.cmd = [_shell(), "-c", f"exec {command}"]
        self.timeout: float | None = None
        self.process = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, bufsize=0, start_new_session=True)
        self._stderr = bytearray()
        self._head = bytearray()
        self._ended = False  # its stdout reached end of file
        self._killed = False  # close() ended it: its exit status is ours, not its reason
        self._drain = threading.Thread(target=self._read_stderr, name="proxycommand-stderr", daemon=True)
        self._drain.start()

    def _read_stderr(self) -> None:
        stream = self.process.stderr
        assert stream is not None
        while chunk := stream.read(4096):
            if len(self._stderr) < MAX_STDERR:
                self._stderr += chunk[:MAX_STDERR - len(self._stderr)]

    def send(self, content: bytes) -> int:  # type: ignore[override]
        """Write to its stdin; an OSError (it exited: EPIPE) ends the connection in paramiko."""
        assert self.process.stdin is not None
        return self.process.stdin.write(content) or 0

    def recv(self, size: int) -> bytes:
        """What it printed, as soon as there is some (socket semantics, unlike paramiko's, which waits
        for `size` bytes); b"" once it closed its stdout; socket.timeout after the timeout."""
        stdout = self.process.stdout
        assert stdout is not None
        if self._ended:
            return b""
        ready, _, _ = select.select([stdout], [], [], self.timeout)
        if not ready:
            raise socket.timeout("timed out")
        data = os.read(stdout.fileno(), size)
        if not data:
            self._ended = True
        elif len(self._head) < _HEAD:
            self._head += data[:_HEAD - len(self._head)]
        return data

    def close(self) -> None:
        """End it and whatever it started (its process group), and reap it."""
        self._settle()
        if self.process.poll() is None:  # it may have exited unseen (paramiko met EPIPE writing its greeting)
            self._killed = True
            end_process_group(self.process, grace=2)
        self._keep_rest()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass
        self._drain.join(timeout=1)  # its stderr closes with the process group

    @property
    def closed(self) -> bool:
        return self.process.returncode is not None

    def settimeout(self, timeout: float | None) -> None:
        self.timeout = timeout

    @property
    def greeted(self) -> bool:
        """An SSH server's greeting came through it (then the server's answer is what counts)."""
        return any(line.startswith(b"SSH-") for line in bytes(self._head).split(b"\n"))

    def _keep_rest(self) -> None:
        """What it printed and nobody read yet (paramiko gives up at the first EPIPE), for failure()."""
        stdout = self.process.stdout
        if stdout is None or stdout.closed or len(self._head) >= _HEAD:
            return
        try:
            if select.select([stdout], [], [], 0)[0]:
                self._head += os.read(stdout.fileno(), _HEAD - len(self._head))
        except (OSError, ValueError):
            pass

    def _settle(self) -> None:
        """Its output ended: it is exiting by itself; its exit status says why, so wait a moment for it."""
        if self._ended and self.process.returncode is None:
            try:
                self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass

    def failure(self, host: str, waited: float) -> str:
        """Why no SSH server answered through it, in one line naming host (after a connect failed)."""
        self._settle()
        status = None if self._killed else self.process.poll()
        if self.process.returncode is not None:
            self._drain.join(timeout=0.5)  # what it said before it exited: read to its end
        said = _first_line(bytes(self._stderr))
        if self._head and not self.greeted:
            what = "printed something other than an SSH server's greeting"
        elif status is not None:
            what = f"exited with status {status}" + (" before an SSH server answered" if not self._head else "")
        else:
            what = f"brought no SSH server's greeting within {waited:g} s"
        return f"the ProxyCommand of {host} {what}" + (f": {said}" if said else "")


def _first_line(err: bytes) -> str:
    """The command's first complaint, printable and short (its stderr may carry a remote's text)."""
    for raw in err.decode("utf-8", "replace").splitlines():
        line = "".join(ch if ch.isprintable() else " " for ch in raw).strip()
        if line:
            return line[:200]
    return ""
