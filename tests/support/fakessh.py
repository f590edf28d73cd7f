"""A minimal in-process SSH server (paramiko) for the hosts a real sshd can't play: a chosen host key per
connection, any client key accepted (or only those a test chooses: KeyCheckingServer), optionally an
exec request never answered.

Each server listens on its own fresh 127.0.0.1:0 and is stopped by close() (or leaving its `with`),
which leaves nothing behind: no thread, no listening socket, no connection. It wakes its threads
(shutdown, never close, of the sockets they wait on), joins them, and only then closes the sockets.

Why that order: closing a listener while its thread waits in accept() neither wakes the thread nor
stops the listening, and frees the descriptor number, which the next test's listener then gets. The
first SIGCHLD that thread took (an `ssh -G` exiting) restarted its accept() on that number, now the
next test's listener: it served that test's connection with the previous test's host key
(HostKeyChanged, once in a while, mostly under CPU load).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

import paramiko
from paramiko.common import AUTH_FAILED, AUTH_SUCCESSFUL, OPEN_SUCCEEDED

JOIN_TIMEOUT = 10.0  # a woken thread ends in well under a second, even on a loaded CI machine


class AcceptingServer(paramiko.ServerInterface):
    """Any client key is accepted (these tests check the host's key, not the client's); channel
    requests are refused, as paramiko's ServerInterface does by default."""

    def __init__(self, closing: threading.Event) -> None:
        self.closing = closing  # set when the server stops: nothing may wait past it

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return AUTH_SUCCESSFUL


class StallingServer(AcceptingServer):
    """Opens a session channel, then never answers its exec request while the server runs: paramiko
    waits for that answer with no timeout of its own."""

    def check_channel_request(self, kind: str, chanid: int) -> int:
        return OPEN_SUCCEEDED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.closing.wait(60)  # released by close(), so the transport's thread can end
        return False


class KeyCheckingServer(AcceptingServer):
    """Accepts only the client keys `accept` says yes to; every key offered is appended to `offered`
    (paramiko's server gives a certificate as its key with public_blob holding the certificate)."""

    def __init__(self, closing: threading.Event, accept: Callable[[paramiko.PKey], bool],
                 offered: list[paramiko.PKey]) -> None:
        super().__init__(closing)
        self.accept = accept
        self.offered = offered

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        self.offered.append(key)
        return AUTH_SUCCESSFUL if self.accept(key) else AUTH_FAILED


def checking_keys(accept: Callable[[paramiko.PKey], bool],
                  offered: list[paramiko.PKey]) -> Callable[[threading.Event], AcceptingServer]:
    """A FakeSSHServer interface: KeyCheckingServer with these `accept` and `offered`."""
    return lambda closing: KeyCheckingServer(closing, accept, offered)


class FakeSSHServer:
    """Serves the Nth connection with host_keys[N] (the last key from then on): a man in the middle
    may answer a second connection differently. host_keys is the server's own list: a test may
    append a key later connections present."""

    def __init__(self, host_keys: Sequence[paramiko.PKey],
                 interface: Callable[[threading.Event], AcceptingServer] = AcceptingServer) -> None:
        if not host_keys:
            raise ValueError("a fake SSH server needs a host key")
        self.host_keys = list(host_keys)
        self.closing = threading.Event()
        self._interface = interface
        self._lock = threading.Lock()
        self._connections: list[tuple[socket.socket, paramiko.Transport]] = []
        self.listener = socket.create_server(("127.0.0.1", 0))  # a fresh port of its own, never a fixed one
        self.port: int = self.listener.getsockname()[1]
        self.accept_thread = threading.Thread(target=self._serve, name=f"fake-sshd-{self.port}", daemon=True)
        self.accept_thread.start()

    @property
    def connections(self) -> int:
        """How many connections it has accepted."""
        with self._lock:
            return len(self._connections)

    def threads(self) -> list[threading.Thread]:
        """Its accept thread and the thread of each connection's transport."""
        with self._lock:
            return [self.accept_thread, *(transport for _, transport in self._connections)]

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:  # close() shut the listener down
                return
            with self._lock:
                if self.closing.is_set():  # accepted as close() began: never served, and this thread its only user
                    conn.close()
                    return
                transport = paramiko.Transport(conn)
                transport.add_server_key(self.host_keys[min(len(self._connections), len(self.host_keys) - 1)])
                self._connections.append((conn, transport))
            try:
                transport.start_server(server=self._interface(self.closing))
            except (paramiko.SSHException, EOFError, OSError):
                continue  # the client hung up mid-handshake (a refused host key): serve the next one

    def close(self) -> None:
        """Stop serving: wake every thread, join it, then close the sockets. AssertionError (and the
        sockets left open, so their numbers can't be reused under a live thread) if one would not end."""
        self.closing.set()
        with self._lock:
            connections = list(self._connections)
        _shutdown(self.listener)  # wakes accept() (EINVAL), and refuses connections from now on
        for conn, _ in connections:
            _shutdown(conn)  # the transport reads EOF and ends (its thread closes its socket itself)
        self.accept_thread.join(JOIN_TIMEOUT)
        for transport in self.threads()[1:]:
            if transport.ident is not None:  # started: the accept thread was joined, so all of them were
                transport.join(JOIN_TIMEOUT)
        alive = [thread.name for thread in self.threads() if thread.is_alive()]
        assert not alive, f"fake SSH server on port {self.port}: threads still running after close: {alive}"
        self.listener.close()
        for conn, _ in connections:
            conn.close()

    def __enter__(self) -> FakeSSHServer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # the peer already went (ENOTCONN): nothing to wake
        pass


def write_client_key(path: Path) -> Path:
    """A fresh client key, written where a URI's keyfile= (or an IdentityFile) can name it."""
    paramiko.ECDSAKey.generate().write_private_key_file(str(path))
    return path
