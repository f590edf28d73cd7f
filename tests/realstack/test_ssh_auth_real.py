"""HashKnownHosts, IdentityAgent and CertificateFile against the real sshd of the stack's hosts: a
host key saved hashed that OpenSSH's own tools find, a user certificate the real sshd trusts
(TrustedUserCAKeys, the harness's `<run_dir>/authorized_keys.ca`), and the run's key offered only by a
real ssh-agent."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.sshrun import fresh_ssh_run
from support.sshtools import keygen, running_agent

from virttui.cli import main
from virttui.drivers.sshtarget import forget_resolutions

pytestmark = pytest.mark.realstack


@pytest.fixture(autouse=True)
def fresh_run(monkeypatch):  # noqa: ANN001
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with fresh_ssh_run():
        yield


def status(home: Path, alias: str, host, settings: str, capsys) -> tuple[int, dict, str]:  # noqa: ANN001
    (home / ".ssh").mkdir(mode=0o700, exist_ok=True)
    (home / ".ssh" / "config").write_text(f"Host {alias}\n  HostName 127.0.0.1\n  Port {host.ssh_port}\n"
                                          f"  User root\n{settings}")
    code = main(["status", "--json", "-c", f"qemu+ssh://{alias}/system"])
    out = capsys.readouterr()
    return code, json.loads(out.out)["hosts"][0], out.err


@pytest.fixture
def trusted_ca(realstack, tmp_path: Path) -> Iterator[Path]:  # noqa: ANN001
    """A CA whose user certificates the stack's sshds trust, for this test only."""
    ca = keygen(tmp_path / "ca")
    trusted = realstack.run_dir / "authorized_keys.ca"
    shutil.copyfile(f"{ca}.pub", trusted)
    try:
        yield ca
    finally:
        trusted.unlink()


def test_a_certificate_of_an_unauthorised_key_logs_in_and_the_host_key_is_saved_hashed(
        realstack, private_home, tmp_path, trusted_ca, capsys):
    host = realstack.hosts[0]
    key = keygen(tmp_path / "user_key")  # not in authorized_keys: only its certificate gets in
    subprocess.run(["ssh-keygen", "-q", "-s", str(trusted_ca), "-I", "virttui-real", "-n", "root", "-V", "+1h",
                    f"{key}.pub"], check=True, timeout=30, stdin=subprocess.DEVNULL, capture_output=True)
    cert = Path(f"{key}-cert.pub").rename(tmp_path / "hv.cert")  # a name paramiko alone would not pair
    known = tmp_path / "known_hosts"
    settings = (f"  IdentityFile {key}\n  CertificateFile {cert}\n  IdentitiesOnly yes\n"
                f"  UserKnownHostsFile {known}\n  StrictHostKeyChecking accept-new\n  HashKnownHosts yes\n")
    code, reported, err = status(private_home, "hv-cert", host, settings, capsys)
    assert (code, reported["state"]) == (0, "connected"), err
    name = f"[127.0.0.1]:{host.ssh_port}"
    saved = known.read_text()
    assert saved.startswith("|1|") and name not in saved
    found = subprocess.run(["ssh-keygen", "-F", name, "-f", str(known)], capture_output=True, text=True,
                           timeout=30, stdin=subprocess.DEVNULL)
    assert found.returncode == 0 and "found" in found.stdout  # OpenSSH reads the hashed name virttui wrote
    forget_resolutions()
    code, reported, err = status(private_home, "hv-cert", host, settings, capsys)
    assert (code, reported["state"]) == (0, "connected"), err
    assert known.read_text() == saved
    forget_resolutions()
    code, reported, err = status(private_home, "hv-cert", host, settings.replace(f"  CertificateFile {cert}\n", ""),
                                 capsys)
    assert (code, reported["state"]) == (1, "error") and "authentication failed" in reported["error"]


@pytest.fixture
def agent_with_run_key(realstack) -> Iterator[str]:  # noqa: ANN001
    """A real ssh-agent holding the run's client key: its socket."""
    with running_agent(realstack.client_key) as sock:
        yield sock


@pytest.mark.parametrize("agent", ["socket", "none"])
def test_the_run_s_key_from_the_agent_identity_agent_names(realstack, private_home, tmp_path, agent_with_run_key,
                                                            capsys, agent):
    other = keygen(tmp_path / "other_key")  # the only key file: the sshd refuses it
    line = f"  IdentityAgent {agent_with_run_key if agent == 'socket' else 'none'}\n"
    settings = f"  IdentityFile {other}\n{line}  UserKnownHostsFile {realstack.known_hosts}\n"
    code, reported, err = status(private_home, "hv-agent", realstack.hosts[0], settings, capsys)
    if agent == "socket":
        assert (code, reported["state"]) == (0, "connected"), err
    else:
        assert (code, reported["state"]) == (1, "error") and "authentication failed" in reported["error"]
