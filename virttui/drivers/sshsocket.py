"""The TCP connection under an SSH client: small packets sent and acknowledged at once, a dead peer noticed.

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

KEEPALIVE_SECONDS = 15

# A network path that silently drops packets (a VPN or NAT entry gone, a laptop that changed
# networks) never resets the connection: paramiko's keepalives pile up unacknowledged and TCP
# retries them for ~15 minutes, every command timing out meanwhile. The kernel gives up on such a
# peer after DEAD_PEER_SECONDS instead; the transport then ends, and the next poll reconnects.
DEAD_PEER_SECONDS = 45


def _set_options(sock: object, options: list[tuple[int, str, int]]) -> None:
    """(level, option name, value) on sock when it is a socket: a jump host's channel or a ProxyCommand's
    pipe is no TCP of ours. An option this system lacks, or that fails, is left out: the connection
    works without each, only worse."""
    if not isinstance(sock, socket.socket):
        return
    for level, name, value in options:
        if hasattr(socket, name):
            try:
                sock.setsockopt(level, getattr(socket, name), value)
            except OSError:
                pass


def open_tcp(address: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to address:port (any address family), with Nagle's algorithm off."""
    sock = socket.create_connection((address, port), timeout=timeout)
    _set_options(sock, [(socket.IPPROTO_TCP, "TCP_NODELAY", 1)])
    return sock


def acknowledge_now(sock: object) -> None:
    """Send the acknowledgement of what was read now, not after the delayed-ACK timer (Linux)."""
    _set_options(sock, [(socket.IPPROTO_TCP, "TCP_QUICKACK", 1)])


def detect_dead_peers(sock: object, dead_after: int = DEAD_PEER_SECONDS) -> None:
    """TCP keepalive probes on an idle connection and a bound on unacknowledged data (Linux)."""
    _set_options(sock, [(socket.SOL_SOCKET, "SO_KEEPALIVE", 1), (socket.IPPROTO_TCP, "TCP_KEEPIDLE", KEEPALIVE_SECONDS),
                        (socket.IPPROTO_TCP, "TCP_KEEPINTVL", 5), (socket.IPPROTO_TCP, "TCP_KEEPCNT", 4),
                        (socket.IPPROTO_TCP, "TCP_USER_TIMEOUT", dead_after * 1000)])


class PromptAckTransport(paramiko.Transport):
    """paramiko's Transport, acknowledging at once a global request from the server (see above)."""

    def _parse_global_request(self, m: paramiko.Message) -> None:
        super()._parse_global_request(m)  # type: ignore[misc]  # paramiko's own handler: it answers if asked
        acknowledge_now(self.sock)


def prompt_ack_transport(sock: object, /, *, gss_kex: bool = False, gss_deleg_creds: bool = False,
                         disabled_algorithms: Mapping[str, Iterable[str]] | None = None) -> paramiko.Transport:
    """SSHClient.connect's transport_factory (paramiko 5 passes no GSS arguments; its type stubs list them)."""
    return PromptAckTransport(sock, disabled_algorithms=disabled_algorithms)  # type: ignore[arg-type]
