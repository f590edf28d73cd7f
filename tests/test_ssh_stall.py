"""An SSH server that accepts a channel and never answers its exec request: the command fails in time.

paramiko waits for that answer with no timeout of its own; a poll stuck there would leave the host
shown as connected forever, its pool slot taken. A minimal in-process paramiko server stands in for
such a host (a real sshd can't be made to stall at that step)."""

from __future__ import annotations

import socket
import threading
import time

import paramiko
import pytest

from virttui.drivers import ssh
from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.uri import parse_uri


class _StallingServer(paramiko.ServerInterface):
    def __init__(self, release: threading.Event) -> None:
        self.release = release

    def check_channel_request(self, kind, chanid):  # noqa: ANN001, ANN201
        return paramiko.OPEN_SUCCEEDED

    def get_allowed_auths(self, username):  # noqa: ANN001, ANN201
        return "publickey"

    def check_auth_publickey(self, username, key):  # noqa: ANN001, ANN201
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_exec_request(self, channel, command):  # noqa: ANN001, ANN201
        self.release.wait(60)  # never answers while the test runs
        return False


@pytest.fixture
def stalling_host(tmp_path):
    host_key = paramiko.ECDSAKey.generate()
    client_key = paramiko.ECDSAKey.generate()
    client_key.write_private_key_file(str(tmp_path / "id"))
    known = tmp_path / "known_hosts"
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    known.write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
    release = threading.Event()
    transports = []

    def accept() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        server = paramiko.Transport(conn)
        server.add_server_key(host_key)
        transports.append(server)
        server.start_server(server=_StallingServer(release))

    threading.Thread(target=accept, daemon=True).start()
    yield f"qemu+ssh://u@127.0.0.1:{port}/system?keyfile={tmp_path / 'id'}&known_hosts={known}"
    release.set()
    listener.close()
    for server in transports:
        server.close()


def test_a_host_that_never_answers_the_exec_request_fails_the_command_in_time(stalling_host, monkeypatch, tmp_path):
    monkeypatch.setattr(ssh, "CONNECT_TIMEOUT", 1.0)
    transport = ssh.SSHTransport(parse_uri(stalling_host), ssh_config_path=str(tmp_path / "no-config"))
    transport.connect()
    outcome: dict = {}

    def run() -> None:
        started = time.monotonic()
        try:
            transport.run(["echo", "hi"], timeout=3)
        except ConnectionFailed as exc:
            outcome["error"] = str(exc)
        outcome["took"] = time.monotonic() - started

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(20)
    try:
        assert not worker.is_alive(), "the command hung past every deadline"
        assert "did not answer within 1 s" in outcome["error"] and outcome["took"] < 10
    finally:
        transport.close()
