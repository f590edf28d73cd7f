"""What the ssh config says about client keys and saved host keys, honoured as OpenSSH honours it:
HashKnownHosts (a saved host key's name hashed), IdentityAgent (the agent whose keys are offered:
a real ssh-agent here) and CertificateFile (user certificates made by the real ssh-keygen, offered
with their private keys). Each against an in-process paramiko server that accepts only the key the
test means, resolved by the real `ssh -G`; the fallback parser where no ssh client is installed."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from support.fakessh import FakeSSHServer, checking_keys
from support.sshrun import fresh_ssh_run
from support.sshtools import keygen, running_agent

from virttui.drivers import ssh, sshauth, sshresolve
from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.knownhosts import lists_key
from virttui.drivers.sshhostkeys import HostKeyChanged, UnknownHostKey
from virttui.drivers.sshtarget import resolve_target
from virttui.drivers.uri import parse_uri

SSH_AGENT, SSH_ADD, SSH_KEYGEN = (shutil.which(name) for name in ("ssh-agent", "ssh-add", "ssh-keygen"))
assert SSH_AGENT and SSH_ADD and SSH_KEYGEN, "the OpenSSH client is a test dependency (scripts/test.sh installs it)"
CERT_TYPE = "-cert-v01@openssh.com"


@pytest.fixture(autouse=True)
def fresh_run(private_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A run of its own, in a home with no keys, and no agent but the one a test starts."""
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with fresh_ssh_run():
        yield


def public(path: Path) -> bytes:
    """The public key blob of a key file, read from its .pub (independently of virttui)."""
    return paramiko.PublicBlob.from_file(f"{path}.pub").key_blob


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def transport(tmp_path: Path, port: int, settings: str) -> ssh.SSHTransport:
    config = write(tmp_path / "config", f"Host hv1\n  HostName 127.0.0.1\n  Port {port}\n  User root\n{settings}")
    return ssh.SSHTransport(parse_uri("qemu+ssh://hv1/system"), ssh_config_path=str(config))


def connects(hv: ssh.SSHTransport) -> bool:
    try:
        hv.connect()
        return True
    finally:
        hv.close()


# -- HashKnownHosts ------------------------------------------------------------------------------

@pytest.fixture
def any_key_host(tmp_path: Path) -> Iterator[tuple[FakeSSHServer, Path]]:
    """(server accepting any client key, that key's file)."""
    keyfile = keygen(tmp_path / "id")
    with FakeSSHServer([paramiko.ECDSAKey.generate()]) as server:
        yield server, keyfile


def test_accept_new_under_hash_known_hosts_saves_a_hashed_name_found_by_the_next_connect(tmp_path, any_key_host):
    server, keyfile = any_key_host
    known = tmp_path / "known"
    settings = (f"  IdentityFile {keyfile}\n  UserKnownHostsFile {known}\n  StrictHostKeyChecking accept-new\n"
                "  HashKnownHosts yes\n")
    assert connects(transport(tmp_path, server.port, settings))
    name = f"[127.0.0.1]:{server.port}"
    (line,) = known.read_text().splitlines()
    shown, key_type, blob = line.split()
    assert shown.startswith("|1|") and "127.0.0.1" not in line
    assert shown == paramiko.HostKeys.hash_host(name, shown)  # ssh's HMAC-SHA1 of the name, under its salt
    assert (key_type, blob) == (server.host_keys[0].get_name(), server.host_keys[0].get_base64())
    assert paramiko.HostKeys(str(known)).lookup(name)[key_type] == server.host_keys[0]
    found = subprocess.run([SSH_KEYGEN, "-F", name, "-f", str(known)], capture_output=True, text=True, timeout=30,
                           stdin=subprocess.DEVNULL)
    assert found.returncode == 0 and blob in found.stdout  # OpenSSH's own lookup finds it too
    assert connects(transport(tmp_path, server.port, settings))  # found: accept-new saved nothing more
    assert known.read_text().splitlines() == [line]
    server.host_keys.append(paramiko.ECDSAKey.generate())  # the third connection shows another key
    with pytest.raises(HostKeyChanged, match="CHANGED"):
        transport(tmp_path, server.port, settings).connect()


@pytest.mark.parametrize("hashed", [True, False])
def test_a_key_the_operator_trusts_is_saved_hashed_only_under_hash_known_hosts(tmp_path, any_key_host, hashed):
    server, keyfile = any_key_host
    known = tmp_path / "known"
    known.write_text("hv0 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKf0NW2iQzAmVFTZyF5KA6QCa2uV0h3b7mnN7QMHWjqw")  # no \n
    hv = transport(tmp_path, server.port, f"  IdentityFile {keyfile}\n  UserKnownHostsFile {known}\n"
                                          f"  HashKnownHosts {'yes' if hashed else 'no'}\n")
    with pytest.raises(UnknownHostKey) as unknown:
        hv.connect()
    assert unknown.value.hashed is hashed
    hv.trust_key(unknown.value)  # as the trust dialog does
    first, line = known.read_text().splitlines()
    assert first.startswith("hv0 ")  # the hand-edited last line kept whole
    name = f"[127.0.0.1]:{server.port}"
    assert line.startswith("|1|") is hashed and (name in line) is not hashed
    assert lists_key(str(known), name, server.host_keys[0])
    assert connects(hv)


# -- IdentityAgent -------------------------------------------------------------------------------

@pytest.fixture
def agent(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(socket, key file): a real ssh-agent on a socket of its own, holding that one key."""
    keyfile = keygen(tmp_path / "agent_key")
    with running_agent(keyfile) as sock:
        yield sock, keyfile


@pytest.fixture
def agent_only_host(tmp_path: Path, agent: tuple[str, Path]) -> Iterator[tuple[FakeSSHServer, str, Path, list]]:
    """(server accepting only the agent's key, agent socket, another key file, keys offered)."""
    sock, agent_key = agent
    expected = public(agent_key)
    offered: list[paramiko.PKey] = []
    other = keygen(tmp_path / "other_key")
    with FakeSSHServer([paramiko.ECDSAKey.generate()], checking_keys(lambda key: key.asbytes() == expected,
                                                                     offered)) as server:
        yield server, sock, other, offered


def _agent_settings(tmp_path: Path, other: Path, agent_line: str) -> str:
    return (f"  IdentityFile {other}\n  StrictHostKeyChecking no\n  UserKnownHostsFile {tmp_path}/known\n"
            f"{agent_line}")


@pytest.mark.parametrize("how", ["path", "$VAR", "SSH_AUTH_SOCK", "unset"])
def test_the_agent_identity_agent_names_has_its_key_offered(tmp_path, agent_only_host, monkeypatch, how):
    server, sock, other, offered = agent_only_host
    line = {"path": f"  IdentityAgent {sock}\n", "$VAR": "  IdentityAgent $VT_AGENT\n",
            "SSH_AUTH_SOCK": "  IdentityAgent SSH_AUTH_SOCK\n", "unset": ""}[how]
    if how == "$VAR":
        monkeypatch.setenv("VT_AGENT", sock)
    if how in ("SSH_AUTH_SOCK", "unset"):
        monkeypatch.setenv("SSH_AUTH_SOCK", sock)
    assert connects(transport(tmp_path, server.port, _agent_settings(tmp_path, other, line)))
    assert offered[0].asbytes() == public(other) and offered[-1].asbytes() == public(tmp_path / "agent_key")


@pytest.mark.parametrize("line", ["  IdentityAgent none\n", "  IdentitiesOnly yes\n",
                                  "  IdentityAgent $VT_UNSET_AGENT\n"])
def test_no_agent_key_is_offered_under_identity_agent_none_or_identities_only(tmp_path, agent_only_host,
                                                                               monkeypatch, line):
    server, sock, other, offered = agent_only_host
    monkeypatch.setenv("SSH_AUTH_SOCK", sock)  # what paramiko alone would have used
    monkeypatch.delenv("VT_UNSET_AGENT", raising=False)
    with pytest.raises(ConnectionFailed, match="authentication failed"):
        transport(tmp_path, server.port, _agent_settings(tmp_path, other, line)).connect()
    assert [key.asbytes() for key in offered] == [public(other)]


def test_an_agent_socket_that_cannot_be_opened_is_one_warning_and_the_key_files_still_work(tmp_path, any_key_host,
                                                                                          caplog):
    server, keyfile = any_key_host
    dead = tmp_path / "no-agent.sock"
    settings = (f"  IdentityFile {keyfile}\n  StrictHostKeyChecking no\n  UserKnownHostsFile {tmp_path}/known\n"
                f"  IdentityAgent {dead}\n")
    with caplog.at_level(logging.WARNING, logger="virttui.drivers.ssh"):
        assert connects(transport(tmp_path, server.port, settings))
        assert connects(transport(tmp_path, server.port, settings))  # a reconnect: not said again this run
    agent_warnings = [r.getMessage() for r in caplog.records if "agent" in r.getMessage()]
    assert len(agent_warnings) == 1 and "\n" not in agent_warnings[0]
    assert "hv1" in agent_warnings[0] and str(dead) in agent_warnings[0]
    sshauth.forget_warnings()  # a new run
    with caplog.at_level(logging.WARNING, logger="virttui.drivers.ssh"):
        assert connects(transport(tmp_path, server.port, settings))
    assert len([r for r in caplog.records if "agent" in r.getMessage()]) == 2


# -- CertificateFile -----------------------------------------------------------------------------

@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """(key file, its user certificate for root, signed by a fresh CA with the real ssh-keygen, named
    as ssh-keygen names it: key-cert.pub)."""
    ca, key = keygen(tmp_path / "ca"), keygen(tmp_path / "user_key")
    subprocess.run([SSH_KEYGEN, "-q", "-s", str(ca), "-I", "virttui-test", "-n", "root", "-V", "+1h", f"{key}.pub"],
                   check=True, timeout=30, stdin=subprocess.DEVNULL, capture_output=True)
    return key, Path(f"{key}-cert.pub")


@pytest.fixture
def cert_only_host(certificate: tuple[Path, Path]) -> Iterator[tuple[FakeSSHServer, list]]:
    """(server accepting only that certificate, keys offered)."""
    _, cert = certificate
    expected = paramiko.PublicBlob.from_file(str(cert)).key_blob
    offered: list[paramiko.PKey] = []

    def accept(key: paramiko.PKey) -> bool:
        return key.public_blob is not None and key.public_blob.key_blob == expected

    with FakeSSHServer([paramiko.ECDSAKey.generate()], checking_keys(accept, offered)) as server:
        yield server, offered


def _cert_settings(tmp_path: Path, *lines: str) -> str:
    return f"  StrictHostKeyChecking no\n  UserKnownHostsFile {tmp_path}/known\n" + "".join(f"  {x}\n" for x in lines)


def test_a_certificate_file_of_any_name_is_offered_with_its_identity_file_s_key(tmp_path, certificate,
                                                                                cert_only_host):
    key, cert = certificate
    server, offered = cert_only_host
    (tmp_path / "issued").mkdir()
    elsewhere = cert.rename(tmp_path / "issued" / "hv.cert")  # no -cert.pub beside the key: paramiko alone misses it
    decoy = keygen(tmp_path / "decoy")
    hv = transport(tmp_path, server.port, _cert_settings(tmp_path, f"IdentityFile {decoy}", f"IdentityFile {key}",
                                                         f"CertificateFile {elsewhere}"))
    assert connects(hv)
    presented = offered[-1]
    assert presented.public_blob is not None and presented.public_blob.key_type == "ssh-ed25519" + CERT_TYPE
    assert presented.asbytes() == public(key)  # the certificate's key, signing with the key file's private key


def test_without_its_certificate_file_the_key_alone_is_refused(tmp_path, certificate, cert_only_host):
    key, cert = certificate
    server, offered = cert_only_host
    cert.rename(tmp_path / "hv.cert")  # not beside the key any more: nothing pairs it
    with pytest.raises(ConnectionFailed, match="authentication failed"):
        transport(tmp_path, server.port, _cert_settings(tmp_path, f"IdentityFile {key}")).connect()
    assert offered and all(k.public_blob is None or not k.public_blob.key_type.endswith(CERT_TYPE) for k in offered)


def test_a_certificate_named_after_its_key_is_offered_once(tmp_path, certificate, cert_only_host):
    key, cert = certificate
    server, offered = cert_only_host
    assert connects(transport(tmp_path, server.port,
                              _cert_settings(tmp_path, f"IdentityFile {key}", f"CertificateFile {cert}")))
    assert len(offered) == 1 and offered[0].public_blob.key_type.endswith(CERT_TYPE)


def test_a_certificate_of_no_identity_file_is_one_warning_naming_it(tmp_path, certificate, cert_only_host, caplog):
    _, cert = certificate
    server, offered = cert_only_host
    moved = cert.rename(tmp_path / "orphan.cert")
    other = keygen(tmp_path / "other_key")
    for _ in range(2):  # the second attempt does not say it again this run
        with caplog.at_level(logging.WARNING, logger="virttui.drivers.ssh"), \
                pytest.raises(ConnectionFailed, match="authentication failed"):
            transport(tmp_path, server.port,
                      _cert_settings(tmp_path, f"IdentityFile {other}", f"CertificateFile {moved}")).connect()
    warnings = [r.getMessage() for r in caplog.records if "certificate" in r.getMessage()]
    assert len(warnings) == 1 and str(moved) in warnings[0] and "hv1" in warnings[0] and "\n" not in warnings[0]
    assert [k.asbytes() for k in offered] == [public(other)] * 2


# -- the three without an OpenSSH client ---------------------------------------------------------

@pytest.fixture
def no_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert sshresolve.find_ssh() is None


def test_without_ssh_the_three_are_read_and_honoured_without_a_warning(tmp_path, no_ssh, certificate, caplog):
    key, cert = certificate
    config = write(tmp_path / "config", f"Host hv1\n  HashKnownHosts yes\n  IdentityAgent ~/agent-%h.sock\n"
                                        f"  IdentityFile {key}\n  CertificateFile {cert}\n")
    with caplog.at_level(logging.WARNING, logger="virttui.drivers.ssh"):
        target = resolve_target(parse_uri("qemu+ssh://hv1/system"), str(config))
    assert not caplog.records
    assert target.hash_known_hosts and target.certificate_files == (str(cert),)
    assert target.identity_agent == os.path.expanduser("~/agent-hv1.sock")


def test_without_ssh_several_certificate_files_are_named_in_the_warning(tmp_path, no_ssh, caplog):
    config = write(tmp_path / "config", "Host hv1\n  CertificateFile ~/a.cert\nHost *\n  CertificateFile ~/b.cert\n")
    with caplog.at_level(logging.WARNING, logger="virttui.drivers.ssh"):
        resolve_target(parse_uri("qemu+ssh://hv1/system"), str(config))
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "CertificateFile" in warning and str(config) in warning
