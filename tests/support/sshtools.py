"""OpenSSH's own tools for SSH tests: a fresh key pair (ssh-keygen) and a real ssh-agent holding a key."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# found once, at import: a test may empty PATH to play a machine without an OpenSSH client
SSH_KEYGEN, SSH_AGENT, SSH_ADD = (shutil.which(name) or name for name in ("ssh-keygen", "ssh-agent", "ssh-add"))


def keygen(path: Path) -> Path:
    """A new unencrypted ed25519 key pair at path (and path.pub), commented with its file name."""
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", path.name, "-f", str(path)],
                   check=True, timeout=30, stdin=subprocess.DEVNULL)
    return path


@contextmanager
def running_agent(key: str | Path) -> Iterator[str]:
    """A real ssh-agent on a socket of its own, holding that one key: its socket; stopped after."""
    folder = tempfile.mkdtemp(prefix="vt-agent-", dir="/tmp")  # a unix socket's path is 107 bytes at most
    sock = os.path.join(folder, "agent.sock")
    process = subprocess.Popen([SSH_AGENT, "-a", sock, "-D"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(sock):
            assert process.poll() is None and time.monotonic() < deadline, "ssh-agent did not start"
            time.sleep(0.02)
        subprocess.run([SSH_ADD, "-q", str(key)], check=True, timeout=30, capture_output=True,
                       stdin=subprocess.DEVNULL, env={**os.environ, "SSH_AUTH_SOCK": sock})
        yield sock
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
