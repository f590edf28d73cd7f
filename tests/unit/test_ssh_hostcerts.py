"""Host certificates: paramiko cannot verify them, so a host whose known_hosts files trust a CA for
it (`@cert-authority`, matched by OpenSSH's host pattern rules) goes through the system ssh, which
does. The patterns, the choice (resolved once, with the real `ssh -G`) and what ssh is told.
The certificates themselves, good and bad, against a real sshd: tests/realstack/test_ssh_hostcert_real.py."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from support.sshrun import fresh_ssh_run

from virttui.drivers import openssh, sshresolve, sshtarget
from virttui.drivers.knownhosts import cert_authority_line, host_field_matches
from virttui.drivers.sshclients import choose_ssh_clients, ssh_client_to_use
from virttui.drivers.uri import parse_uri

CA_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKf0NW2iQzAmVFTZyF5KA6QCa2uV0h3b7mnN7QMHWjqw"


@pytest.fixture(autouse=True)
def fresh_run(private_home: Path) -> Iterator[None]:
    with fresh_ssh_run():
        yield
    choose_ssh_clients()


# -- host patterns, as OpenSSH's match_hostname reads them ---------------------------------------

@pytest.mark.parametrize("field, name, matches", [
    ("hv1", "hv1", True),
    ("hv1", "hv10", False),
    ("HV1.Example.COM", "hv1.example.com", True),  # case-insensitive
    ("*.example.com", "hv1.example.com", True),
    ("*.example.com", "example.com", False),
    ("hv?", "hv7", True),
    ("hv?", "hv77", False),
    ("*", "[10.0.0.1]:2222", True),
    ("other,*.example.com", "hv1.example.com", True),  # a comma list
    ("*.example.com,!bad.example.com", "bad.example.com", False),  # a negation wins
    ("!bad.example.com,*.example.com", "bad.example.com", False),  # wherever it stands
    ("*.example.com,!bad.example.com", "good.example.com", True),
    ("!bad.example.com", "good.example.com", False),  # a negation alone matches nothing
    ("[hv1]:2222", "[hv1]:2222", True),  # the port form: brackets are plain characters
    ("[hv1]:2222", "hv1", False),
    ("hv1", "[hv1]:2222", False),
    ("[hv?]:*", "[hv1]:2222", True),
    ("[hv1]:22", "[hv1]:2222", False),
    ("h.1", "hx1", False),  # a dot is a dot
    (",,", "hv1", False),
])
def test_host_patterns(field, name, matches):
    assert host_field_matches(field, name) is matches


def test_a_hashed_field_names_its_one_host():
    hashed = paramiko.HostKeys.hash_host("[hv1]:2222")
    assert host_field_matches(hashed, "[hv1]:2222")
    assert not host_field_matches(hashed, "[hv1]:2223") and not host_field_matches(hashed, "hv1")
    assert not host_field_matches("|1|not base64|x", "hv1") and not host_field_matches("|1|", "hv1")


def test_only_a_cert_authority_line_counts_and_its_number_is_told(tmp_path):
    path = tmp_path / "known_hosts"
    path.write_bytes(
        b"# @cert-authority hv1 " + CA_KEY.encode() + b"\n"
        + b"hv1 " + CA_KEY.encode() + b"\n"  # a plain key
        + b"@revoked hv1 " + CA_KEY.encode() + b"\n"
        + b"@cert-authority hv1\n"  # no key: not a line ssh reads
        + b"\xff\xfe not utf-8 \xe9\n"
        + b"@cert-authority\t*.example.com,!bad.example.com\t" + CA_KEY.encode() + b" ca@example\n"
        + b"@cert-authority " + paramiko.HostKeys.hash_host("[hv2]:2222").encode() + b" " + CA_KEY.encode() + b"\n")
    assert cert_authority_line(str(path), "hv1") is None
    assert cert_authority_line(str(path), "hv1.example.com") == 6
    assert cert_authority_line(str(path), "bad.example.com") is None
    assert cert_authority_line(str(path), "[hv2]:2222") == 7


def test_a_file_that_cannot_be_read_is_an_oserror(tmp_path):
    with pytest.raises(OSError):
        cert_authority_line(str(tmp_path), "hv1")  # a directory
    huge = tmp_path / "huge"
    with open(huge, "wb") as handle:
        handle.truncate(17 * 1024 * 1024)  # over read_bounded's 16 MiB
    with pytest.raises(OSError, match="larger than"):
        cert_authority_line(str(huge), "hv1")


# -- the choice ----------------------------------------------------------------------------------

def _choice(uri: str) -> str:
    return ssh_client_to_use(uri, parse_uri(uri))


def _known(tmp_path: Path, field: str) -> Path:
    path = tmp_path / "known_hosts"
    path.write_text(f"hv0 {CA_KEY}\n@cert-authority {field} {CA_KEY}\n")
    return path


@pytest.mark.parametrize("field, chosen", [
    ("[hv1]:2222", "openssh"), ("[*]:2222", "openssh"), ("hv1", "paramiko"), ("[hv1]:22", "paramiko"),
    ("*,![hv1]:2222", "paramiko"),
])
def test_a_host_a_ca_is_trusted_for_goes_through_openssh_with_one_info_line(tmp_path, caplog, field, chosen):
    known = _known(tmp_path, field)
    uri = f"qemu+ssh://root@hv1:2222/system?known_hosts={known}"
    with caplog.at_level(logging.INFO, logger="virttui.drivers.ssh"):
        assert _choice(uri) == chosen
    said = [record for record in caplog.records if record.name == "virttui.drivers.ssh"]
    if chosen == "openssh":
        assert len(said) == 1 and said[0].levelno == logging.INFO
        assert said[0].getMessage() == (f"{uri}: connecting with the OpenSSH client (ssh): {known}:2 trusts a "
                                        f"certificate authority for [hv1]:2222, and only ssh verifies host "
                                        f"certificates")
    else:
        assert said == []


def test_the_name_is_the_host_key_alias_or_the_host_name_at_port_22(tmp_path, private_home):
    known = tmp_path / "known_hosts"
    known.write_text(f"@cert-authority hv-cluster,10.0.0.9 {CA_KEY}\n")
    (private_home / ".ssh").mkdir()
    (private_home / ".ssh" / "config").write_text(
        f"Host aliased\n  HostName 10.0.0.5\n  HostKeyAlias hv-cluster\n  UserKnownHostsFile {known}\n"
        f"Host named\n  HostName 10.0.0.9\n  UserKnownHostsFile {known}\n"
        f"Host other\n  HostName 10.0.0.5\n  UserKnownHostsFile {known}\n")
    assert _choice("qemu+ssh://aliased/system") == "openssh"
    assert _choice("qemu+ssh://named/system") == "openssh"  # HostName, as ssh looks it up
    assert _choice("qemu+ssh://other/system") == "paramiko"


def test_a_jump_host_a_ca_is_trusted_for_takes_its_host_through_openssh(tmp_path, private_home, caplog):
    known = tmp_path / "bastion_known_hosts"
    known.write_text(f"@cert-authority 10.0.0.7 {CA_KEY}\n")
    (private_home / ".ssh").mkdir()
    (private_home / ".ssh" / "config").write_text(
        f"Host hv1\n  ProxyJump bastion\n  UserKnownHostsFile {tmp_path}/hv1_known_hosts\n"
        f"Host bastion\n  HostName 10.0.0.7\n  UserKnownHostsFile {known}\n"
        f"Host hv2\n  UserKnownHostsFile {known}\n")
    with caplog.at_level(logging.INFO, logger="virttui.drivers.ssh"):
        assert _choice("qemu+ssh://hv1/system") == "openssh"
    assert f"{known}:1 trusts a certificate authority for 10.0.0.7" in caplog.text
    assert _choice("qemu+ssh://hv2/system") == "paramiko"  # the same file, but not for hv2


def test_the_host_is_resolved_once_for_the_choice_and_its_transport(tmp_path, monkeypatch):
    from virttui.drivers.registry import open_driver

    calls = []
    real = sshtarget.run_ssh_g
    monkeypatch.setattr(sshtarget, "run_ssh_g", lambda argv: calls.append(argv) or real(argv))
    known = _known(tmp_path, "[hv1]:2222")
    driver = open_driver(f"qemu+ssh://root@hv1:2222/system?known_hosts={known}")
    assert isinstance(driver.transport, openssh.OpenSSHTransport)  # type: ignore[attr-defined]
    assert len(calls) == 1
    plain = open_driver("qemu+ssh://root@hv3:2222/system?known_hosts=" + str(known))
    assert not isinstance(plain.transport, openssh.OpenSSHTransport)  # type: ignore[attr-defined]


def test_a_host_configured_for_openssh_is_not_resolved_for_the_choice(tmp_path, monkeypatch):
    monkeypatch.setattr(sshtarget, "run_ssh_g", lambda argv: pytest.fail("resolved"))
    choose_ssh_clients("openssh")
    assert _choice("qemu+ssh://root@hv1:2222/system") == "openssh"


def test_an_unreadable_file_leaves_the_configured_client(tmp_path):
    folder = tmp_path / "known_hosts"
    folder.mkdir()  # the paramiko transport reports it when it connects
    assert _choice(f"qemu+ssh://root@hv1:2222/system?known_hosts={folder}") == "paramiko"
    assert _choice(f"qemu+ssh://root@hv1:2222/system?known_hosts={tmp_path}/absent") == "paramiko"


def test_without_ssh_the_host_stays_on_paramiko_with_a_warning(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sshresolve, "find_ssh", lambda: None)
    monkeypatch.setattr(sshtarget, "find_ssh", lambda: None)
    known = _known(tmp_path, "[hv1]:2222")
    with caplog.at_level(logging.INFO, logger="virttui.drivers.ssh"):
        assert _choice(f"qemu+ssh://root@hv1:2222/system?known_hosts={known}") == "paramiko"
    assert [record.levelno for record in caplog.records if record.name == "virttui.drivers.ssh"] == [logging.WARNING]
    assert "no OpenSSH client (ssh) is installed" in caplog.text


# -- what ssh is told: the CA's file read, strict checking, its own host key algorithms ------------

def test_ssh_reads_the_cert_authority_file_strictly_with_its_own_algorithms(tmp_path):
    known = _known(tmp_path, "[hv1]:2222")
    uri = parse_uri(f"qemu+ssh://root@hv1:2222/system?known_hosts={known}")
    target = sshtarget.resolve_target(uri)
    argv = openssh.master_argv("/usr/bin/ssh", uri, target, (), "/run/d/ctl", "/run/d/accepted", 10.0)
    opts = dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "-o")
    assert opts["StrictHostKeyChecking"] == "yes" and opts["UserKnownHostsFile"] == str(known)
    assert opts["GlobalKnownHostsFile"] == os.devnull
    assert not any(name.lower() in ("hostkeyalgorithms", "hostbasedacceptedalgorithms") for name in opts)


@pytest.mark.parametrize("reason", ["expired", "name is not a listed principal"])
def test_a_refused_certificate_is_one_line_naming_the_host_and_why(reason):
    stderr = (f"Certificate invalid: {reason}\r\nNo ED25519 host key is known for [127.0.0.1]:22 and you have "
              f"requested strict checking.\r\nHost key verification failed.\r\n").encode()
    message = openssh.explain_ssh_failure(stderr, "hv1")
    assert message == f"hv1: host certificate refused ({reason}) and its key is not in known_hosts, refusing to connect"
