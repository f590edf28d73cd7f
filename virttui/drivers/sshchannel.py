"""Commands on paramiko channels of their own: a request answered within a deadline, and a
long-running command's stdout read line by line (ChannelStream: the host's event stream).

Imports paramiko: only virttui.drivers.ssh imports this module (see its docstring).
"""

from __future__ import annotations

import logging
import socket
import threading

import paramiko

from virttui.drivers.transport import MAX_LINE, READ_CHUNK, LineStream, mib

log = logging.getLogger("virttui.drivers.ssh")  # the SSH transport's log, as its operators know it


def answered_within(channel: paramiko.Channel, request, *args: object, timeout: float) -> None:  # noqa: ANN001
    """Send a channel request (exec_command, get_pty) and wait for the host's answer, at most timeout seconds.

    paramiko waits for the answer with no timeout: a host that accepts the channel and never answers
    the request would hang the poll forever, the host shown as connected. A timer closes the channel,
    which wakes paramiko's wait."""
    fired = threading.Event()

    def give_up() -> None:
        fired.set()
        try:
            channel.close()
        except (OSError, EOFError, paramiko.SSHException):  # the connection went first: the request is woken anyway
            pass

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


def peer_name(transport: paramiko.Transport | None) -> str:
    """The host a connection reaches, as errors about what it sent name it."""
    try:
        return str(transport.getpeername()[0])  # type: ignore[union-attr]
    except (AttributeError, OSError, IndexError, TypeError):
        return "SSH host"


class ChannelStream(LineStream):
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
                  peer_name(self._channel.get_transport()), mib(MAX_LINE))
        self._ended = True
        self._buffer.clear()
        self.close()
        return ""

    def close(self) -> None:
        try:
            self._channel.close()
        except Exception:  # noqa: BLE001
            pass
