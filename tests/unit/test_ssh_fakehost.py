"""Hosts a real sshd can't play, played by a minimal in-process paramiko server.

One accepts a channel and never answers its exec request: paramiko waits for that answer with no
timeout of its own, and a poll stuck there would leave the host shown as connected forever, its
pool slot taken. Another presents one of two keys of one type that known_hosts lists for it."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from support.fakessh import FakeSSHServer, StallingServer, write_client_key

from virttui.drivers import ssh
from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.uri import parse_uri


@pytest.fixture
def fake_host(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[paramiko.PKey, int, str]]:
    """(host key, port, URI with known_hosts=<tmp>/known_hosts): the known_hosts file is the test's to
    write. Parametrized indirectly with more keys, later connections present those."""
    host_key = paramiko.ECDSAKey.generate()
    keyfile = write_client_key(tmp_path / "id")
    with FakeSSHServer([host_key, *getattr(request, "param", [])], StallingServer) as server:
        yield host_key, server.port, (f"qemu+ssh://u@127.0.0.1:{server.port}/system?keyfile={keyfile}"
                                      f"&known_hosts={tmp_path / 'known_hosts'}")


@pytest.fixture
def stalling_host(fake_host: tuple[paramiko.PKey, int, str], tmp_path: Path) -> str:
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


def test_a_closed_fake_host_leaves_no_thread_and_no_listener_behind(tmp_path: Path) -> None:
    """A listener closed under a thread waiting in accept() went on listening, and the first SIGCHLD
    restarted that accept() on the next test's listener (which got the freed descriptor number): that
    test was served the previous one's host key. After close, nothing of a fake host may remain."""
    key = paramiko.ECDSAKey.generate()
    keyfile, known = write_client_key(tmp_path / "id"), tmp_path / "known_hosts"
    server = FakeSSHServer([key], StallingServer)
    known.write_text(f"[127.0.0.1]:{server.port} {key.get_name()} {key.get_base64()}\n")
    transport = ssh.SSHTransport(parse_uri(f"qemu+ssh://u@127.0.0.1:{server.port}/system?keyfile={keyfile}"
                                           f"&known_hosts={known}"), ssh_config_path=str(tmp_path / "no-config"))
    try:
        transport.connect()  # still connected as the server closes: its transport's thread, as well, must end
        threads = server.threads()
        server.close()
    finally:
        transport.close()
    assert len(threads) == 2 and not [thread.name for thread in threads if thread.is_alive()]
    with pytest.raises(ConnectionRefusedError):  # no longer listening: nothing to answer a later connection
        socket.create_connection(("127.0.0.1", server.port), timeout=5).close()


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


def test_a_deadline_that_passes_after_the_connection_went_ends_quietly(tmp_path: Path) -> None:
    """The timer closes a channel whose connection is already gone: the request's caller gets the
    one-line timeout, and the timer's thread raises nothing (it once died with an EOFError)."""
    from virttui.drivers.sshchannel import answered_within

    thread_errors: list[BaseException | None] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: thread_errors.append(args.exc_value)
    keyfile = write_client_key(tmp_path / "id")
    try:
        with FakeSSHServer([paramiko.ECDSAKey.generate()], StallingServer) as server:
            client = paramiko.SSHClient()
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
            client.connect("127.0.0.1", port=server.port, username="root", key_filename=str(keyfile),
                           allow_agent=False, look_for_keys=False, timeout=10)
            channel = client.get_transport().open_session()  # type: ignore[union-attr]
            # the way out breaks while the host sits on the request (its thread waits in the handler,
            # so nothing tells this side): the timer's close then cannot be sent
            cut = threading.Timer(0.1, channel.transport.sock.shutdown, (socket.SHUT_WR,))
            cut.start()
            with pytest.raises(paramiko.SSHException, match="did not answer within"):
                answered_within(channel, channel.exec_command, "true", timeout=0.4)
            cut.join()
            client.close()
    finally:
        threading.excepthook = previous_hook
    assert thread_errors == []
