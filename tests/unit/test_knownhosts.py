"""known_hosts reading and host-key trust, without a network: the strict checks around them."""

from __future__ import annotations

import paramiko
import pytest

from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.knownhosts import load_known_hosts
from virttui.drivers.ssh import SSHTransport
from virttui.drivers.sshhostkeys import UnknownHostKey
from virttui.drivers.uri import parse_uri


@pytest.fixture(scope="module")
def keys() -> tuple[paramiko.PKey, paramiko.PKey]:
    return paramiko.ECDSAKey.generate(), paramiko.ECDSAKey.generate()


def _line(host: str, key: paramiko.PKey) -> str:
    return f"{host} {key.get_name()} {key.get_base64()}\n"


def test_lines_paramiko_cannot_read_are_skipped_one_by_one(tmp_path, keys):
    good, other = keys
    path = tmp_path / "known_hosts"
    path.write_bytes(
        b"# a comment\n"
        + f"@cert-authority *.example.com {other.get_name()} {other.get_base64()}\n".encode()
        + b"hv9 ssh-ed25519 not-base64-at-all\n"
        + b"\xff\xfe latin-1 garbage \xe9\n"
        + _line("[hv1]:2222", good).encode()
    )
    found = paramiko.HostKeys()
    assert load_known_hosts(str(path), found) == frozenset()
    assert found.lookup("[hv1]:2222")[good.get_name()] == good
    assert found.lookup("hv9") is None


def test_a_revoked_key_is_left_out_even_where_a_plain_line_lists_it(tmp_path, keys):
    good, revoked = keys
    path = tmp_path / "known_hosts"
    path.write_text(_line("hv1", revoked) + _line("hv2", good)
                    + f"@revoked * {revoked.get_name()} {revoked.get_base64()}\n")
    found = paramiko.HostKeys()
    assert load_known_hosts(str(path), found) == {revoked.get_base64()}
    assert found.lookup("hv1") is None and found.lookup("hv2") is not None


def test_a_revoked_marker_followed_by_a_tab_still_revokes(tmp_path, keys):
    good, revoked = keys
    path = tmp_path / "known_hosts"
    path.write_text(_line("hv1", revoked) + f"@revoked\thv1 {revoked.get_name()}\t{revoked.get_base64()}\n")
    found = paramiko.HostKeys()
    assert load_known_hosts(str(path), found) == {revoked.get_base64()}
    assert found.lookup("hv1") is None


def test_trusting_a_key_appends_a_line_of_its_own_to_a_file_without_a_final_newline(tmp_path, keys):
    old, new = keys
    path = tmp_path / "known_hosts"
    path.write_text(_line("hv1", old).rstrip("\n"))  # edited by hand: no newline at the end
    transport = SSHTransport(parse_uri(f"qemu+ssh://root@hv2/system?known_hosts={path}"))
    transport.trust_key(UnknownHostKey("hv2", new, str(path)))
    found = paramiko.HostKeys()
    load_known_hosts(str(path), found)
    assert found.lookup("hv1")[old.get_name()] == old and found.lookup("hv2")[new.get_name()] == new


def test_trusting_saves_the_key_the_operator_was_shown_not_a_later_one(tmp_path, keys):
    shown, later = keys
    path = tmp_path / "known_hosts"
    transport = SSHTransport(parse_uri(f"qemu+ssh://root@hv1/system?known_hosts={path}"))
    offered = UnknownHostKey("hv1", shown, str(path))
    transport.pending_key = UnknownHostKey("hv1", later, str(path))  # a retry met another key meanwhile
    transport.trust_key(offered)
    saved = path.read_text()
    assert shown.get_base64() in saved and later.get_base64() not in saved
    assert transport.pending_key is not None  # the other key is still unknown, still to be asked about


@pytest.mark.parametrize("host", ["a..b", "x" * 64 + ".example"])
def test_a_host_name_the_resolver_rejects_is_a_connection_error(host):
    transport = SSHTransport(parse_uri(f"qemu+ssh://root@{host}/system"))
    with pytest.raises(ConnectionFailed, match="cannot connect"):
        transport.connect()
