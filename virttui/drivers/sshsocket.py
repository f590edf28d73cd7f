"""The TCP connection under an SSH client: small packets sent at once, and acknowledged at once.

SSH's requests and answers are small packets. With Nagle's algorithm on, a packet waits for the
previous one's acknowledgement, and the peer delays acknowledgements by up to 40 ms: the key
exchange and authentication took ~65 ms on loopback, ~25 ms without (docs/performance.md).
sshd keeps Nagle on for sessions without a terminal. After authentication it sends a global
request that wants no answer ("hostkeys-00@openssh.com"). Its acknowledgement was delayed, so
sshd held back the answer to the first session's open behind it: ~42 ms. An immediate
acknowledgement of that request removes the wait.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Mapping

import paramiko


def open_tcp(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to address:port (any address family), with Nagle's algorithm off."""
    sock = socket.create_connection((address, port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass  # the connection works without it, only slower
    return sock


def acknowledge_now(sock: object) -> None:
    """Send the acknowledgement of what was read now, not after the delayed-ACK timer (Linux)."""
    quickack = getattr(socket, "TCP_QUICKACK", None)
    if quickack is None or not isinstance(sock, socket.socket):
        return  # another system, or a jump host's channel or a ProxyCommand's pipe: no TCP of ours
    try:
        sock.setsockopt(socket.IPPROTO_TCP, quickack, 1)
    except OSError:
        pass


class PromptAckTransport(paramiko.Transport):
    """paramiko's Transport, acknowledging at once a global request from the server (see above)."""

    def _parse_global_request(self, m: paramiko.Message) -> None:
        super()._parse_global_request(m)  # type: ignore[misc]  # paramiko's own handler: it answers if asked
        acknowledge_now(self.sock)


def prompt_ack_transport(sock: object, /, *, gss_kex: bool = False, gss_deleg_creds: bool = False,
                         disabled_algorithms: Mapping[str, Iterable[str]] | None = None) -> paramiko.Transport:
    """SSHClient.connect's transport_factory (paramiko 5 passes no GSS arguments; its type stubs list them)."""
    return PromptAckTransport(sock, disabled_algorithms=disabled_algorithms)  # type: ignore[arg-type]
