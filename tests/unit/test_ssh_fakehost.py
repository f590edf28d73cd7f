"""Hosts a real sshd can't play, played by a minimal in-process paramiko server.

One accepts a channel and never answers its exec request: paramiko waits for that answer with no
timeout of its own, and a poll stuck there would leave the host shown as connected forever, its
pool slot taken. Another presents one of two keys of one type that known_hosts lists for it."""

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


def _serve(host_keys: list[paramiko.PKey], release: threading.Event, transports: list) -> socket.socket:
    """A listening socket whose connections are served by _StallingServer, the Nth with host_keys[N]
    (the last key from then on): a man in the middle may answer a second connection differently."""
    listener = socket.create_server(("127.0.0.1", 0))

    def accept() -> None:
        for index in range(1000):
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            server = paramiko.Transport(conn)
            server.add_server_key(host_keys[min(index, len(host_keys) - 1)])
            transports.append(server)
            try:
                server.start_server(server=_StallingServer(release))
            except (paramiko.SSHException, EOFError, OSError):
                continue  # the client hung up mid-handshake (a refused host key): serve the next one

    threading.Thread(target=accept, daemon=True).start()
    return listener


@pytest.fixture
def fake_host(tmp_path, request):
    """(host key, port, URI with known_hosts=<tmp>/known_hosts): the known_hosts file is the test's to
    write. Parametrized indirectly with more keys, later connections present those."""
    host_key = paramiko.ECDSAKey.generate()
    client_key = paramiko.ECDSAKey.generate()
    client_key.write_private_key_file(str(tmp_path / "id"))
    release = threading.Event()
    transports: list = []
    listener = _serve([host_key, *getattr(request, "param", [])], release, transports)
    port = listener.getsockname()[1]
    yield host_key, port, (f"qemu+ssh://u@127.0.0.1:{port}/system?keyfile={tmp_path / 'id'}"
                           f"&known_hosts={tmp_path / 'known_hosts'}")
    release.set()
    listener.close()
    for server in transports:
        server.close()


@pytest.fixture
def stalling_host(fake_host, tmp_path):
    host_key, port, uri = fake_host
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n")
    return uri


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


@pytest.mark.parametrize("hashed", [False, True])
def test_a_host_key_listed_beside_another_of_its_type_is_accepted_as_openssh_does(fake_host, tmp_path, hashed):
    """Two ECDSA lines for one host (hosts behind one name, an old line left after a reinstall):
    paramiko alone keeps one key per type and called the other CHANGED; ssh accepts either."""
    from paramiko.hostkeys import HostKeys

    host_key, port, uri = fake_host
    other = paramiko.ECDSAKey.generate()
    name = f"[127.0.0.1]:{port}"
    shown = HostKeys.hash_host(name) if hashed else name
    (tmp_path / "known_hosts").write_text(f"{shown} {host_key.get_name()} {host_key.get_base64()}\n"
                                          f"{shown} {other.get_name()} {other.get_base64()}\n")
    transport = ssh.SSHTransport(parse_uri(uri), ssh_config_path=str(tmp_path / "no-config"))
    try:
        transport.connect()
    finally:
        transport.close()


def test_a_key_listed_only_as_revoked_or_for_another_host_is_not_listed(tmp_path):
    from virttui.drivers.knownhosts import lists_key

    key, other = paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()
    known = tmp_path / "known_hosts"
    known.write_text(f"hv1 {key.get_name()} {key.get_base64()}\nhv2 {other.get_name()} {other.get_base64()}\n"
                     f"@revoked hv2 {other.get_name()} {other.get_base64()}\n")
    assert lists_key(str(known), "hv1", key) and not lists_key(str(known), "hv2", key)
    assert not lists_key(str(known), "hv2", other)  # revoked


def _ed25519() -> paramiko.PKey:
    """A fresh Ed25519 key (paramiko can't generate one; cryptography can)."""
    import io

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    pem = Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                                     serialization.NoEncryption())
    return paramiko.Ed25519Key.from_private_key(io.StringIO(pem.decode()))


MITM_KEY = _ed25519()


@pytest.mark.parametrize("fake_host", [[MITM_KEY]], indirect=True)
@pytest.mark.parametrize("query", ["", "&no_verify=1"])
def test_the_second_try_for_a_listed_key_still_refuses_a_revoked_one(fake_host, tmp_path, query):
    """The first connection shows a listed key paramiko did not keep, so virttui tries again; a man in
    the middle answers that try with a key known_hosts revokes. It must still be refused."""
    host_key, port, uri = fake_host
    other = paramiko.ECDSAKey.generate()
    name = f"[127.0.0.1]:{port}"
    (tmp_path / "known_hosts").write_text(f"{name} {host_key.get_name()} {host_key.get_base64()}\n"
                                          f"{name} {other.get_name()} {other.get_base64()}\n"
                                          f"@revoked * {MITM_KEY.get_name()} {MITM_KEY.get_base64()}\n")
    transport = ssh.SSHTransport(parse_uri(uri + query), ssh_config_path=str(tmp_path / "no-config"))
    with pytest.raises(ConnectionFailed, match="CHANGED"):  # the host is known: any other key is a change
        transport.connect()
    assert transport.pending_key is None  # never offered for trust
    transport.close()


def test_no_verify_refuses_a_known_host_showing_a_key_of_another_type(fake_host, tmp_path):
    """hv1 is on file with an Ed25519 key; a man in the middle offers only ECDSA: not "a new host"."""
    host_key, port, uri = fake_host
    (tmp_path / "known_hosts").write_text(f"[127.0.0.1]:{port} {MITM_KEY.get_name()} {MITM_KEY.get_base64()}\n")
    transport = ssh.SSHTransport(parse_uri(uri + "&no_verify=1"), ssh_config_path=str(tmp_path / "no-config"))
    with pytest.raises(ConnectionFailed, match="CHANGED"):
        transport.connect()
    assert transport.pending_key is None
    transport.close()
