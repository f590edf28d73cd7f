"""Jump hosts and ProxyCommand against real sshd: the stack's hosts reached through one or two
bastions (tests/realstack/harness.py `Bastion`: sshd only, TCP forwarding on, DEBUG1 log).

Each host is named only by an alias in the URI; ~/.ssh/config says where it is, through which
bastion, with which key and which known_hosts file, for the host and for each hop. What proves that
virttui went through a bastion is the bastion's own log: the forwarded connection to the host's
port (`server_request_direct_tcpip ... target 127.0.0.1 port N`) and the logins it accepted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from support.sshrun import fresh_ssh_run

from virttui.cli import main
from virttui.drivers.errors import ConnectionFailed, InvalidURI
from virttui.drivers.registry import open_driver
from virttui.drivers.sshbastions import open_links
from virttui.drivers.sshtarget import forget_resolutions

pytestmark = pytest.mark.realstack

BOUND = 15.0  # seconds: every failure below must come well within the 10 s connect timeout and change


@pytest.fixture(autouse=True)
def fresh_run():
    with fresh_ssh_run():
        yield
    assert open_links() == 0  # every test's connections closed, bastions' included


def block(alias: str, port: int, key: str, *settings: str) -> str:
    lines = [f"Host {alias}", "  HostName 127.0.0.1", f"  Port {port}", "  User root", f"  IdentityFile {key}",
             "  IdentitiesOnly yes", *(f"  {line}" for line in settings)]
    return "\n".join(lines) + "\n"


def ssh_config(home: Path, *blocks: str) -> Path:
    """~/.ssh/config made of these Host blocks; returns its path."""
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    path = ssh_dir / "config"
    path.write_text("".join(blocks))
    return path


def known_hosts(path: Path, *lines: str) -> Path:
    path.write_text("".join(lines))
    return path


def host_lines(realstack, host) -> list[str]:  # noqa: ANN001
    return [line for line in open(realstack.known_hosts) if line.startswith(f"[127.0.0.1]:{host.ssh_port} ")]


def status(capsys, *aliases: str) -> tuple[int, list[dict], str, float]:  # noqa: ANN001
    argv = ["status", "--json"]
    for alias in aliases:
        argv += ["-c", f"qemu+ssh://{alias}/system"]
    began = time.monotonic()
    code = main(argv)
    took = time.monotonic() - began
    out = capsys.readouterr()
    return code, json.loads(out.out)["hosts"], out.err, took


def domain_names(host) -> set[str]:  # noqa: ANN001
    return {host.virsh("domname", uuid).strip() for uuid in host.virsh("list", "--all", "--uuid").split()}


def failed_in_one_line(code: int, reported: dict, took: float) -> str:
    assert (code, reported["state"], reported["domains"]) == (1, "error", [])
    assert "\n" not in reported["error"] and "Traceback" not in reported["error"]
    assert took < BOUND, f"took {took:.1f} s: {reported['error']}"
    return reported["error"]


# -- through one and two jump hosts ----------------------------------------------------------------

def test_one_hop_proxyjump_goes_through_the_bastion(realstack, bastions, private_home, tmp_path, capsys, ssh_client):
    host, bastion = realstack.hosts[0], bastions[0]
    host.define_guest("vttest-jump1")
    try:
        known = known_hosts(tmp_path / "known_hosts", *host_lines(realstack, host), bastion.known_hosts_line())
        key = realstack.client_key
        ssh_config(private_home,
                   block("hv-behind", host.ssh_port, key, f"UserKnownHostsFile {known}", "ProxyJump jb1"),
                   block("jb1", bastion.ssh_port, key, f"UserKnownHostsFile {known}"))
        mark = bastion.log_size()
        code, (reported,), err, took = status(capsys, "hv-behind")
        assert (code, reported["state"]) == (0, "connected"), err
        assert "vttest-jump1" in {d["name"] for d in reported["domains"]}
        assert {d["name"] for d in reported["domains"]} == domain_names(host)
        assert bastion.forwarded_to(host.ssh_port, mark) == 1  # the host was reached from the bastion
        assert bastion.logins(mark) == 1
        print(f"one hop: status in {took:.2f} s")
    finally:
        host.undefine_guest("vttest-jump1")


def test_two_hop_chain_goes_through_both_bastions_in_order(realstack, bastions, private_home, tmp_path, capsys, ssh_client):
    host, (first, second) = realstack.hosts[1], bastions
    known = known_hosts(tmp_path / "known_hosts", *host_lines(realstack, host), first.known_hosts_line(),
                        second.known_hosts_line())
    key = realstack.client_key
    ssh_config(private_home,
               block("hv-far", host.ssh_port, key, f"UserKnownHostsFile {known}", "ProxyJump jb1,jb2"),
               block("jb1", first.ssh_port, key, f"UserKnownHostsFile {known}"),
               block("jb2", second.ssh_port, key, f"UserKnownHostsFile {known}", "ProxyJump nowhere.invalid"))
    marks = first.log_size(), second.log_size()
    code, (reported,), err, took = status(capsys, "hv-far")
    assert (code, reported["state"]) == (0, "connected"), err
    assert {d["name"] for d in reported["domains"]} == domain_names(host)
    # jb1 forwarded to jb2 and jb2 to the host (jb2's own ProxyJump is ignored, as ssh -J does)
    assert (first.forwarded_to(second.ssh_port, marks[0]), first.forwarded_to(host.ssh_port, marks[0])) == (1, 0)
    assert (second.forwarded_to(host.ssh_port, marks[1]), second.logins(marks[1])) == (1, 1)
    print(f"two hops: status in {took:.2f} s")


def test_the_first_hop_follows_its_own_proxyjump(realstack, bastions, private_home, tmp_path, capsys):
    host, (first, second) = realstack.hosts[0], bastions
    known = known_hosts(tmp_path / "known_hosts", *host_lines(realstack, host), first.known_hosts_line(),
                        second.known_hosts_line())
    key = realstack.client_key
    ssh_config(private_home,
               block("hv-nested", host.ssh_port, key, f"UserKnownHostsFile {known}", "ProxyJump jb2"),
               block("jb2", second.ssh_port, key, f"UserKnownHostsFile {known}", "ProxyJump jb1"),
               block("jb1", first.ssh_port, key, f"UserKnownHostsFile {known}"))
    marks = first.log_size(), second.log_size()
    code, (reported,), err, _ = status(capsys, "hv-nested")
    assert (code, reported["state"]) == (0, "connected"), err
    assert first.forwarded_to(second.ssh_port, marks[0]) == 1
    assert second.forwarded_to(host.ssh_port, marks[1]) == 1


def test_the_first_hop_follows_its_own_proxycommand(realstack, bastions, private_home, tmp_path, capsys):
    host, (first, second) = realstack.hosts[1], bastions
    known = known_hosts(tmp_path / "known_hosts", *host_lines(realstack, host), first.known_hosts_line(),
                        second.known_hosts_line())
    key = realstack.client_key
    config = private_home / ".ssh" / "config"  # ssh reads the account's ~/.ssh, not this test's HOME: -F
    ssh_config(private_home,
               block("hv-hopcmd", host.ssh_port, key, f"UserKnownHostsFile {known}", "ProxyJump jb1"),
               block("jb1", first.ssh_port, key, f"UserKnownHostsFile {known}",
                     f"ProxyCommand ssh -F {config} -o BatchMode=yes -W %h:%p jb2"),
               block("jb2", second.ssh_port, key, f"UserKnownHostsFile {known}"))
    marks = first.log_size(), second.log_size()
    code, (reported,), err, _ = status(capsys, "hv-hopcmd")
    assert (code, reported["state"]) == (0, "connected"), err
    assert second.forwarded_to(first.ssh_port, marks[1]) == 1  # jb1 reached by its command, through jb2
    assert first.forwarded_to(host.ssh_port, marks[0]) == 1


def test_proxycommand_with_openssh_w_reaches_the_host(realstack, bastions, private_home, tmp_path, capsys):
    host, bastion = realstack.hosts[0], bastions[0]
    known = known_hosts(tmp_path / "known_hosts", *host_lines(realstack, host), bastion.known_hosts_line())
    key = realstack.client_key
    config = private_home / ".ssh" / "config"  # ssh reads the account's ~/.ssh, not this test's HOME: -F
    ssh_config(private_home,
               block("hv-cmd", host.ssh_port, key, f"UserKnownHostsFile {known}",
                     f"ProxyCommand ssh -F {config} -o BatchMode=yes -W %h:%p jb1"),
               block("jb1", bastion.ssh_port, key, f"UserKnownHostsFile {known}", "StrictHostKeyChecking yes"))
    mark = bastion.log_size()
    code, (reported,), err, took = status(capsys, "hv-cmd")
    assert (code, reported["state"]) == (0, "connected"), err
    assert {d["name"] for d in reported["domains"]} == domain_names(host)
    assert bastion.forwarded_to(host.ssh_port, mark) == 1
    print(f"ProxyCommand: status in {took:.2f} s")


def test_each_hop_checks_its_own_known_hosts_file_and_host_key_alias(realstack, bastions, private_home, tmp_path,
                                                                     capsys):
    """The bastion's key only in the bastion's file, the host's only in the host's (under its
    HostKeyAlias); StrictHostKeyChecking yes: either file read for the other hop would refuse."""
    host, bastion = realstack.hosts[1], bastions[0]
    hosts_file = known_hosts(tmp_path / "hv_known", *("hv-cluster-key " + line.split(" ", 1)[1]
                                                      for line in host_lines(realstack, host)))
    bastion_file = known_hosts(tmp_path / "bastion_known", bastion.known_hosts_line())
    key = realstack.client_key
    ssh_config(private_home,
               block("hv-aliased", host.ssh_port, key, f"UserKnownHostsFile {hosts_file}",
                     "GlobalKnownHostsFile /dev/null", "HostKeyAlias hv-cluster-key", "StrictHostKeyChecking yes",
                     "ProxyJump jb1"),
               block("jb1", bastion.ssh_port, key, f"UserKnownHostsFile {bastion_file}",
                     "GlobalKnownHostsFile /dev/null", "StrictHostKeyChecking yes"))
    mark = bastion.log_size()
    code, (reported,), err, _ = status(capsys, "hv-aliased")
    assert (code, reported["state"]) == (0, "connected"), err
    assert bastion.forwarded_to(host.ssh_port, mark) == 1
    # swapped, each hop meets a key its file does not have and refuses: the files are per hop indeed
    ssh_config(private_home,
               block("hv-aliased", host.ssh_port, key, f"UserKnownHostsFile {bastion_file}",
                     "GlobalKnownHostsFile /dev/null", "HostKeyAlias hv-cluster-key", "StrictHostKeyChecking yes",
                     "ProxyJump jb1"),
               block("jb1", bastion.ssh_port, key, f"UserKnownHostsFile {hosts_file}",
                     "GlobalKnownHostsFile /dev/null", "StrictHostKeyChecking yes"))
    forget_resolutions()
    code, (reported,), err, took = status(capsys, "hv-aliased")
    error = failed_in_one_line(code, reported, took)
    assert "cannot reach jb1 (jump to hv-aliased)" in error and "StrictHostKeyChecking yes" in error


# -- the bastion's host key ------------------------------------------------------------------------

def test_an_unknown_bastion_key_asks_naming_the_bastion_and_is_saved_to_its_file(realstack, bastions, private_home,
                                                                                 tmp_path, capsys):
    host, bastion = realstack.hosts[0], bastions[0]
    hosts_file = known_hosts(tmp_path / "hv_known", *host_lines(realstack, host))
    bastion_file = tmp_path / "bastion_known"  # empty: the bastion's key is unknown
    key = realstack.client_key
    ssh_config(private_home,
               block("hv-trust", host.ssh_port, key, f"UserKnownHostsFile {hosts_file}", "ProxyJump jb1"),
               block("jb1", bastion.ssh_port, key, f"UserKnownHostsFile {bastion_file}"))
    mark = bastion.log_size()
    code, (reported,), err, took = status(capsys, "hv-trust")
    error = failed_in_one_line(code, reported, took)
    assert error.startswith("jb1 (jump to hv-trust): unknown SSH host key ssh-ed25519 SHA256:"), error
    assert str(bastion_file) in error
    driver = open_driver("qemu+ssh://hv-trust/system")
    try:
        with pytest.raises(ConnectionFailed):
            driver.connect()
        pending = driver.pending_host_key()
        assert pending is not None
        assert (pending.label, pending.host, pending.known_hosts) == (
            "jb1 (jump to hv-trust)", f"[127.0.0.1]:{bastion.ssh_port}", str(bastion_file))
        assert bastion.forwarded_to(host.ssh_port, mark) == 0  # nothing went past an unverified bastion
        driver.trust_host_key(pending)  # what the console's trust dialog does on "Trust"
        assert bastion_file.read_text() == bastion.known_hosts_line()
        assert hosts_file.read_text() == "".join(host_lines(realstack, host))  # the host's file untouched
        driver.connect()
        assert driver.pending_host_key() is None
        assert bastion.forwarded_to(host.ssh_port, mark) == 1
    finally:
        driver.close()


def test_a_changed_bastion_key_is_refused_naming_the_bastion(realstack, bastions, private_home, tmp_path, capsys):
    host, (bastion, other) = realstack.hosts[0], bastions
    known = known_hosts(tmp_path / "known_hosts", *host_lines(realstack, host),
                        other.known_hosts_line(f"[127.0.0.1]:{bastion.ssh_port}"))  # a man in the middle's look
    key = realstack.client_key
    ssh_config(private_home,
               block("hv-mitm", host.ssh_port, key, f"UserKnownHostsFile {known}", "ProxyJump jb1"),
               block("jb1", bastion.ssh_port, key, f"UserKnownHostsFile {known}"))
    mark = bastion.log_size()
    code, (reported,), err, took = status(capsys, "hv-mitm")
    error = failed_in_one_line(code, reported, took)
    assert (f"cannot reach jb1 (jump to hv-mitm): the SSH host key of [127.0.0.1]:{bastion.ssh_port} "
            f"has CHANGED") in error
    assert bastion.logins(mark) == 0 and bastion.forwarded_to(host.ssh_port, mark) == 0


# -- one bastion connection for every host behind it -----------------------------------------------

def test_two_hosts_behind_one_bastion_share_one_bastion_connection(realstack, bastions, private_home, tmp_path,
                                                                   capsys):
    (one, two), bastion = realstack.hosts, bastions[0]
    known = known_hosts(tmp_path / "known_hosts", *host_lines(realstack, one), *host_lines(realstack, two),
                        bastion.known_hosts_line())
    key = realstack.client_key
    ssh_config(private_home,
               block("hv-one", one.ssh_port, key, f"UserKnownHostsFile {known}", "ProxyJump jb1"),
               block("hv-two", two.ssh_port, key, f"UserKnownHostsFile {known}", "ProxyJump jb1"),
               block("jb1", bastion.ssh_port, key, f"UserKnownHostsFile {known}"))
    mark = bastion.log_size()
    code, reported, err, _ = status(capsys, "hv-one", "hv-two")
    assert code == 0 and [r["state"] for r in reported] == ["connected", "connected"], err
    assert (bastion.logins(mark), bastion.forwarded_to(one.ssh_port, mark),
            bastion.forwarded_to(two.ssh_port, mark)) == (1, 1, 1)
    drivers = [open_driver("qemu+ssh://hv-one/system"), open_driver("qemu+ssh://hv-two/system")]
    try:
        for driver in drivers:
            driver.connect()
        assert open_links() == 1
        drivers[0].close()
        assert open_links() == 1  # still in use by the other host
        assert drivers[1].poll().host.hostname == two.name
    finally:
        for driver in drivers:
            driver.close()
    assert open_links() == 0  # closed with its last user
    assert bastion.logins(mark) == 2  # the status run's, then the drivers' one


# -- bad input: each a one-line error naming the host or the hop, within a bounded time -----------

def test_a_proxyjump_loop_is_refused_in_one_line(realstack, bastions, private_home, tmp_path, capsys):
    host, (first, second) = realstack.hosts[0], bastions
    key = realstack.client_key
    ssh_config(private_home,
               block("hv-loop", host.ssh_port, key, "ProxyJump jb1"),
               block("jb1", first.ssh_port, key, "ProxyJump jb2"),
               block("jb2", second.ssh_port, key, "ProxyJump jb1"),
               block("hv-self", host.ssh_port, key, "ProxyJump hv-self"))
    marks = first.log_size(), second.log_size()
    for alias, path in (("hv-loop", "hv-loop -> jb1 -> jb2 -> jb1"), ("hv-self", "hv-self -> hv-self")):
        code, (reported,), err, took = status(capsys, alias)
        error = failed_in_one_line(code, reported, took)
        assert f"ProxyJump loop: {path}" in error, error
    assert (first.logins(marks[0]), second.logins(marks[1])) == (0, 0)  # refused before connecting anywhere


def test_a_hop_that_is_down_fails_naming_it(realstack, bastions, private_home, tmp_path, capsys):
    host, bastion = realstack.hosts[0], bastions[0]
    known = known_hosts(tmp_path / "known_hosts", *host_lines(realstack, host), bastion.known_hosts_line())
    closed = _closed_port()
    key = realstack.client_key
    ssh_config(private_home,
               block("hv-down1", host.ssh_port, key, f"UserKnownHostsFile {known}", "ProxyJump jb-down"),
               block("hv-down2", host.ssh_port, key, f"UserKnownHostsFile {known}", "ProxyJump jb1,jb-down"),
               block("jb1", bastion.ssh_port, key, f"UserKnownHostsFile {known}"),
               block("jb-down", closed, key, f"UserKnownHostsFile {known}"))
    code, (reported,), err, took = status(capsys, "hv-down1")
    error = failed_in_one_line(code, reported, took)
    assert f"cannot reach jb-down (jump to hv-down1): cannot connect to [127.0.0.1]:{closed}: " in error, error
    code, (reported,), err, took = status(capsys, "hv-down2")
    error = failed_in_one_line(code, reported, took)
    assert (f"cannot reach jb-down (jump to hv-down2) through jb1: jb1 could not open a connection to "
            f"127.0.0.1:{closed}") in error, error


@pytest.mark.parametrize(("command", "expected"), [
    ("sh -c 'echo no route to hv >&2; exit 3'",
     "the ProxyCommand of hv-pc exited with status 3 before an SSH server answered: no route to hv"),
    ("printf 'HTTP/1.1 400 Bad Request\\r\\n\\r\\n'", "the ProxyCommand of hv-pc printed something other than "
                                                       "an SSH server's greeting"),
    ("yes garbage", "the ProxyCommand of hv-pc printed something other than an SSH server's greeting"),
])
def test_a_proxycommand_that_exits_or_prints_garbage_fails_in_one_line(realstack, private_home, tmp_path, capsys,
                                                                       command, expected):
    host = realstack.hosts[0]
    ssh_config(private_home, block("hv-pc", host.ssh_port, realstack.client_key,
                                   f"UserKnownHostsFile {realstack.known_hosts}", f"ProxyCommand {command}"))
    code, (reported,), err, took = status(capsys, "hv-pc")
    error = failed_in_one_line(code, reported, took)
    assert error.startswith("qemu+ssh://hv-pc/system: ") and expected in error, error
    assert took < 5, f"{took:.1f} s"  # it says so as soon as the command is done, not after the timeout


def test_a_proxycommand_is_killed_with_its_process_group(realstack, bastions, private_home, tmp_path):
    host, bastion = realstack.hosts[0], bastions[0]
    known = known_hosts(tmp_path / "known_hosts", *host_lines(realstack, host), bastion.known_hosts_line())
    pids = tmp_path / "pids"
    config = private_home / ".ssh" / "config"
    # the command leaves a child (a sleep) behind, which a kill of the command's pid alone would miss
    ssh_config(private_home,
               block("hv-group", host.ssh_port, realstack.client_key, f"UserKnownHostsFile {known}",
                     f"ProxyCommand sh -c 'sleep 300 & echo $! > {pids}; "
                     f"exec ssh -F {config} -o BatchMode=yes -W %h:%p jb1'"),
               block("jb1", bastion.ssh_port, realstack.client_key, f"UserKnownHostsFile {known}"))
    driver = open_driver("qemu+ssh://hv-group/system")
    try:
        driver.connect()
        assert driver.poll().host.hostname == host.name
        child = Path(f"/proc/{int(pids.read_text())}")
        assert child.exists()
    finally:
        driver.close()
    deadline = time.monotonic() + 5
    while child.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not child.exists(), "the ProxyCommand's child outlived the connection"


def test_a_bad_jump_or_proxy_value_is_refused_when_the_host_is_added(realstack, private_home, capsys):
    host = realstack.hosts[0]
    key = realstack.client_key
    ssh_config(private_home,
               block("hv-opt", host.ssh_port, key, "ProxyJump -oProxyCommand=touch"),
               block("hv-dash", host.ssh_port, key, "ProxyCommand -"))
    for alias, said in (("hv-opt", "'-oProxyCommand=touch' is not a host name or address"),
                        ("hv-dash", "ProxyCommand -")):
        with pytest.raises(InvalidURI) as refused:
            open_driver(f"qemu+ssh://{alias}/system")
        assert said in str(refused.value) and "\n" not in str(refused.value)


def _closed_port() -> int:
    """A port nothing listens on (bound, then closed: taken again within a test only by chance)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
