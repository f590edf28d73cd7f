"""A host resolved as OpenSSH resolves it: virttui's answer checked against the real `ssh -G` on
temporary configs (Include, Match, Host patterns, tokens), the URI winning where it says something,
paramiko's parser as the fallback without an ssh client, bad input bounded, and the host-key rules
the config chooses (against a minimal in-process paramiko server)."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
import pytest
from support.fakessh import FakeSSHServer, write_client_key
from support.sshrun import fresh_ssh_run

from virttui.drivers import ssh, sshresolve
from virttui.drivers.errors import ConnectionFailed, InvalidURI
from virttui.drivers.sshconnect import DEAD_PEER_SECONDS
from virttui.drivers.sshhostkeys import HostKeyChanged, UnknownHostKey
from virttui.drivers.sshtarget import _config_file, forget_resolutions, resolve_target
from virttui.drivers.uri import LibvirtURI, parse_uri

SSH = shutil.which("ssh")
assert SSH, "the OpenSSH client is a test dependency (scripts/test.sh installs it)"


@pytest.fixture(autouse=True)
def fresh_run():
    """Each test is a run of its own: nothing resolved, nothing warned about yet."""
    with fresh_ssh_run():
        yield


def ssh_g(config: Path, host: str, *options: str) -> dict[str, list[str]]:
    """What the real `ssh -G` says, read independently of virttui's reader."""
    out = subprocess.run([SSH, "-G", "-F", str(config), *options, host], capture_output=True, text=True,
                         check=True, timeout=10, stdin=subprocess.DEVNULL).stdout
    said: dict[str, list[str]] = {}
    for line in out.splitlines():
        key, _, value = line.partition(" ")
        said.setdefault(key.lower(), []).append(value)
    return said


def resolve(config: Path, uri: str):  # noqa: ANN201
    return resolve_target(parse_uri(uri), str(config))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


STRICT_SAID = {"true": "yes", "false": "no"}  # ssh -G prints yes as "true", no as "false"


def assert_same_as_ssh(config: Path, host: str) -> None:
    """Every field virttui takes from the config equals what ssh -G said."""
    target = resolve(config, f"qemu+ssh://{host}/system")
    said = ssh_g(config, host)
    user_files = said["userknownhostsfile"][0].split()
    account = pwd.getpwuid(os.getuid()).pw_dir  # ssh's ~; virttui's default files are in $HOME
    if user_files == [f"{account}/.ssh/{name}" for name in ("known_hosts", "known_hosts2")]:
        user_files = [os.path.expanduser(f"~/.ssh/{name}") for name in ("known_hosts", "known_hosts2")]
    assert (target.address, target.port, target.user) == (said["hostname"][0], int(said["port"][0]), said["user"][0])
    assert target.known_hosts_files == (*user_files, *said["globalknownhostsfile"][0].split())
    assert target.strict == STRICT_SAID.get(said["stricthostkeychecking"][0], said["stricthostkeychecking"][0])
    assert target.host_key_alias == said.get("hostkeyalias", [""])[0]
    assert target.identities_only is (said["identitiesonly"][0] == "yes")
    assert (target.connect_timeout or "none", target.alive_interval, target.alive_count_max) == (
        said["connecttimeout"][0] if said["connecttimeout"][0] == "none" else int(said["connecttimeout"][0]),
        int(said["serveraliveinterval"][0]), int(said["serveralivecountmax"][0]))


# -- the real ssh -G as the resolver --------------------------------------------------------------

def test_a_host_kept_in_an_included_config_d_file_resolves_as_ssh_resolves_it(tmp_path):
    conf_d = tmp_path / "config.d"
    write(conf_d / "hv.conf", "Host hv1\n  HostName 10.9.8.7\n  Port 2222\n  User ops\n"
                              f"  UserKnownHostsFile {tmp_path}/kh\n  StrictHostKeyChecking yes\n")
    write(conf_d / "other.conf", "Host db1\n  HostName 10.9.8.8\n")
    config = write(tmp_path / "config", f"Include {conf_d}/*.conf\n")
    target = resolve(config, "qemu+ssh://hv1/system")
    assert (target.address, target.port, target.user) == ("10.9.8.7", 2222, "ops")
    assert_same_as_ssh(config, "hv1")
    assert_same_as_ssh(config, "db1")


def test_a_match_host_block_applies_after_hostname_as_in_ssh(tmp_path):
    config = write(tmp_path / "config", "Host hv1\n  HostName hv1.lab.example\n"
                                        "Match host *.lab.example\n  Port 2200\n  User lab\n"
                                        "  StrictHostKeyChecking accept-new\n  HostKeyAlias lab-%h\n"
                                        "Match originalhost hv2\n  Port 2300\n  ServerAliveInterval 9\n")
    assert resolve(config, "qemu+ssh://hv1/system").port == 2200
    for host in ("hv1", "hv2", "hv3"):
        assert_same_as_ssh(config, host)


@pytest.mark.parametrize("host", ["hv1", "hv9", "hv10", "db.prod", "DB.PROD", "x.test"])
def test_host_patterns_and_negation_resolve_as_in_ssh(tmp_path, host):
    config = write(tmp_path / "config", "Host hv? !hv9\n  Port 2001\n  User hv\n  IdentitiesOnly yes\n"
                                        "Host *.prod\n  Port 2002\n  HostName %h.internal\n  ConnectTimeout 4\n"
                                        "Host *\n  User anyone\n  GlobalKnownHostsFile /etc/ssh/fleet_keys\n")
    assert_same_as_ssh(config, host)


def test_hostname_tokens_resolve_as_in_ssh(tmp_path):
    config = write(tmp_path / "config", "Host hv*\n  HostName %h.example.com\n  Port 2022\n"
                                        "  UserKnownHostsFile ~/.ssh/known_%h %d/known_%n_%p\n")
    assert resolve(config, "qemu+ssh://hv1/system").address == "hv1.example.com"
    assert_same_as_ssh(config, "hv1")


TOKENS = "%d/x/%h_%n_%p_%r_%u_%i_%k_%L_%l_%C_%%"


def test_identity_file_tokens_expand_as_ssh_expands_them(tmp_path):
    """ssh -G prints IdentityFile unexpanded; it expands UserKnownHostsFile with the same tokens.
    One template in both: virttui's IdentityFile must come out as ssh's UserKnownHostsFile."""
    config = write(tmp_path / "config", f"Host hv1\n  HostName hv1.example.com\n  Port 2022\n  User ops\n"
                                        f"  HostKeyAlias hv-key\n  IdentityFile ~/{TOKENS}\n"
                                        f"  UserKnownHostsFile ~/{TOKENS}\n")
    expected = ssh_g(config, "hv1")["userknownhostsfile"][0]
    Path(expected).parent.mkdir(parents=True, exist_ok=True)
    Path(expected).write_text("")  # key files are kept only where they exist
    try:
        target = resolve(config, "qemu+ssh://hv1/system")
        assert target.key_files == (expected,)
        assert ssh_g(config, "hv1")["identityfile"] == [f"~/{TOKENS}"]  # unexpanded: virttui did it
    finally:
        os.unlink(expected)


def test_several_identity_files_in_ssh_order_and_only_those_that_exist(tmp_path):
    for name in ("a", "c", "uri"):
        write(tmp_path / name, "")
    config = write(tmp_path / "config", f"Host hv1\n  IdentityFile {tmp_path}/a\n  IdentityFile {tmp_path}/b\n"
                                        f"Host *\n  IdentityFile {tmp_path}/c\n  IdentitiesOnly yes\n")
    said = ssh_g(config, "hv1")["identityfile"]
    assert said == [f"{tmp_path}/a", f"{tmp_path}/b", f"{tmp_path}/c"]
    target = resolve(config, "qemu+ssh://hv1/system")
    assert target.key_files == tuple(path for path in said if os.path.exists(path))
    assert target.identities_only
    uri_first = resolve(config, f"qemu+ssh://hv1/system?keyfile={tmp_path}/uri")
    assert uri_first.key_files == (f"{tmp_path}/uri", f"{tmp_path}/a", f"{tmp_path}/c")


def test_several_user_known_hosts_files_then_the_global_ones(tmp_path):
    config = write(tmp_path / "config", f"Host hv1\n  UserKnownHostsFile {tmp_path}/one ~/two\n"
                                        f"  GlobalKnownHostsFile {tmp_path}/global\n")
    said = ssh_g(config, "hv1")
    target = resolve(config, "qemu+ssh://hv1/system")
    users, globals_ = said["userknownhostsfile"][0].split(), said["globalknownhostsfile"][0].split()
    assert target.known_hosts_files == tuple(users + globals_)
    assert target.known_hosts == users[0] == f"{tmp_path}/one"  # a trusted key is saved in the first, as ssh does


def test_without_user_known_hosts_files_the_default_is_home_s(tmp_path, private_home):
    target = resolve(write(tmp_path / "config", "Host hv1\n  Port 2022\n"), "qemu+ssh://hv1/system")
    assert target.known_hosts == str(private_home / ".ssh" / "known_hosts")
    assert target.known_hosts_files == (str(private_home / ".ssh" / "known_hosts"),
                                        str(private_home / ".ssh" / "known_hosts2"),
                                        "/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")


def test_host_key_alias_is_ssh_s(tmp_path):
    config = write(tmp_path / "config", "Host hv*\n  HostKeyAlias cluster-a\n")
    assert resolve(config, "qemu+ssh://hv1/system").host_key_alias == ssh_g(config, "hv1")["hostkeyalias"][0]
    assert resolve(config, "qemu+ssh://db1/system").host_key_alias == ""


@pytest.mark.parametrize(("written", "strict"), [("yes", "yes"), ("ask", "ask"), ("accept-new", "accept-new"),
                                                 ("no", "no"), ("off", "no"), (None, "ask")])
def test_strict_host_key_checking_values(tmp_path, written, strict):
    setting = f"  StrictHostKeyChecking {written}\n" if written else ""
    config = write(tmp_path / "config", f"Host hv1\n  Port 2022\n{setting}")
    target = resolve(config, "qemu+ssh://hv1/system")
    assert target.strict == strict
    assert target.verify is (strict in ("yes", "ask"))
    said = ssh_g(config, "hv1")["stricthostkeychecking"][0]  # ssh -G prints yes as "true", no as "false"
    assert {"true": "yes", "false": "no"}.get(said, said) == strict


def test_timeouts_and_keepalives_are_ssh_s(tmp_path):
    config = write(tmp_path / "config", "Host hv1\n  ConnectTimeout 1m5s\n  ServerAliveInterval 7\n"
                                        "  ServerAliveCountMax 4\n")
    said = ssh_g(config, "hv1")
    target = resolve(config, "qemu+ssh://hv1/system")
    assert (target.connect_timeout, target.alive_interval, target.alive_count_max) == (
        int(said["connecttimeout"][0]), int(said["serveraliveinterval"][0]), int(said["serveralivecountmax"][0]))
    assert (target.connect_timeout, target.alive_interval, target.alive_count_max) == (65, 7, 4)
    plain = resolve(write(tmp_path / "plain", "Host hv1\n  Port 2022\n"), "qemu+ssh://hv1/system")
    assert (plain.connect_timeout, plain.alive_interval) == (None, 0)


def test_a_match_exec_runs_in_ssh_s_own_resolver(tmp_path):
    ran = tmp_path / "ran"
    config = write(tmp_path / "config", f'Match exec "touch {ran}-%h; test %h = hv1"\n  Port 2345\n')
    assert resolve(config, "qemu+ssh://hv1/system").port == 2345
    assert resolve(config, "qemu+ssh://hv2/system").port == 22
    assert (tmp_path / "ran-hv1").exists() and (tmp_path / "ran-hv2").exists()


# -- the URI wins ---------------------------------------------------------------------------------

def test_the_uri_user_and_port_win_and_ssh_s_match_sees_them(tmp_path):
    config = write(tmp_path / "config", "Match user admin\n  HostName admin.example.com\n"
                                        "Host hv1\n  User ops\n  Port 2022\n  IdentityFile /k/%r_%p\n")
    target = resolve(config, "qemu+ssh://admin@hv1:2200/system")
    assert (target.user, target.port, target.address) == ("admin", 2200, "admin.example.com")
    said = ssh_g(config, "hv1", "-l", "admin", "-p", "2200")
    assert (said["user"][0], said["port"][0], said["hostname"][0]) == ("admin", "2200", "admin.example.com")


def test_the_uri_known_hosts_is_then_the_only_file(tmp_path):
    config = write(tmp_path / "config", f"Host hv1\n  UserKnownHostsFile {tmp_path}/a {tmp_path}/b\n")
    target = resolve(config, f"qemu+ssh://hv1/system?known_hosts={tmp_path}/mine")
    assert (target.known_hosts, target.known_hosts_files) == (f"{tmp_path}/mine", (f"{tmp_path}/mine",))


@pytest.mark.parametrize(("written", "query", "strict"), [
    ("yes", "no_verify=1", "no"), ("ask", "no_verify=1", "no"), ("no", "no_verify=0", "ask"),
    ("accept-new", "no_verify=0", "ask"), ("yes", "no_verify=0", "yes"), ("no", "", "no")])
def test_the_uri_no_verify_wins_over_strict_host_key_checking(tmp_path, written, query, strict):
    config = write(tmp_path / "config", f"Host hv1\n  StrictHostKeyChecking {written}\n")
    assert resolve(config, f"qemu+ssh://hv1/system?{query}").strict == strict


@pytest.mark.parametrize(("directive", "jump", "command"), [
    ("ProxyJump bastion.example.com", "bastion.example.com", ""),
    ("ProxyCommand ssh -W %h:%p bastion", "", "ssh -W 127.0.0.1:22 bastion"),
    ("ProxyJump ops@bastion:2222,second", "ops@bastion:2222,second", "")])
def test_a_jump_host_or_proxy_command_is_resolved_for_the_route_never_dropped(tmp_path, directive, jump, command):
    config = write(tmp_path / "config", f"Host hv1\n  HostName 127.0.0.1\n  {directive}\n"
                                        "Host hv2\n  ProxyJump none\n  ProxyCommand none\n")
    target = resolve(config, "qemu+ssh://hv1/system")
    assert (target.address, target.proxy_jump, target.proxy_command) == ("127.0.0.1", jump, command)
    other = resolve(config, "qemu+ssh://hv2/system")
    assert (other.address, other.proxy_jump, other.proxy_command) == ("hv2", "", "")


# -- which config, and once per run ---------------------------------------------------------------

def test_home_s_config_is_read_when_home_is_not_the_account_s(private_home, tmp_path):
    conf_d = private_home / ".ssh" / "config.d"
    write(conf_d / "hv.conf", "Host hv-home\n  HostName 10.1.1.1\n  Port 2201\n")
    write(private_home / ".ssh" / "config", f"Include {conf_d}/*.conf\n")
    target = resolve_target(parse_uri("qemu+ssh://hv-home/system"))
    assert (target.address, target.port) == ("10.1.1.1", 2201)


def test_ssh_reads_its_own_config_where_home_is_the_account_s(monkeypatch, private_home):
    monkeypatch.setattr("virttui.drivers.sshtarget.account_home", lambda: str(private_home))
    assert _config_file(None) == (str(private_home / ".ssh" / "config"), ())
    assert _config_file("/nowhere/config") == ("/nowhere/config", ("-F", "none"))


def _counting_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An `ssh` on PATH that counts its runs, then is the real one."""
    calls = tmp_path / "calls"
    fake_bin = tmp_path / "bin"
    write(fake_bin / "ssh", f'#!/bin/sh\necho run >> {calls}\nexec {SSH} "$@"\n').chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")
    return calls


def test_one_ssh_run_per_host_for_the_run(tmp_path, monkeypatch):
    calls = _counting_ssh(tmp_path, monkeypatch)
    config = write(tmp_path / "config", "Host hv*\n  Port 2022\n")
    for _ in range(3):
        assert resolve(config, "qemu+ssh://hv1/system").port == 2022
        ssh.SSHTransport(parse_uri("qemu+ssh://hv1/session"), ssh_config_path=str(config))
    assert calls.read_text().count("run") == 1
    resolve(config, "qemu+ssh://hv2/system")
    assert calls.read_text().count("run") == 2


# -- without an OpenSSH client: paramiko's parser, and a warning ----------------------------------

@pytest.fixture
def no_ssh(tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert sshresolve.find_ssh() is None


def test_without_ssh_paramiko_reads_the_config_and_warns_once_naming_what_it_cannot_honour(
        tmp_path, no_ssh, caplog):
    write(tmp_path / "config.d" / "hv.conf", "Host hv1\n  Port 2222\n")
    config = write(tmp_path / "config", f"Include {tmp_path}/config.d/*.conf\n"
                                        "Match localnetwork 10.0.0.0/8\n  User net\n"
                                        "Host hv*\n  HostName %h.lab\n  User ops\n  StrictHostKeyChecking accept-new\n"
                                        f"  UserKnownHostsFile ~/kh_%h {tmp_path}/kh2\n  ConnectTimeout 2m\n")
    with caplog.at_level(logging.WARNING, logger="virttui.drivers.ssh"):
        first = resolve(config, "qemu+ssh://hv1/system")
        resolve(config, "qemu+ssh://hv2/system")
        resolve(config, "qemu+ssh://hv1/system")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert str(config) in warnings[0] and "Include" in warnings[0] and "Match localnetwork" in warnings[0]
    assert (first.address, first.port, first.strict, first.connect_timeout) == ("hv1.lab", 22, "accept-new", 120)
    assert first.known_hosts_files[:2] == (os.path.expanduser("~/kh_hv1.lab"), f"{tmp_path}/kh2")


def test_without_ssh_a_config_paramiko_fully_reads_gives_no_warning(tmp_path, no_ssh, caplog):
    config = write(tmp_path / "config", "Host hv1\n  HostName 10.1.2.3\n  Port 2022\n  User ops\n"
                                        "  StrictHostKeyChecking yes\n  HostKeyAlias hv-key\n  ProxyJump none\n")
    with caplog.at_level(logging.WARNING, logger="virttui.drivers.ssh"):
        target = resolve(config, "qemu+ssh://hv1/system")
    assert (target.address, target.port, target.user) == ("10.1.2.3", 2022, "ops")
    assert (target.strict, target.host_key_alias) == ("yes", "hv-key")
    assert not caplog.records


def test_without_ssh_a_match_exec_fails_the_host_and_runs_nothing(tmp_path, no_ssh):
    ran = tmp_path / "ran"
    config = write(tmp_path / "config", f'Match host hv* exec "touch {ran}"\n  Port 2345\n')
    with pytest.raises(InvalidURI) as refused:
        resolve(config, "qemu+ssh://hv1/system")
    assert "hv1" in str(refused.value) and "Match exec" in str(refused.value) and "\n" not in str(refused.value)
    assert not ran.exists()


# -- bad input: one line naming the host, never a hang ---------------------------------------------

def test_an_include_of_a_missing_file_is_no_error_as_in_ssh(tmp_path):
    write(tmp_path / "present.d" / "hv.conf", "Host hv1\n  Port 2022\n")
    config = write(tmp_path / "config", f"Include {tmp_path}/missing.conf {tmp_path}/none.d/*.conf\n"
                                        f"Include {tmp_path}/present.d/*.conf\n")
    assert ssh_g(config, "hv1")["port"] == ["2022"]
    assert resolve(config, "qemu+ssh://hv1/system").port == 2022


def test_a_bad_line_in_an_included_file_fails_the_host_in_one_line(tmp_path):
    write(tmp_path / "config.d" / "bad.conf", "Host hv1\n  NoSuchOption yes\n")
    config = write(tmp_path / "config", f"Include {tmp_path}/config.d/*.conf\n")
    with pytest.raises(InvalidURI) as refused:
        resolve(config, "qemu+ssh://hv1/system")
    message = str(refused.value)
    assert message.startswith("qemu+ssh://hv1/system: hv1: ") and "bad.conf" in message and "\n" not in message


def test_a_port_out_of_range_in_an_included_file_names_that_file_and_the_host(tmp_path):
    included = write(tmp_path / "config.d" / "hv.conf", "Host hv1\n  Port 70000\n")
    config = write(tmp_path / "config", f"Include {tmp_path}/config.d/*.conf\n")
    with pytest.raises(InvalidURI, match=f"{included}: Port 70000 for hv1 is not a port number"):
        resolve(config, "qemu+ssh://hv1/system")


def test_an_include_that_blocks_is_bounded(tmp_path, monkeypatch):
    """A FIFO included by the config: the real ssh blocks opening it, with no writer, forever."""
    monkeypatch.setattr(sshresolve, "RESOLVE_TIMEOUT", 1.0)
    fifo = tmp_path / "blocking.conf"
    os.mkfifo(fifo)
    config = write(tmp_path / "config", f"Include {fifo}\n")
    started = time.monotonic()
    with pytest.raises(InvalidURI, match=r"^qemu\+ssh://hv1/system: hv1: ssh -G did not answer within 1 s$"):
        resolve(config, "qemu+ssh://hv1/system")
    assert time.monotonic() - started < 5


def _fake_ssh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    fake_bin = tmp_path / "fake-bin"
    write(fake_bin / "ssh", "#!/bin/sh\n" + body).chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake_bin}:{os.environ['PATH']}")


def test_a_hanging_resolver_is_killed_with_what_it_started(tmp_path, monkeypatch):
    monkeypatch.setattr(sshresolve, "RESOLVE_TIMEOUT", 1.0)
    pid_file = tmp_path / "child"
    _fake_ssh(tmp_path, monkeypatch, f"sleep 60 &\necho $! > {pid_file}\nexec sleep 60\n")
    started = time.monotonic()
    with pytest.raises(InvalidURI, match="hv1: ssh -G did not answer within 1 s"):
        resolve(tmp_path / "config", "qemu+ssh://hv1/system")
    assert time.monotonic() - started < 5
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child), "the resolver's own child outlived it"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.parametrize(("body", "said"), [
    ("echo '<html>not a config</html>'\n", "something other than a configuration"),
    ("printf 'hostname h\\nport 22\\n\\033[2J bad\\n'\n", "something other than a configuration"),
    ("head -c 3000000 /dev/zero | tr '\\0' a\n", "more than a configuration"),
    ("echo 'config line 1: something is wrong' >&2\nexit 255\n", "ssh -G failed: config line 1: something is wrong"),
    ("exit 3\n", "ssh -G failed: exit status 3"),
    ("printf 'hostname h\\nport lots\\n'\n", "Port lots for hv1 is not a port number"),
    ("printf 'hostname h\\nport 22\\nstricthostkeychecking maybe\\n'\n", "StrictHostKeyChecking 'maybe' for hv1"),
])
def test_garbage_from_the_resolver_fails_the_host_in_one_line(tmp_path, monkeypatch, body, said):
    _fake_ssh(tmp_path, monkeypatch, body)
    with pytest.raises(InvalidURI) as refused:
        resolve(tmp_path / "config", "qemu+ssh://hv1/system")
    message = str(refused.value)
    assert said in message and "hv1" in message and "\n" not in message and "\x1b" not in message


@pytest.mark.parametrize("host", ["-oProxyCommand=touch /tmp/x", "hv1 -v", "hv1\tx", "hv1\nx", "hv\x7f1", ""])
def test_a_host_that_is_not_one_plain_argument_never_reaches_ssh(host):
    with pytest.raises(sshresolve.ResolveFailed):
        sshresolve.ssh_g_argv("ssh", host)


def test_a_uri_user_that_would_be_an_option_is_refused(tmp_path):
    ran = tmp_path / "ran"
    uri = LibvirtURI(raw="qemu+ssh://x@hv1/system", driver="qemu", transport="ssh", user=f"-oProxyCommand=touch {ran}",
                     host="hv1", path="/system")
    with pytest.raises(InvalidURI, match="user"):
        resolve_target(uri, str(tmp_path / "config"))
    hostile = LibvirtURI(raw="qemu+ssh://x/system", driver="qemu", transport="ssh", host=f"-oProxyCommand=touch {ran}",
                         path="/system")
    with pytest.raises(InvalidURI, match="cannot be given to ssh"):
        resolve_target(hostile, str(tmp_path / "config"))
    assert not ran.exists()


def test_the_argv_has_no_shell_and_the_host_after_the_options():
    argv = sshresolve.ssh_g_argv("/usr/bin/ssh", "hv1", user="ops", port=2222, config=("-F", "/c"))
    assert argv == ["/usr/bin/ssh", "-G", "-T", "-F", "/c", "-l", "ops", "-p", "2222", "--", "hv1"]


# -- the host-key rules the config chooses, against an in-process server ---------------------------

@pytest.fixture
def key_host(tmp_path: Path) -> Iterator[tuple[int, list[paramiko.PKey], Path]]:
    """(port, [host keys], keyfile): the Nth connection is served with host_keys[N] (then the last);
    the test appends to the list a key later connections present."""
    keyfile = write_client_key(tmp_path / "id")
    with FakeSSHServer([paramiko.ECDSAKey.generate()]) as server:
        yield server.port, server.host_keys, keyfile


def _line(name: str, key: paramiko.PKey) -> str:
    return f"{name} {key.get_name()} {key.get_base64()}\n"


def _transport(tmp_path: Path, port: int, keyfile: Path, settings: str, query: str = "") -> ssh.SSHTransport:
    config = write(tmp_path / "config", f"Host hv1\n  HostName 127.0.0.1\n  Port {port}\n  User ops\n"
                                        f"  IdentityFile {keyfile}\n{settings}")
    return ssh.SSHTransport(parse_uri(f"qemu+ssh://hv1/system{query}"), ssh_config_path=str(config))


def _connects(transport: ssh.SSHTransport) -> bool:
    try:
        transport.connect()
        return True
    finally:
        transport.close()


def test_strict_yes_refuses_an_unknown_key_without_asking(tmp_path, key_host):
    port, _, keyfile = key_host
    known = tmp_path / "known"
    transport = _transport(tmp_path, port, keyfile, f"  StrictHostKeyChecking yes\n  UserKnownHostsFile {known}\n")
    with pytest.raises(ConnectionFailed) as refused:
        transport.connect()
    assert not isinstance(refused.value, UnknownHostKey) and transport.pending_key is None  # no dialog
    assert "StrictHostKeyChecking yes" in str(refused.value) and "SHA256:" in str(refused.value)
    assert not known.exists()


def test_ask_offers_the_unknown_key_for_the_first_user_file(tmp_path, key_host):
    port, host_keys, keyfile = key_host
    first, second = tmp_path / "first", tmp_path / "second"
    transport = _transport(tmp_path, port, keyfile, f"  UserKnownHostsFile {first} {second}\n")
    with pytest.raises(UnknownHostKey) as unknown:
        transport.connect()
    assert (unknown.value.host, unknown.value.known_hosts) == (f"[127.0.0.1]:{port}", str(first))
    assert unknown.value.key == host_keys[0]


def test_a_key_in_the_second_user_known_hosts_file_is_known(tmp_path, key_host):
    port, host_keys, keyfile = key_host
    first, second = tmp_path / "first", write(tmp_path / "second", _line(f"[127.0.0.1]:{port}", host_keys[0]))
    assert _connects(_transport(tmp_path, port, keyfile, f"  UserKnownHostsFile {first} {second}\n"))


def test_accept_new_saves_an_unknown_key_and_refuses_a_changed_one(tmp_path, key_host, caplog):
    port, host_keys, keyfile = key_host
    known = tmp_path / "known"
    settings = f"  StrictHostKeyChecking accept-new\n  UserKnownHostsFile {known}\n"
    with caplog.at_level(logging.WARNING, logger="virttui.drivers.ssh"):
        assert _connects(_transport(tmp_path, port, keyfile, settings))
    assert known.read_text() == _line(f"[127.0.0.1]:{port}", host_keys[0])
    assert any("accept-new" in r.getMessage() for r in caplog.records)
    host_keys.append(paramiko.ECDSAKey.generate())  # the next connection shows another key
    with pytest.raises(HostKeyChanged, match="CHANGED"):
        _transport(tmp_path, port, keyfile, settings).connect()
    assert known.read_text() == _line(f"[127.0.0.1]:{port}", host_keys[0])


def test_strict_no_downgrades_with_no_verify_s_warning_and_still_checks_a_known_key(tmp_path, key_host, caplog):
    port, host_keys, keyfile = key_host
    known = tmp_path / "known"
    with caplog.at_level(logging.WARNING, logger="virttui.drivers.ssh"):
        assert _connects(_transport(tmp_path, port, keyfile, f"  UserKnownHostsFile {known}\n", "?no_verify=1"))
        forget_resolutions()
        assert _connects(_transport(tmp_path, port, keyfile,
                                    f"  StrictHostKeyChecking no\n  UserKnownHostsFile {known}\n"))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    name = f"[127.0.0.1]:{port}"
    assert warned == [f"accepting the unverified host key of {name} (no_verify=1)",
                      f"accepting the unverified host key of {name} (StrictHostKeyChecking no)"]
    assert not known.exists()
    known.write_text(_line(name, paramiko.ECDSAKey.generate()))  # on file with another key
    forget_resolutions()
    with pytest.raises(HostKeyChanged):
        _transport(tmp_path, port, keyfile, f"  StrictHostKeyChecking no\n  UserKnownHostsFile {known}\n").connect()


def test_host_key_alias_is_the_name_known_hosts_lists_the_key_under(tmp_path, key_host):
    port, host_keys, keyfile = key_host
    known = write(tmp_path / "known", _line("cluster-a", host_keys[0]))
    settings = f"  HostKeyAlias cluster-a\n  UserKnownHostsFile {known}\n"
    assert _connects(_transport(tmp_path, port, keyfile, settings))
    by_address = write(tmp_path / "by-address", _line(f"[127.0.0.1]:{port}", host_keys[0]))
    forget_resolutions()
    with pytest.raises(UnknownHostKey) as unknown:  # as ssh: with an alias, only the alias's line counts
        _transport(tmp_path, port, keyfile, f"  HostKeyAlias cluster-a\n  UserKnownHostsFile {by_address}\n").connect()
    assert unknown.value.host == "cluster-a"


def test_server_alive_settings_bound_a_dead_peer(tmp_path, key_host):
    port, host_keys, keyfile = key_host
    known = write(tmp_path / "known", _line(f"[127.0.0.1]:{port}", host_keys[0]))
    transport = _transport(tmp_path, port, keyfile, f"  UserKnownHostsFile {known}\n  ServerAliveInterval 4\n"
                                                    "  ServerAliveCountMax 2\n")
    transport.connect()
    try:
        sock = transport._client.get_transport().sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 8 * 1000
    finally:
        transport.close()
    forget_resolutions()
    plain = _transport(tmp_path, port, keyfile, f"  UserKnownHostsFile {known}\n")
    plain.connect()
    try:
        sock = plain._client.get_transport().sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == DEAD_PEER_SECONDS * 1000
    finally:
        plain.close()


def test_connect_timeout_from_the_config_bounds_a_silent_host(tmp_path):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel completes the handshake; nobody ever speaks
        port = silent.getsockname()[1]
        transport = _transport(tmp_path, port, tmp_path / "id", "  ConnectTimeout 1\n")
        started = time.monotonic()
        with pytest.raises(ConnectionFailed) as failed:
            transport.connect()
        assert time.monotonic() - started < 5 < ssh.CONNECT_TIMEOUT and "\n" not in str(failed.value)
