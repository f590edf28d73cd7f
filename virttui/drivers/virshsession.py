"""A long-lived interactive `virsh` for a local host: commands without a process each.

Measured here: a virsh process costs 10–20 ms of CPU to start and connect, so
spawning one per poll alone is 0.5–1 % of a core at a 2 s refresh, and an
action followed by its poll paid that two or three times before the screen
changed. One interactive virsh per host keeps its libvirt connection open;
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
import secrets
import select
import shutil
import subprocess
import threading
import time

from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.transport import CommandResult

_PROMPT_AT_END = re.compile(r"virsh [#>] $")  # interactive virsh's prompt before the marker line's echo


class VirshSession:
    """One interactive `virsh -q -c URI`, restarted when it dies; thread-safe, one command at a time."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.marker = f"@@virttui-{secrets.token_hex(8)}@@"
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
        """Run one virsh command line; returncode 1 when virsh reported an error."""
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
        while marker not in out:
            left = deadline - time.monotonic()
            if left <= 0:
                raise ConnectionFailed(f"{self.uri}: virsh did not answer within {timeout:g} s")
            ready, _, _ = select.select(watched, [], [], left)
            if err_fd in ready:
                try:
                    chunk: bytes | None = os.read(err_fd, 65536)
                except BlockingIOError:
                    chunk = None
                if chunk == b"":
                    watched.remove(err_fd)
                elif chunk:
                    err += chunk
            if out_fd in ready:
                chunk = os.read(out_fd, 65536)
                if not chunk:
                    said = (err.decode("utf-8", "replace") + self._drain(proc)).split()
                    raise ConnectionFailed(f"{self.uri}: virsh exited: {' '.join(said)[-200:]}")
                out += chunk
        text = out[:out.index(marker)].decode("utf-8", "replace")
        echoed = text.find(line)  # drop the prompt and virsh's echo of the command line ...
        if echoed >= 0:
            text = text[echoed + len(line):]
        echoed = text.rfind(marker_line)  # ... and of the marker's line, with its prompt
        if echoed >= 0:
            text = _PROMPT_AT_END.sub("", text[:echoed])
        stderr = err.decode("utf-8", "replace") + self._drain(proc)
        return CommandResult(1 if "error:" in stderr else 0, text, stderr)

    @staticmethod
    def _drain(proc: subprocess.Popen) -> str:
        assert proc.stderr is not None
        data = bytearray()
        while True:
            try:
                chunk = os.read(proc.stderr.fileno(), 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        return data.decode("utf-8", "replace")

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
