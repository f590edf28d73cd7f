"""Host certificates against the real sshd of the stack's hosts (the harness's `HostCertificate
<host_key>-cert.pub`, which each connection's sshd reads afresh): a known_hosts file that trusts only
a CA, `@cert-authority [127.0.0.1]:PORT`, and no plain key. paramiko cannot verify certificates, so
virttui takes such a host through the system ssh by itself (the configured client is paramiko here);
a certificate of that CA connects, one of another CA, an expired one, one for another principal and
one of a revoked CA are refused in one line naming the host."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.sshrun import fresh_ssh_run
from support.sshtools import keygen

from virttui.cli import main

pytestmark = pytest.mark.realstack

Install = Callable[..., None]


@pytest.fixture(autouse=True)
def fresh_run():
    with fresh_ssh_run():
        yield


@pytest.fixture
def ca(tmp_path: Path) -> Path:
    return keygen(tmp_path / "ca")


@pytest.fixture
def host_cert(realstack, tmp_path: Path) -> Iterator[Install]:  # noqa: ANN001
    """install(ca, principal=..., validity=...): the first host's key certified by that CA, in place
    for this test only (the other tests see the host without a certificate again)."""
    host = realstack.hosts[0]
    installed = host.dir / "ssh" / "host_key-cert.pub"
    made = []

    def install(signer: Path, *, principal: str = "127.0.0.1", validity: str = "+1h") -> None:
        public = tmp_path / f"host_key{len(made)}.pub"
        shutil.copyfile(host.dir / "ssh" / "host_key.pub", public)
        subprocess.run(["ssh-keygen", "-q", "-s", str(signer), "-h", "-I", f"{host.name}-test", "-n", principal,
                        "-V", validity, str(public)], check=True, timeout=30, stdin=subprocess.DEVNULL,
                       capture_output=True)
        made.append(public)
        shutil.copyfile(tmp_path / f"host_key{len(made) - 1}-cert.pub", installed)

    try:
        yield install
    finally:
        installed.unlink(missing_ok=True)


@pytest.fixture
def run(realstack, tmp_path: Path, capsys, caplog) -> Callable[..., tuple[int, dict, list[str]]]:  # noqa: ANN001
    """run(ca, revoked=None): virttui's status of the first host, whose known_hosts trusts that CA alone
    (and revokes `revoked`); (exit code, the host's report, the log lines saying why ssh was used)."""
    host = realstack.hosts[0]

    def call(trusted: Path, revoked: Path | None = None) -> tuple[int, dict, list[str]]:
        known = tmp_path / "known_hosts"
        lines = [f"@cert-authority [127.0.0.1]:{host.ssh_port} {_key(trusted)}"]
        if revoked is not None:
            lines.append(f"@revoked * {_key(revoked)}")
        known.write_text("\n".join(lines) + "\n")
        uri = (f"qemu+ssh://root@127.0.0.1:{host.ssh_port}/system"
               f"?keyfile={realstack.client_key}&known_hosts={known}")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="virttui.drivers.ssh"):
            code = main(["status", "--json", "-c", uri])
        why = [r.getMessage() for r in caplog.records if "certificate authority" in r.getMessage()]
        return code, json.loads(capsys.readouterr().out)["hosts"][0], why

    return call


def _key(ca: Path) -> str:
    return " ".join(Path(f"{ca}.pub").read_text().split()[:2])


def test_a_certificate_of_the_trusted_ca_connects_through_ssh_on_its_own(realstack, ca, host_cert, run):
    host_cert(ca)
    code, reported, why = run(ca)
    assert (code, reported["state"]) == (0, "connected"), reported.get("error")
    assert len(why) == 1 and "connecting with the OpenSSH client (ssh)" in why[0]
    assert f"[127.0.0.1]:{realstack.hosts[0].ssh_port}" in why[0]


@pytest.mark.parametrize("case, reason", [
    ("another CA", "not in known_hosts"),
    ("expired", "host certificate refused (expired)"),
    ("another principal", "host certificate refused (name is not a listed principal)"),
    ("revoked CA", "@revoked"),
    ("no certificate", "not in known_hosts"),
])
def test_a_certificate_ssh_cannot_verify_is_refused_in_one_line(realstack, tmp_path, ca, host_cert, run,
                                                                 case, reason):
    if case == "another CA":
        host_cert(keygen(tmp_path / "other_ca"))
    elif case == "expired":
        host_cert(ca, validity="20200101:20200102")
    elif case == "another principal":
        host_cert(ca, principal="hv-other.example.com")
    elif case == "revoked CA":
        host_cert(ca)
    code, reported, why = run(ca, revoked=ca if case == "revoked CA" else None)
    assert (code, reported["state"]) == (1, "error")
    error = reported["error"]
    assert "127.0.0.1" in error and reason in error and "\n" not in error, error
    assert len(why) == 1  # still chosen: the system ssh refused it
