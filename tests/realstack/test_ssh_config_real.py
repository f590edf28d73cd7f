"""~/.ssh/config as OpenSSH reads it, against the real sshd of the stack's hosts.

The host is named only by an alias in the URI (no keyfile, no known_hosts): where it is, as whom
and with which key and known_hosts file all come from a config.d file the config Includes, which
paramiko's parser alone does not follow. The host-key rules the config chooses are checked on the
real server too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from support.sshrun import fresh_ssh_run

from virttui.cli import main
from virttui.drivers.sshtarget import forget_resolutions

pytestmark = pytest.mark.realstack


@pytest.fixture(autouse=True)
def fresh_run():
    with fresh_ssh_run():
        yield


def ssh_config(home: Path, alias: str, host, client_key: str, settings: str,  # noqa: ANN001
               *, included: bool = True) -> None:
    """~/.ssh/config Including config.d/*.conf, whose hv.conf says how to reach alias (or, not
    included, the config saying it itself)."""
    ssh_dir = home / ".ssh"
    (ssh_dir / "config.d").mkdir(parents=True, mode=0o700)
    block = (f"Host {alias}\n  HostName 127.0.0.1\n  Port {host.ssh_port}\n  User root\n"
             f"  IdentityFile {client_key}\n{settings}")
    if not included:
        (ssh_dir / "config").write_text(block)
        return
    # absolute: HOME here is the test's own, and ssh resolves a relative Include from the account's home
    (ssh_dir / "config").write_text(f"Include {ssh_dir}/config.d/*.conf\n")
    (ssh_dir / "config.d" / "hv.conf").write_text(block)


def status(alias: str, capsys, *extra: str) -> tuple[int, dict, str]:  # noqa: ANN001
    code = main([*extra, "status", "--json", "-c", f"qemu+ssh://{alias}/system"])
    out = capsys.readouterr()
    return code, json.loads(out.out)["hosts"][0], out.err


def domain_names(host) -> set[str]:  # noqa: ANN001
    return {host.virsh("domname", uuid).strip() for uuid in host.virsh("list", "--all", "--uuid").split()}


def test_an_alias_from_an_included_config_d_file_connects(realstack, private_home, capsys):
    host = realstack.hosts[0]
    host.define_guest("vttest-sshcfg")
    try:
        ssh_config(private_home, "hv-included", host, realstack.client_key,
                   f"  UserKnownHostsFile {realstack.known_hosts}\n")
        code, reported, err = status("hv-included", capsys)
        assert (code, reported["state"]) == (0, "connected"), err
        assert {d["name"] for d in reported["domains"]} == domain_names(host)
        assert "vttest-sshcfg" in {d["name"] for d in reported["domains"]}
    finally:
        host.undefine_guest("vttest-sshcfg")


def test_strict_yes_refuses_an_unknown_key_without_asking(realstack, private_home, tmp_path, capsys):
    known = tmp_path / "known_hosts"
    ssh_config(private_home, "hv-strict", realstack.hosts[0], realstack.client_key,
               f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking yes\n")
    code, reported, err = status("hv-strict", capsys)
    assert (code, reported["state"]) == (1, "error")
    assert "StrictHostKeyChecking yes" in reported["error"] and "\n" not in reported["error"]
    assert not known.exists()


def test_accept_new_saves_the_key_then_refuses_a_changed_one(realstack, private_home, tmp_path, capsys):
    host, other = realstack.hosts
    known = tmp_path / "known_hosts"
    ssh_config(private_home, "hv-new", host, realstack.client_key,
               f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking accept-new\n")
    code, reported, err = status("hv-new", capsys)
    assert (code, reported["state"]) == (0, "connected"), err
    mine = [line for line in open(realstack.known_hosts) if line.startswith(f"[127.0.0.1]:{host.ssh_port} ")]
    assert [line.split()[2] for line in known.read_text().splitlines()] == [mine[0].split()[2]]
    # the other host's key on file for this one: what a man in the middle would look like
    theirs = [line for line in open(realstack.known_hosts) if line.startswith(f"[127.0.0.1]:{other.ssh_port} ")]
    known.write_text("".join(line.replace(f":{other.ssh_port} ", f":{host.ssh_port} ", 1) for line in theirs))
    forget_resolutions()
    code, reported, err = status("hv-new", capsys)
    assert (code, reported["state"]) == (1, "error") and "CHANGED" in reported["error"]


def test_host_key_alias_finds_the_key_under_the_alias(realstack, private_home, tmp_path, capsys):
    host = realstack.hosts[0]
    known = tmp_path / "known_hosts"
    mine = [line for line in open(realstack.known_hosts) if line.startswith(f"[127.0.0.1]:{host.ssh_port} ")]
    known.write_text("".join("hv-cluster-key " + line.split(" ", 1)[1] for line in mine))
    ssh_config(private_home, "hv-aliased", host, realstack.client_key,
               f"  UserKnownHostsFile {known}\n  HostKeyAlias hv-cluster-key\n  StrictHostKeyChecking yes\n")
    code, reported, err = status("hv-aliased", capsys)
    assert (code, reported["state"]) == (0, "connected"), err


def test_strict_no_connects_unverified_with_the_no_verify_warning(realstack, private_home, tmp_path, capsys):
    known = tmp_path / "known_hosts"
    log = tmp_path / "virttui.log"
    ssh_config(private_home, "hv-unverified", realstack.hosts[0], realstack.client_key,
               f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking no\n")
    root = logging.getLogger()
    before = list(root.handlers)
    try:
        code, reported, err = status("hv-unverified", capsys, "--log", str(log))
    finally:
        for handler in [h for h in root.handlers if h not in before]:  # the log main() opened
            root.removeHandler(handler)
            handler.close()
    assert (code, reported["state"]) == (0, "connected"), err
    assert not known.exists()
    assert (f"WARNING virttui.drivers.ssh: accepting the unverified host key of "
            f"[127.0.0.1]:{realstack.hosts[0].ssh_port} (StrictHostKeyChecking no)") in log.read_text()


def test_an_unreachable_jump_host_fails_the_host_and_never_connects_directly(realstack, private_home, capsys):
    """Everything else would reach the host directly (paramiko's parser reads this config whole):
    the bastion the config mandates must not be bypassed, even when it cannot be reached.
    Jump hosts that can be reached: test_ssh_proxyjump_real.py."""
    host = realstack.hosts[0]
    log = host.dir / "logs/sshd.log"
    before = log.read_text(errors="replace").count("Accepted publickey for ")
    ssh_config(private_home, "hv-behind", host, realstack.client_key,
               f"  UserKnownHostsFile {realstack.known_hosts}\n  ProxyJump root@bastion.invalid\n", included=False)
    code, reported, err = status("hv-behind", capsys)
    assert (code, reported["state"], reported["domains"]) == (1, "error", [])
    assert "cannot reach bastion.invalid (jump to hv-behind)" in reported["error"] and "\n" not in reported["error"]
    assert log.read_text(errors="replace").count("Accepted publickey for ") == before
