"""A long-lived interactive `virsh` for a local host: commands without a process each.

A virsh process per command would pay its start and libvirt connection on every
poll and action. One interactive virsh per host keeps its connection open;
each command is a line on its stdin, and its output runs up to an `echo` of an
unguessable marker. Interactive virsh echoes `virsh # COMMAND` before the
output and prints `echo` without a newline, so output is unbuffered (stdbuf
-o0) and cut at the marker. Errors go to stderr, which virsh writes before it
reaches the marker, so once the marker is read the errors are in the pipe.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import shutil
import subprocess
import threading
import time

from virttui.drivers.errors import ConnectionFailed, DriverError
from virttui.drivers.transport import MAX_COMMAND_OUTPUT, READ_CHUNK, CommandResult, over_cap

_PROMPT_AT_END = re.compile(r"virsh [#>] $")  # interactive virsh's prompt before the marker line's echo
# Interactive virsh reads its stdin with readline even from a pipe: CR ends a line, DEL and other
# controls edit it, so a name carrying one could smuggle a second command. C1 controls go too.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class UnsafeCommand(DriverError):
    """A command line interactive virsh would not read as written; refused before anything is sent."""


def check_command_line(uri: str, command: str) -> None:
    """Raise UnsafeCommand for a line with a control character, or one that is not encodable text."""
    found = _CONTROL.search(command)
    if found is not None:
        raise UnsafeCommand(f"{uri}: refusing a virsh command line with the control character "
                            f"U+{ord(found.group()):04X} (a name with control characters cannot be used here)")
    try:
        command.encode()
    except UnicodeEncodeError:
        raise UnsafeCommand(f"{uri}: refusing a virsh command line that is not valid text") from None


class VirshSession:
    """One interactive `virsh -q -c URI`, restarted when it dies; thread-safe, one command at a time."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.marker = f"@@virttui-{os.urandom(8).hex()}@@"
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._closed = False  # closed for good: a late command (an action whose host was removed) starts none

    @staticmethod
    def available() -> bool:
        return shutil.which("stdbuf") is not None and shutil.which("virsh") is not None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["LC_ALL"] = "C.UTF-8"
        try:
            proc = subprocess.Popen(["stdbuf", "-o0", "virsh", "-q", "-c", self.uri], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    start_new_session=True)
        except OSError as exc:
            raise ConnectionFailed(f"{self.uri}: cannot run virsh: {exc.strerror}") from None
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            fcntl.fcntl(stream.fileno(), fcntl.F_SETFL, fcntl.fcntl(stream.fileno(), fcntl.F_GETFL) | os.O_NONBLOCK)
        return proc

    def run(self, command: str, timeout: float) -> CommandResult:
        """Run one virsh command line; returncode 1 when virsh reported an error.

        UnsafeCommand for a line with a control character: refused, the session untouched."""
        check_command_line(self.uri, command)
        with self._lock:
            if self._closed:
                raise ConnectionFailed(f"{self.uri}: the connection is closed")
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            try:
                return self._exchange(proc, command, timeout)
            except (OSError, ConnectionFailed) as exc:
                self._kill(proc)
                self._proc = None
                if isinstance(exc, ConnectionFailed):
                    raise
                raise ConnectionFailed(f"{self.uri}: virsh session failed: {exc}") from None

    def _exchange(self, proc: subprocess.Popen, command: str, timeout: float) -> CommandResult:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        # The marker is quoted apart in the command, so virsh's echo of the command line never matches it.
        # It goes on a line of its own: virsh drops a whole line it cannot parse (an unknown option, a
        # name that looks like one), and the marker must still come back, with virsh's error on stderr.
        split = f'"{self.marker[:-2]}"@@'
        line, marker_line = f"{command}\n", f"echo {split}\n"
        proc.stdin.write((line + marker_line).encode())
        proc.stdin.flush()
        out, err = bytearray(), bytearray()
        marker = self.marker.encode()
        deadline = time.monotonic() + timeout
        out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
        watched = [out_fd, err_fd]  # stderr read as it comes: a full stderr pipe (64 KiB) would stall virsh
        start = 0  # only the new tail is searched: the whole answer each time is quadratic
        while (found := out.find(marker, start)) < 0:
            start = max(0, len(out) - len(marker) + 1)
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionFailed(f"{self.uri}: virsh did not answer within {timeout:g} s")
            ready, _, _ = select.select(watched, [], [], left)
            if err_fd in ready:
                try:
                    chunk: bytes | None = os.read(err_fd, READ_CHUNK)
                except BlockingIOError:
                    chunk = None
                if chunk == b"":
                    watched.remove(err_fd)
                elif chunk:
                    err += chunk
                    if len(err) > MAX_COMMAND_OUTPUT:
                        raise over_cap(self.uri)
            if out_fd in ready:
                chunk = os.read(out_fd, READ_CHUNK)
                if not chunk:
                    said = (err + self._drain(proc, 4096)).decode("utf-8", "replace").split()
                    raise ConnectionFailed(f"{self.uri}: virsh exited: {' '.join(said)[-200:]}")
                out += chunk
                if len(out) > MAX_COMMAND_OUTPUT:
                    raise over_cap(self.uri)
        text = out[:found].decode("utf-8", "replace")
        echoed = text.find(line)  # drop the prompt and virsh's echo of the command line ...
        if echoed >= 0:
            text = text[echoed + len(line):]
        echoed = text.rfind(marker_line)  # ... and of the marker's line, with its prompt
        if echoed >= 0:
            text = _PROMPT_AT_END.sub("", text[:echoed])
        rest = self._drain(proc, MAX_COMMAND_OUTPUT - len(err) + 1)
        if len(err) + len(rest) > MAX_COMMAND_OUTPUT:
            raise over_cap(self.uri)
        stderr = (err + rest).decode("utf-8", "replace")
        return CommandResult(1 if "error:" in stderr else 0, text, stderr)

    @staticmethod
    def _drain(proc: subprocess.Popen, limit: int) -> bytes:
        """What stderr holds now, up to about limit bytes."""
        assert proc.stderr is not None
        data = bytearray()
        while len(data) < limit:
            try:
                chunk = os.read(proc.stderr.fileno(), READ_CHUNK)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        return bytes(data)

    @staticmethod
    def _kill(proc: subprocess.Popen) -> None:
        try:
            proc.kill()
            proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass

    def reopen(self) -> None:
        """Allow commands again after close (a reconnect of the same host)."""
        with self._lock:
            self._closed = False

    def close(self) -> None:
        self._closed = True
        proc = self._proc
        if proc is not None:  # killed first, without the lock: a command in flight ends now, not at its timeout
            try:
                proc.kill()
            except OSError:
                pass
        with self._lock:
            if self._proc is not None:
                self._kill(self._proc)
                self._proc = None
