"""A program run in a pseudo-terminal this process drives, its screen read by a terminal emulator (pyte):
how long from the process's start until a text is on the screen, as an operator would see it.

The terminal answers nothing (no device attributes, no cursor reports): a Textual app does not wait
for those.
"""

from __future__ import annotations

import fcntl
import os
import queue
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Sequence

import pyte


class ScreenTimeout(Exception):
    """The text never showed; str() says what the screen held instead."""


def _make_controlling_tty() -> None:  # runs in the child between fork and exec
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def time_to_text(argv: Sequence[str], text: str, *, env: dict[str, str], size: tuple[int, int] = (160, 50),
                 timeout: float = 60.0) -> float:
    """Seconds from spawning argv in a fresh pty of size (columns, rows) until `text` is on its screen.
    The program's whole session is killed afterwards (its children with it).

    A thread reads the terminal as fast as the program writes and stamps each chunk as it comes;
    pyte, pure Python and slower than the program, reads the chunks after it. The time is the
    stamp of the chunk that completed the text, so pyte's own speed is not in the figure."""
    columns, rows = size
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    screen = pyte.Screen(columns, rows)
    stream = pyte.ByteStream(screen)
    chunks: queue.Queue[tuple[float, bytes]] = queue.Queue()
    env = {**env, "TERM": "xterm-256color", "COLUMNS": str(columns), "LINES": str(rows)}
    started = time.monotonic()
    proc = subprocess.Popen(list(argv), stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
                            start_new_session=True, preexec_fn=_make_controlling_tty)  # noqa: PLW1509
    os.close(slave)
    reader = threading.Thread(target=_read_all, args=(master, chunks), daemon=True)
    reader.start()
    try:
        deadline = started + timeout
        while True:
            try:
                stamp, chunk = chunks.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise ScreenTimeout(f"{text!r} not on screen after {timeout:g} s; it showed: {_shown(screen)}"
                                    ) from None
            if not chunk:
                raise ScreenTimeout(f"the program ended before {text!r} showed; it showed: {_shown(screen)}")
            stream.feed(chunk)
            if any(text in line for line in screen.display):
                return stamp - started
    finally:
        _end(proc)
        reader.join(timeout=2)
        os.close(master)


def _read_all(master: int, chunks: queue.Queue[tuple[float, bytes]]) -> None:
    """Every chunk the program writes, stamped when read; an empty one when it closed the terminal."""
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: every holder of the terminal's other side has gone
            chunk = b""
        chunks.put((time.monotonic(), chunk))
        if not chunk:
            return


def _shown(screen: pyte.Screen) -> str:
    lines = [line.rstrip() for line in screen.display if line.strip()]
    return " | ".join(lines[:6])[:600] or "nothing"


def _end(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # its own session: virsh children and shells go with it
    except OSError:
        pass
    proc.wait()
