"""What a host sends is read in linear time and within bounds.

A big answer must not cost CPU quadratic in its size (the console's UI thread needs the GIL), and a
host that never stops sending (or sends a line without end) must end in a clear error, not in a
console that buffers until it runs out of memory. Fake channels stand in for paramiko's, a small
Python script for interactive virsh, real local processes for local commands and streams.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Iterable, Iterator

import paramiko
import pytest

from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.events import EventWatcher
from virttui.drivers.ssh import _SessionLines, _ShellSession
from virttui.drivers.sshchannel import ChannelStream as _ChannelStream
from virttui.drivers.transport import (
    MAX_COMMAND_OUTPUT,
    MAX_LINE,
    LineStream,
    LocalTransport,
    Transport,
    _ProcessStream,
)
from virttui.drivers.virshsession import VirshSession

MARKER = "__virttui_0123456789abcdef"
PACKET = 32768  # what an SSH channel hands over at a time
MIB = 1024 * 1024


def domain_lines(size: int) -> bytes:
    """size bytes of lines like a listing of many guests (digits and dashes: the markers' own characters)."""
    line_count = size // 41 + 1  # 41 bytes a line
    text = b"".join(b" %6d    virt-guest-%07d    running\n" % (i, i) for i in range(line_count))
    return text[:size]


def packets(data: bytes, size: int = PACKET) -> Iterator[bytes]:
    view = memoryview(data)
    for at in range(0, len(data), size):
        yield bytes(view[at:at + size])


class FakeChannel:
    """The reading side of a paramiko channel, fed from an iterator of packets; counts what it gave."""

    def __init__(self, out: Iterable[bytes], err: bytes = b"") -> None:
        self.out = iter(out)
        self.err = [err] if err else []
        self.given = 0
        self.closed = False

    def settimeout(self, timeout: float | None) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        pass

    def recv(self, n: int) -> bytes:
        data = b"" if self.closed else next(self.out, b"")
        self.given += len(data)
        return data

    def recv_stderr(self, n: int) -> bytes:
        return self.err.pop(0) if self.err else b""

    def makefile(self, mode: str) -> paramiko.ChannelFile:  # as paramiko's Channel.makefile
        return paramiko.ChannelFile(self, mode)

    def get_transport(self) -> None:
        return None

    def close(self) -> None:
        self.closed = True


def shell_session(channel: FakeChannel) -> _ShellSession:
    shell = object.__new__(_ShellSession)
    shell.marker = MARKER
    shell.channel = channel
    shell._out = b""
    shell._err = b""
    shell._deadline = None
    return shell


def framed(output: Iterable[bytes], status: int = 0) -> tuple[Iterator[bytes], bytes]:
    return itertools.chain(output, [f"\n{MARKER} {status}\n".encode()]), f"\n{MARKER}\n".encode()


# -- the SSH shell session: run() and next_line() ----------------------------------------------------

def test_a_16_mib_answer_costs_linear_cpu_through_next_line():
    """Line by line (400 000 lines): what was read ahead is neither rescanned nor copied at every line."""
    output = domain_lines(16 * MIB)
    out, err = framed(packets(output))
    shell = shell_session(FakeChannel(out, err))
    shell.start("virsh list", 30.0)
    started = time.process_time()
    size, count = 0, 0
    while not isinstance(item := shell.next_line(), int):
        size += len(item)
        count += 1
    took = time.process_time() - started
    assert (size, count, item) == (len(output), output.count(b"\n") + 1, 0)  # the last line without newline
    assert took < 2.0, f"{took:.1f} s of CPU for 16 MiB of lines"


def test_a_long_line_costs_linear_cpu_through_next_line():
    """A line just under the cap, arriving in small packets, is not rescanned at every packet."""
    output = (b"x" * (MAX_LINE - 1) + b"\n") * 16
    out, err = framed(packets(output, 1024))
    shell = shell_session(FakeChannel(out, err))
    shell.start("virsh list", 30.0)
    started = time.process_time()
    lines = []
    while not isinstance(item := shell.next_line(), int):
        lines.append(item)
    took = time.process_time() - started
    assert len(lines) == 16 and b"".join(lines) == output
    assert took < 2.0, f"{took:.1f} s of CPU for 16 lines of 1 MiB"


def test_a_32_mib_answer_costs_linear_cpu_through_run():
    output = domain_lines(32 * MIB)
    out, err = framed(packets(output), 3)
    shell = shell_session(FakeChannel(out, err))
    started = time.process_time()
    result = shell.run("virsh list", 30.0)
    took = time.process_time() - started
    assert (result.returncode, len(result.stdout)) == (3, len(output))
    assert took < 2.0, f"{took:.1f} s of CPU for 32 MiB"


def test_an_answer_over_64_mib_is_an_error_naming_the_cap_and_reading_stops_there():
    chunk = b"y" * 65536
    out, err = framed(itertools.repeat(chunk, 80 * MIB // len(chunk)))
    channel = FakeChannel(out, err)
    with pytest.raises(ConnectionFailed, match="answer over 64 MiB"):
        shell_session(channel).run("virsh list", 30.0)
    assert channel.given <= MAX_COMMAND_OUTPUT + 2 * len(chunk)  # nothing more read, nothing more held


def test_a_line_over_1_mib_through_next_line_is_an_error_and_reading_stops_there():
    out, err = framed(itertools.chain([b"first\n"], itertools.repeat(b"z" * PACKET, 4 * MIB // PACKET)))
    channel = FakeChannel(out, err)
    shell = shell_session(channel)
    shell.start("agent", 30.0)
    assert shell.next_line() == b"first\n"
    with pytest.raises(ConnectionFailed, match="SSH host: an output line over 1 MiB"):
        shell.next_line()
    assert channel.given <= MAX_LINE + 2 * PACKET + len(b"first\n")


class _Pool:
    def __init__(self) -> None:
        self.returned: list[bool] = []

    def _checkin(self, session: _ShellSession, ok: bool) -> None:
        self.returned.append(ok)


def test_a_line_over_1_mib_ends_a_session_stream_logged_and_the_session_is_not_reused(caplog):
    out, err = framed(itertools.chain([b"first\n"], itertools.repeat(b"z" * PACKET, 4 * MIB // PACKET)))
    shell = shell_session(FakeChannel(out, err))
    shell.start("agent", 30.0)
    pool = _Pool()
    lines = _SessionLines(pool, shell)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="virttui.drivers.ssh"):
        assert lines.readline() == "first\n"
        assert lines.readline() == ""
    assert lines.readline() == "" and lines.exit_status() is None
    assert pool.returned == [False]  # its framing is lost: closed, not pooled
    assert "over 1 MiB" in caplog.text


# -- the SSH event stream: _ChannelStream --------------------------------------------------------------

def test_a_channel_stream_line_over_1_mib_ends_the_stream_logged(caplog):
    endless = itertools.chain([b"event 'lifecycle' for domain 'a': Started Booted\n"],
                              itertools.repeat(b"q" * PACKET, 64 * MIB // PACKET), [b"\nlater\n"])
    channel = FakeChannel(endless)
    stream = _ChannelStream(channel)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="virttui.drivers.ssh"):
        assert stream.readline().startswith("event 'lifecycle'")
        assert stream.readline() == ""
    assert stream.readline() == ""
    assert channel.closed and channel.given <= MAX_LINE + 2 * PACKET + 64
    assert "over 1 MiB" in caplog.text


def test_a_channel_stream_gives_lines_as_they_were_sent_and_a_last_line_without_newline():
    data = b"one\n\ntwo \xff\nlast"
    for size in (1, 2, 3, 5, 4096):
        stream = _ChannelStream(FakeChannel(packets(data, size)))  # type: ignore[arg-type]
        lines = list(iter(stream.readline, ""))
        assert lines == ["one\n", "\n", "two \ufffd\n", "last"]


def test_a_channel_stream_long_line_costs_linear_cpu():
    """Lines just under the cap trickling in 64-byte packets: paramiko's readline rescanned and copied
    the line at every packet."""
    output = (b"x" * (MAX_LINE - 1) + b"\n") * 16
    stream = _ChannelStream(FakeChannel(packets(output, 64)))  # type: ignore[arg-type]
    started = time.process_time()
    lines = list(iter(stream.readline, ""))
    took = time.process_time() - started
    assert len(lines) == 16 and "".join(lines).encode() == output
    assert took < 2.0, f"{took:.1f} s of CPU for 16 lines of 1 MiB"


def test_a_channel_stream_of_16_mib_costs_linear_cpu():
    output = domain_lines(16 * MIB)
    stream = _ChannelStream(FakeChannel(packets(output)))  # type: ignore[arg-type]
    started = time.process_time()
    size = sum(len(line) for line in iter(stream.readline, ""))
    took = time.process_time() - started
    assert size == len(output)
    assert took < 2.0, f"{took:.1f} s of CPU for 16 MiB of lines"


class _OneStreamThenQuiet(Transport):
    """The first stream sends 4 MiB without a newline and then nothing; the next ones wait until closed."""

    def __init__(self) -> None:
        self.opened = 0
        self.reopened = threading.Event()

    def run(self, argv, *, timeout=30.0):  # noqa: ANN001, ANN201
        raise NotImplementedError

    def stream(self, argv) -> LineStream:  # noqa: ANN001
        self.opened += 1
        if self.opened == 1:
            return _ChannelStream(_QuietChannel(itertools.repeat(b"w" * PACKET, 4 * MIB // PACKET)))  # type: ignore[arg-type]
        self.reopened.set()
        return _ChannelStream(_QuietChannel([]))  # type: ignore[arg-type]


class _QuietChannel(FakeChannel):
    """Sends its packets, then nothing until it is closed (a host that keeps the channel open)."""

    def __init__(self, out: Iterable[bytes]) -> None:
        super().__init__(out)
        self._closing = threading.Event()

    def recv(self, n: int) -> bytes:
        data = super().recv(n)
        if not data:
            self._closing.wait(30)
        return data

    def close(self) -> None:
        super().close()
        self._closing.set()


def test_the_event_watcher_reopens_a_stream_ended_by_an_overlong_line():
    transport = _OneStreamThenQuiet()
    events = []
    watcher = EventWatcher(transport, ["virsh", "event"], events.append, "fake")
    watcher.start()
    try:
        assert transport.reopened.wait(10)
        deadline = time.monotonic() + 5
        while not events and time.monotonic() < deadline:
            time.sleep(0.01)
        assert [event.kind for event in events] == ["reopened"]
    finally:
        watcher.stop()


# -- the local event stream: _ProcessStream ------------------------------------------------------------

def _readline_within(stream: LineStream, seconds: float) -> str | None:
    """The stream's next line, or None when none came in time (a readline that hangs)."""
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(seconds)
    return got[0] if got else None


def test_a_local_stream_line_over_1_mib_ends_the_stream_logged_and_stops_the_command(caplog):
    program = ("import sys, time; print('event one', flush=True); "
               "sys.stdout.write('x' * (2 << 20)); sys.stdout.flush(); time.sleep(60)")
    stream = LocalTransport().stream([sys.executable, "-c", program])
    assert isinstance(stream, _ProcessStream)
    try:
        with caplog.at_level(logging.ERROR, logger="virttui.drivers.transport"):
            assert _readline_within(stream, 20) == "event one\n"
            assert _readline_within(stream, 20) == ""  # not a hang while the command sleeps on
        assert stream._proc.poll() is not None  # noqa: SLF001 - stopped: nothing more is read or held
        assert stream.readline() == ""
        assert "over 1 MiB" in caplog.text
    finally:
        stream.close()


def test_a_local_stream_still_gives_long_lines_under_the_cap_and_its_end():
    program = "import sys; sys.stdout.write('a' * 1000000 + '\\n' + 'b\\n' + 'tail')"
    stream = LocalTransport().stream([sys.executable, "-c", program])
    try:
        assert [len(line) for line in iter(stream.readline, "")] == [1000001, 2, 4]
        assert stream.exit_status() == 0
    finally:
        stream.close()


# -- local commands: LocalTransport.run ------------------------------------------------------------------

def test_a_local_command_answering_over_64_mib_is_an_error_naming_the_cap():
    program = "import sys; sys.stdout.buffer.write(b'x' * (80 << 20))"
    with pytest.raises(ConnectionFailed, match="answer over 64 MiB"):
        LocalTransport().run([sys.executable, "-c", program])


def test_a_local_command_still_gives_its_status_output_and_errors():
    program = "import sys; print('out' * 100000); print('err', file=sys.stderr); sys.exit(3)"
    result = LocalTransport().run([sys.executable, "-c", program])
    assert (result.returncode, result.stdout, result.stderr) == (3, "out" * 100000 + "\n", "err\n")
    with pytest.raises(ConnectionFailed, match="did not answer within 0.3 s"):
        LocalTransport().run(["sleep", "5"], timeout=0.3)
    with pytest.raises(ConnectionFailed, match="command not found"):
        LocalTransport().run(["no-such-command-virttui"])


# -- the interactive local virsh: VirshSession ---------------------------------------------------------

FAKE_VIRSH = r"""
import sys
marker, size = sys.argv[1].encode(), int(sys.argv[2])
block = b"".join(b" %6d    virt-guest-%07d    running\n" % (i, i) for i in range(22000))
out = sys.stdout.buffer
for line in sys.stdin.buffer:
    if line.startswith(b"echo "):
        left = size
        while left > 0:
            out.write(block[:left])
            left -= len(block)
        out.write(marker)
        out.flush()
"""


def fake_virsh_session(monkeypatch: pytest.MonkeyPatch, size: int) -> VirshSession:
    """A VirshSession whose virsh answers every command with size bytes of listing."""
    session = VirshSession("test:///fake")

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-c", FAKE_VIRSH, session.marker, str(size)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            fcntl.fcntl(stream.fileno(), fcntl.F_SETFL, fcntl.fcntl(stream.fileno(), fcntl.F_GETFL) | os.O_NONBLOCK)
        return proc

    monkeypatch.setattr(session, "_start", start)
    return session


def test_a_32_mib_virsh_answer_costs_linear_cpu(monkeypatch):
    session = fake_virsh_session(monkeypatch, 32 * MIB)
    try:
        started = time.process_time()
        result = session.run("list --all", 60)
        took = time.process_time() - started
        assert len(result.stdout) == 32 * MIB and result.stdout.startswith("      0    virt-guest-0000000")
        assert took < 1.0, f"{took:.1f} s of CPU for 32 MiB"
        assert len(session.run("list --all", 60).stdout) == 32 * MIB  # the session goes on in step
    finally:
        session.close()


def test_a_virsh_answer_over_64_mib_drops_the_session_with_an_error_naming_the_cap(monkeypatch):
    session = fake_virsh_session(monkeypatch, 200 * MIB)
    tracemalloc.start()
    try:
        with pytest.raises(ConnectionFailed, match="test:///fake: answer over 64 MiB"):
            session.run("list --all", 60)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        session.close()
    assert session._proc is None  # noqa: SLF001 - killed; the next command starts a fresh virsh
    assert peak < 100 * MIB, f"{peak / MIB:.0f} MiB held for a 200 MiB answer"
