"""The framing of commands in a pooled SSH shell session, fed byte by byte and in odd chunks.

The real sshd path is exercised by the real-stack tests; here a scripted channel delivers
the output split at every awkward place (inside the marker, between a line and its newline).
"""

from __future__ import annotations

import socket
import time

import pytest

from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.ssh import _ShellSession

MARKER = "__virttui_0123456789abcdef"


class ScriptedChannel:
    def __init__(self, out: bytes, err: bytes, chunk: int) -> None:
        self.out = [out[i:i + chunk] for i in range(0, len(out), chunk)]
        self.err = [err[i:i + chunk] for i in range(0, len(err), chunk)]
        self.sent = b""

    def settimeout(self, timeout: float | None) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.sent += data

    def recv(self, n: int) -> bytes:
        return self.out.pop(0) if self.out else b""

    def recv_stderr(self, n: int) -> bytes:
        return self.err.pop(0) if self.err else b""


def session(out: bytes, err: bytes = b"", chunk: int = 1) -> _ShellSession:
    shell = object.__new__(_ShellSession)
    shell.marker = MARKER
    shell.channel = ScriptedChannel(out, err, chunk)
    shell._out = b""
    shell._err = b""
    shell._deadline = None
    return shell


def framed(output: bytes, status: int) -> tuple[bytes, bytes]:
    return output + f"\n{MARKER} {status}\n".encode(), f"\n{MARKER}\n".encode()


def lines_of(shell: _ShellSession) -> tuple[list[bytes], int]:
    shell.start("agent", 5.0)
    lines = []
    while True:
        item = shell.next_line()
        if isinstance(item, int):
            return lines, item
        lines.append(item)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 4096])
@pytest.mark.parametrize("output", [b"", b"one\n", b"one\ntwo\n", b"one\n\ntwo", b"\n", b"\n\n", b"no newline"])
def test_lines_come_out_exactly_as_the_command_wrote_them(chunk, output):
    out, err = framed(output, 3)
    lines, status = lines_of(session(out, err, chunk))
    assert b"".join(lines) == output
    assert status == 3
    assert all(line.endswith(b"\n") for line in lines[:-1])


def test_a_line_that_looks_like_the_start_of_the_marker_is_still_output():
    output = b"\n__virttui_ is not the marker\n"
    out, err = framed(output, 0)
    assert lines_of(session(out, err, 5))[0] == [b"\n", b"__virttui_ is not the marker\n"]


def test_the_next_command_on_the_session_starts_clean():
    out1, err1 = framed(b"first\n", 0)
    out2, err2 = framed(b"second\n", 1)
    shell = session(out1 + out2, b"oops\n" + err1 + err2, 9)
    assert lines_of(shell) == ([b"first\n"], 0)
    result = shell.run("again", 5.0)
    assert (result.stdout, result.returncode, result.stderr) == ("second\n", 1, "")


def test_a_session_closed_mid_command_is_an_error():
    with pytest.raises(ConnectionFailed):
        lines_of(session(b"half a line", b""))


class TricklingChannel(ScriptedChannel):
    """A host that sends a byte every 20 ms and finishes after 3 s."""

    def __init__(self) -> None:
        super().__init__(*framed(b"late", 0), chunk=4096)
        self.until = time.monotonic() + 3.0

    def recv(self, n: int) -> bytes:
        if time.monotonic() < self.until:
            time.sleep(0.02)
            return b"."
        return super().recv(n)


def test_a_command_is_given_up_at_its_deadline_however_often_the_host_sends_a_byte():
    shell = session(b"")
    shell.channel = TricklingChannel()
    with pytest.raises(socket.timeout):
        shell.run("virsh list", 0.3)
    assert time.monotonic() < shell.channel.until  # given up at the deadline, not when the host was done


def test_a_big_answer_and_a_big_stderr_come_out_whole_and_the_marker_is_searched_once_per_byte(monkeypatch):
    """8 MiB in 32 KiB packets: the buffer grows in place and only its new tail is searched (growing
    bytes and searching from the start made a 32 MiB answer cost 12 s of CPU, holding the GIL)."""
    output = b"".join(b"%07d domain line\n" % i for i in range(8 * 1024 * 1024 // 20))
    out, err = framed(output, 3)
    err = b"warning\n" * 100_000 + err
    shell = session(out, err, 32768)
    searched = []
    real_find = bytearray.find

    class CountingBuffer(bytearray):
        def find(self, sub, start=0, *rest):  # noqa: ANN001, ANN201
            searched.append(len(self) - start)
            return real_find(self, sub, start, *rest)

    monkeypatch.setattr("virttui.drivers.ssh.bytearray", CountingBuffer, raising=False)
    result = shell.run("virsh", 30.0)
    assert (result.returncode, result.stdout.encode(), result.stderr) == (3, output, "warning\n" * 100_000)
    assert searched and sum(searched) < 2 * (len(out) + len(err))  # linear, not quadratic
