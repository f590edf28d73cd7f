"""The serial console over SSH: this terminal, raw, relayed to a pty channel until its command exits.

Imports paramiko: only virttui.drivers.ssh imports this module, when a console is opened.
"""

from __future__ import annotations

import os
import select
import socket
import termios
import tty

import paramiko

from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.transport import COMMAND_TIMEOUT


def relay_terminal(channel: paramiko.Channel, stdin_fd: int, stdout_fd: int, uri: str) -> int:
    """Relay stdin_fd (made raw while it is a terminal) and stdout_fd to channel, whose command runs
    in a pty, until it exits; its exit status. The channel is closed on return."""
    saved = termios.tcgetattr(stdin_fd) if os.isatty(stdin_fd) else None
    try:
        if saved is not None:
            tty.setraw(stdin_fd)
        channel.settimeout(0.0)
        watched: list[paramiko.Channel | int] = [channel, stdin_fd]
        while not channel.exit_status_ready() or channel.recv_ready():
            ready, _, _ = select.select(watched, [], [], 0.5)
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
                    raise ConnectionFailed(f"{uri}: the console stopped taking input") from None
                channel.settimeout(0.0)
        return channel.recv_exit_status() if channel.exit_status_ready() else 0
    finally:
        if saved is not None:
            termios.tcsetattr(stdin_fd, termios.TCSADRAIN, saved)
        channel.close()
