"""Jump hosts and ProxyCommand without a network: ProxyJump chains read as OpenSSH reads them (checked
against the real `ssh -G`), their tokens and ProxyCommand's expanded and checked, the route planned
with its loops refused, the shared jump-host connections counted, and a ProxyCommand's failures said
in one line, its process group killed."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paramiko
import pytest

from virttui.drivers import ssh, sshbastions
from virttui.drivers.errors import ConnectionFailed, InvalidURI
from virttui.drivers.sshhostkeys import UnknownHostKey
from virttui.drivers.sshjump import MAX_HOPS, HopSpec, parse_jump_chain
from virttui.drivers.sshproxy import MAX_STDERR, ShellProxyCommand
from virttui.drivers.sshresolve import ResolveFailed
from virttui.drivers.sshroute import Hop, Route, plan_route
from virttui.drivers.sshtarget import SSHTarget, forget_resolutions, resolve_target
from virttui.drivers.sshtokens import TokenContext, TokenError, expand_proxy
from virttui.drivers.uri import parse_uri

SSH = shutil.which("ssh")
assert SSH, "the OpenSSH client is a test dependency (scripts/test.sh installs it)"


@pytest.fixture(autouse=True)
def fresh_run():
    forget_resolutions()
    yield
    forget_resolutions()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def ssh_g_jump(tmp_path: Path, value: str) -> str:
    """The ProxyJump the real `ssh -G` prints for a config saying `value` (its own normal form)."""
    config = write(tmp_path / "jump_config", f"Host hv\n  ProxyJump {value}\n")
    out = subprocess.run([SSH, "-G", "-F", str(config), "hv"], capture_output=True, text=True, check=True,
                         timeout=10, stdin=subprocess.DEVNULL).stdout
    return next(line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("proxyjump "))


# -- ProxyJump chains ------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "hops"), [
    ("bastion", [HopSpec("bastion")]),
    ("ops@bastion:2222", [HopSpec("bastion", "ops", 2222)]),
    ("a,b,c", [HopSpec("a"), HopSpec("b"), HopSpec("c")]),
    ("ssh://ops@bastion:2222", [HopSpec("bastion", "ops", 2222)]),
    ("ssh://bastion/", [HopSpec("bastion")]),
    ("jump@a:1,ssh://other@b:33", [HopSpec("a", "jump", 1), HopSpec("b", "other", 33)]),
    ("[::1]:2200", [HopSpec("::1", "", 2200)]),
    ("ops@[fe80::1%eth0]", [HopSpec("fe80::1%eth0", "ops")]),
    ("first.last@corp@bastion", [HopSpec("bastion", "first.last@corp")]),  # the last '@' splits, as in ssh
    ("bastion:", [HopSpec("bastion")]),
    ("none", []),
])
def test_a_chain_reads_as_ssh_reads_it(tmp_path, value, hops):
    assert list(parse_jump_chain(value)) == hops
    if hops:  # and ssh -G's normal form of it reads the same
        assert list(parse_jump_chain(ssh_g_jump(tmp_path, value))) == hops


@pytest.mark.parametrize("value", ["a,,b", "-oProxyCommand=touch", "h:0", "h:70000", '"a', "x:y", "@host",
                                   "h/path", "ssh://h/path", "a b", "host\x1b[31m", "u;rm@host", "[::1", "h:2x"])
def test_anything_else_is_refused_in_one_line(value):
    with pytest.raises(ResolveFailed) as refused:
        parse_jump_chain(value)
    assert "\n" not in str(refused.value) and "\x1b" not in str(refused.value)


def test_a_chain_longer_than_max_hops_is_refused():
    assert len(parse_jump_chain(",".join(f"j{i}" for i in range(MAX_HOPS)))) == MAX_HOPS
    with pytest.raises(ResolveFailed, match=f"at most {MAX_HOPS}"):
        parse_jump_chain(",".join(f"j{i}" for i in range(MAX_HOPS + 1)))


def test_a_hop_prints_as_written():
    assert [str(hop) for hop in parse_jump_chain("ops@a:22,[::1]:2200,b")] == ["ops@a:22", "[::1]:2200", "b"]


# -- tokens ----------------------------------------------------------------------------------------

CONTEXT = TokenContext("10.0.0.1", "hv1", 2201, "ops", "")


@pytest.mark.parametrize(("text", "expanded"), [
    ("ssh -W %h:%p -l %r bastion", "ssh -W 10.0.0.1:2201 -l ops bastion"),
    ("connect %n %k", "connect hv1 hv1"),
    ("printf %%h", "printf %h"),  # one pass: %% is a percent sign, never the start of a token
    ("no tokens", "no tokens"),
])
def test_proxy_tokens_expand_as_ssh_expands_them(text, expanded):
    assert expand_proxy(text, CONTEXT, "ProxyCommand") == expanded


def test_k_is_the_host_key_alias_when_there_is_one():
    assert expand_proxy("%k", TokenContext("10.0.0.1", "hv1", 22, "ops", "cluster"), "ProxyCommand") == "cluster"


@pytest.mark.parametrize("text", ["nc %d", "nc %C", "nc %x", "nc %h %"])
def test_a_token_ssh_does_not_know_there_is_refused(text):
    with pytest.raises(TokenError, match="unknown token"):
        expand_proxy(text, CONTEXT, "ProxyCommand")


@pytest.mark.parametrize("user", ["a;touch x", "a b", "$(id)", "`id`", "a'b", "-oProxyCommand=x", "~root", "a|b",
                                  "a\nb", "a*"])
def test_a_value_that_is_no_plain_name_never_reaches_the_shell(user):
    context = TokenContext("10.0.0.1", "hv1", 22, user, "")
    with pytest.raises(TokenError) as refused:
        expand_proxy("nc -u %r %h %p", context, "ProxyCommand")
    assert "ProxyCommand: %r" in str(refused.value) and "\n" not in str(refused.value)
    assert expand_proxy("nc %h %p", context, "ProxyCommand") == "nc 10.0.0.1 22"  # unused, it is no matter


def test_ssh_g_prints_proxycommand_unexpanded_and_virttui_expands_it(tmp_path):
    config = write(tmp_path / "config", "Host hv1\n  HostName 10.0.0.1\n  Port 2201\n  User ops\n"
                                        "  ProxyCommand ssh -W %h:%p -l %r %n %% bastion\n")
    out = subprocess.run([SSH, "-G", "-F", str(config), "hv1"], capture_output=True, text=True, check=True,
                         timeout=10, stdin=subprocess.DEVNULL).stdout
    assert "proxycommand ssh -W %h:%p -l %r %n %% bastion" in out.splitlines()
    target = resolve_target(parse_uri("qemu+ssh://hv1/system"), str(config))
    assert target.proxy_command == "ssh -W 10.0.0.1:2201 -l ops hv1 % bastion"
    assert resolve_target(parse_uri("qemu+ssh://root@hv1:22/system"), str(config)).proxy_command == (
        "ssh -W 10.0.0.1:22 -l root hv1 % bastion")  # the URI's user and port, as ssh's -l and -p


def test_proxyjump_tokens_expand_for_the_host_and_the_uri_form_is_normalised(tmp_path):
    config = write(tmp_path / "config", "Host hv1\n  HostName 10.0.0.1\n  ProxyJump jump-%h,ssh://ops@b2:33\n")
    target = resolve_target(parse_uri("qemu+ssh://hv1/system"), str(config))
    assert (target.proxy_jump, target.proxy_command) == ("jump-10.0.0.1,ops@b2:33", "")


def test_a_uri_user_with_shell_characters_is_refused_for_a_command_that_uses_it(tmp_path):
    config = write(tmp_path / "config", "Host hv1\n  ProxyCommand ssh -l %r -W %h:%p bastion\n"
                                        "Host hv2\n  ProxyCommand ssh -W %h:%p bastion\n")
    # ssh 9.2 with Debian's CVE-2023-51385 fix refuses a user with quotes or ';' itself; `$` it lets through
    with pytest.raises(InvalidURI) as refused:
        resolve_target(parse_uri("qemu+ssh://a%24HOME@hv1/system"), str(config))
    assert "hv1" in str(refused.value) and "%r would be 'a$HOME'" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert resolve_target(parse_uri("qemu+ssh://a%24HOME@hv2/system"), str(config)).proxy_command == (
        "ssh -W hv2:22 bastion")


@pytest.mark.parametrize(("settings", "said"), [
    ("ProxyCommand -", "ProxyCommand -"),
    ("ProxyCommand nc %h %p\n  ProxyUseFdpass yes", "ProxyUseFdpass"),
    ("ProxyJump -oProxyCommand=touch", "not a host name or address"),
    ("ProxyCommand nc %Z %p", "unknown token '%Z' in ProxyCommand"),
])
def test_what_cannot_be_followed_is_refused_when_the_host_is_resolved(tmp_path, settings, said):
    config = write(tmp_path / "config", f"Host hv1\n  {settings}\n")
    with pytest.raises(InvalidURI) as refused:
        resolve_target(parse_uri("qemu+ssh://hv1/system"), str(config))
    assert said in str(refused.value) and "hv1" in str(refused.value) and "\n" not in str(refused.value)


def test_whichever_of_proxyjump_and_proxycommand_comes_first_wins_as_in_ssh(tmp_path):
    config = write(tmp_path / "config", "Host hv1\n  ProxyCommand nc %h %p\n  ProxyJump b1\n"
                                        "Host hv2\n  ProxyJump b1\n  ProxyCommand nc %h %p\n"
                                        "Host hv3\n  ProxyCommand none\n  ProxyJump b1\n")
    found = [resolve_target(parse_uri(f"qemu+ssh://{h}/system"), str(config)) for h in ("hv1", "hv2", "hv3")]
    assert [(t.proxy_jump, t.proxy_command) for t in found] == [("", "nc hv1 22"), ("b1", ""), ("", "")]


def test_without_ssh_paramiko_s_parser_gives_the_proxies_already_expanded(tmp_path, monkeypatch):
    """paramiko's parser expands ProxyCommand and ProxyJump tokens itself: they are not expanded twice."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    config = write(tmp_path / "config", "Host hv1\n  HostName 10.0.0.1\n  ProxyCommand nc %h %p\n"
                                        "Host hv2\n  ProxyJump ops@jump-%h:2222\n"
                                        "Host jump-hv2\n  HostName 10.9.9.9\n")
    assert resolve_target(parse_uri("qemu+ssh://hv1/system"), str(config)).proxy_command == "nc 10.0.0.1 22"
    host = resolve_target(parse_uri("qemu+ssh://hv2/system"), str(config))
    assert host.proxy_jump == "ops@jump-hv2:2222"
    (hop,) = plan_route("u", host, str(config)).hops
    assert (hop.target.address, hop.target.port, hop.target.user) == ("10.9.9.9", 2222, "ops")


# -- the route -------------------------------------------------------------------------------------

def target(host: str, *, port: int = 22, user: str = "root", address: str = "", jump: str = "",
           command: str = "") -> SSHTarget:
    return SSHTarget(host=host, address=address or f"{host}.example", port=port, user=user, key_files=(),
                     known_hosts="/dev/null", proxy_jump=jump, proxy_command=command)


def resolver(configs: dict[str, SSHTarget]):  # noqa: ANN201
    seen: list[HopSpec] = []

    def resolve(spec: HopSpec, config: str | None, what: str) -> SSHTarget:
        seen.append(spec)
        found = configs[spec.host]
        return SSHTarget(**{**found.__dict__, "user": spec.user or found.user, "port": spec.port or found.port})

    resolve.seen = seen  # type: ignore[attr-defined]
    return resolve


def names(route: Route) -> list[str]:
    return [hop.name for hop in route.hops]


def test_a_host_without_proxy_is_direct_and_one_with_a_command_goes_through_it():
    assert plan_route("u", target("hv1")).direct
    route = plan_route("u", target("hv1", command="nc hv1 22"))
    assert (route.direct, route.hops, route.proxy_command) == (False, (), "nc hv1 22")


def test_one_and_two_hops_in_chain_order_each_with_its_own_config():
    configs = {"b1": target("b1", port=2201, user="jump"), "b2": target("b2")}
    route = plan_route("u", target("hv1", jump="b1,ops@b2:33"), resolve=resolver(configs))
    assert names(route) == ["b1", "b2"]
    assert [(h.target.address, h.target.port, h.target.user) for h in route.hops] == [
        ("b1.example", 2201, "jump"), ("b2.example", 33, "ops")]


def test_only_the_first_hop_follows_its_own_proxyjump_or_proxycommand_as_ssh_j_does():
    configs = {"b1": target("b1", jump="b0"), "b0": target("b0"), "b2": target("b2", jump="elsewhere"),
               "c1": target("c1", command="nc c1 22"), "b3": target("b3", command="nc b3 22")}
    resolve = resolver(configs)
    assert names(plan_route("u", target("hv1", jump="b1,b2"), resolve=resolve)) == ["b0", "b1", "b2"]
    assert "elsewhere" not in [spec.host for spec in resolve.seen]  # b2's own ProxyJump: not even resolved
    route = plan_route("u", target("hv1", jump="c1,b3"), resolve=resolve)
    assert [(h.name, h.proxy_command) for h in route.hops] == [("c1", "nc c1 22"), ("b3", "")]


@pytest.mark.parametrize(("host", "configs", "path"), [
    (target("hv1", jump="hv1-again"), {"hv1-again": target("hv1")}, "hv1 -> hv1-again (hv1-again is hv1)"),
    (target("hv1", jump="b1,b2,b1"), {"b1": target("b1"), "b2": target("b2")}, "hv1 -> b1 -> b2 -> b1"),
    (target("hv1", jump="b1"), {"b1": target("b1", jump="b2"), "b2": target("b2", jump="b1")},
     "hv1 -> b1 -> b2 -> b1"),
    (target("hv1", jump="b1"), {"b1": target("b1", jump="b1")}, "hv1 -> b1 -> b1"),
])
def test_a_loop_is_refused_in_one_line_before_anything_connects(host, configs, path):
    with pytest.raises(InvalidURI) as refused:
        plan_route("qemu+ssh://hv1/system", host, resolve=resolver(configs))
    assert str(refused.value) == f"qemu+ssh://hv1/system: ProxyJump loop: {path}"


def test_two_names_of_one_host_are_one_hop():
    configs = {"b1": target("b1", address="10.9.9.9"), "b1-alias": target("b1-alias", address="10.9.9.9")}
    with pytest.raises(InvalidURI, match=r"ProxyJump loop: hv1 -> b1 -> b1-alias \(b1-alias is b1\)"):
        plan_route("u", target("hv1", jump="b1,b1-alias"), resolve=resolver(configs))
    configs["b1-alias"] = target("b1-alias", address="10.9.9.9", user="other")  # as another user: another hop
    assert names(plan_route("u", target("hv1", jump="b1,b1-alias"), resolve=resolver(configs))) == ["b1", "b1-alias"]


def test_nested_chains_count_toward_max_hops():
    configs = {f"j{i}": target(f"j{i}", jump=f"j{i + 1}" if i < MAX_HOPS + 2 else "") for i in range(MAX_HOPS + 3)}
    with pytest.raises(InvalidURI, match=f"more than {MAX_HOPS} jump hosts on the way to hv1"):
        plan_route("u", target("hv1", jump="j0"), resolve=resolver(configs))
    configs[f"j{MAX_HOPS - 1}"] = target(f"j{MAX_HOPS - 1}")
    assert len(plan_route("u", target("hv1", jump="j0"), resolve=resolver(configs)).hops) == MAX_HOPS


def test_each_hop_is_resolved_with_ssh_g_and_its_own_config(tmp_path):
    config = write(tmp_path / "config", "Host hv1\n  HostName 10.0.0.1\n  ProxyJump jb\n"
                                        "Host jb\n  HostName 10.9.9.9\n  Port 2222\n  User jump\n"
                                        f"  UserKnownHostsFile {tmp_path}/jb_known\n  StrictHostKeyChecking yes\n")
    host = resolve_target(parse_uri("qemu+ssh://ops@hv1/system?known_hosts=/k"), str(config))
    (hop,) = plan_route("u", host, str(config)).hops
    assert (hop.target.address, hop.target.port, hop.target.user, hop.target.strict) == (
        "10.9.9.9", 2222, "jump", "yes")
    assert hop.target.known_hosts == f"{tmp_path}/jb_known"  # not the URI's known_hosts: that is the host's


# -- shared jump-host connections ------------------------------------------------------------------

class _FakeClient:
    def __init__(self) -> None:
        self.active = True
        self.closed = False

    def get_transport(self):  # noqa: ANN201
        return self

    def is_active(self) -> bool:
        return self.active and not self.closed

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_connect(monkeypatch):
    """sshbastions' connect of one hop replaced: (the clients made, in order, with their hop's name)."""
    made: list[tuple[str, _FakeClient]] = []
    gate = threading.Event()
    gate.set()

    def connect(uri, host, hops, index, upstream, timeout):  # noqa: ANN001, ANN202
        gate.wait(5)
        if hops[index].name == "broken":
            raise ConnectionFailed(f"{uri}: cannot reach broken")
        client = _FakeClient()
        made.append((hops[index].name, client))
        return client

    monkeypatch.setattr(sshbastions, "_connect", connect)
    yield made, gate
    assert sshbastions.open_links() == 0


def hops(*names_: str) -> tuple[Hop, ...]:
    return tuple(Hop(HopSpec(name), target(name)) for name in names_)


def test_one_connection_per_hop_for_every_host_behind_it_closed_with_the_last(fake_connect):
    made, _ = fake_connect
    route = hops("b1", "b2")
    first = sshbastions._acquire("u1", "hv1", route, 1, 5)
    second = sshbastions._acquire("u2", "hv2", route, 1, 5)
    other = sshbastions._acquire("u3", "hv3", route[:1], 0, 5)  # a host right behind b1: b1's link too
    assert first is second and [name for name, _ in made] == ["b1", "b2"]
    assert sshbastions.open_links() == 2
    sshbastions._release(first)
    sshbastions._release(other)
    assert not any(client.closed for _, client in made)  # hv2 still goes through both
    sshbastions._release(second)
    assert all(client.closed for _, client in made)


def test_hosts_connecting_at_once_share_the_one_connection_being_made(fake_connect):
    made, gate = fake_connect
    gate.clear()  # the first connect waits until both threads are in
    route = hops("b1")
    links: list = []
    threads = [threading.Thread(target=lambda: links.append(sshbastions._acquire("u", "hv", route, 0, 5)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(0.1)
    gate.set()
    for thread in threads:
        thread.join(5)
    assert len(links) == 4 and len({id(link) for link in links}) == 1 and len(made) == 1
    for link in links:
        sshbastions._release(link)


def test_a_dead_connection_is_made_again_and_a_failed_one_lets_its_upstream_go(fake_connect):
    made, _ = fake_connect
    link = sshbastions._acquire("u", "hv", hops("b1"), 0, 5)
    made[0][1].active = False  # the bastion went away
    again = sshbastions._acquire("u", "hv", hops("b1"), 0, 5)
    assert again is link and len(made) == 2 and made[0][1].closed and not made[1][1].closed
    sshbastions._release(link)
    sshbastions._release(again)
    with pytest.raises(ConnectionFailed, match="cannot reach broken"):
        sshbastions._acquire("u", "hv", hops("b1", "broken"), 1, 5)
    assert made[2][0] == "b1" and made[2][1].closed  # connected for the broken hop, closed with its failure


# -- ProxyCommand --------------------------------------------------------------------------------

def test_a_command_that_exits_says_so_with_its_first_complaint():
    proxy = ShellProxyCommand("sh -c 'echo no route >&2; echo second >&2; exit 3'")  # ssh too runs `exec COMMAND`
    proxy.settimeout(5)
    try:
        assert proxy.recv(100) == b"" and proxy.recv(100) == b""  # the end, every time: no spinning
        assert proxy.failure("hv1", 1) == "the ProxyCommand of hv1 exited with status 3 before an SSH server " \
                                          "answered: no route"
    finally:
        proxy.close()


def test_a_command_that_prints_something_else_is_named_for_it():
    proxy = ShellProxyCommand("printf 'HTTP/1.1 400 Bad Request\\r\\n'; sleep 30")
    proxy.settimeout(5)
    try:
        assert proxy.recv(100).startswith(b"HTTP/1.1")
        assert not proxy.greeted
        assert proxy.failure("hv1", 1) == ("the ProxyCommand of hv1 printed something other than an SSH "
                                           "server's greeting")
    finally:
        proxy.close()
    assert proxy.closed


def test_a_command_gone_before_anything_was_read_is_still_told_apart():
    """paramiko writes its greeting first: EPIPE ends the connection before it reads anything, and the
    transport closes the command. Its exit status and what it printed still say what happened."""
    proxy = ShellProxyCommand("sh -c 'printf garbage; exit 2'")
    proxy.process.wait(5)
    with pytest.raises(OSError):
        proxy.send(b"SSH-2.0-paramiko\r\n")
    proxy.close()
    assert proxy.failure("hv1", 10) == ("the ProxyCommand of hv1 printed something other than an SSH "
                                        "server's greeting")
    quiet = ShellProxyCommand("sh -c 'exit 2'")
    quiet.process.wait(5)
    quiet.close()
    assert quiet.failure("hv1", 10) == "the ProxyCommand of hv1 exited with status 2 before an SSH server answered"


def test_a_silent_command_times_out_like_a_socket_and_is_named():
    proxy = ShellProxyCommand("sleep 30")
    proxy.settimeout(0.2)
    try:
        began = time.monotonic()
        with pytest.raises(socket.timeout):
            proxy.recv(100)
        assert time.monotonic() - began < 2
        assert proxy.failure("hv1", 10) == "the ProxyCommand of hv1 brought no SSH server's greeting within 10 s"
    finally:
        proxy.close()


def test_closing_kills_the_command_s_whole_process_group(tmp_path):
    pid_file = tmp_path / "pid"
    proxy = ShellProxyCommand(f"sh -c 'sleep 300 & echo $! > {pid_file}; exec sleep 300'")
    deadline = time.monotonic() + 5
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child = int(pid_file.read_text())
    proxy.close()
    deadline = time.monotonic() + 5
    while Path(f"/proc/{child}").exists() and Path(f"/proc/{child}/stat").read_text().split()[2] != "Z":
        assert time.monotonic() < deadline, "the command's child outlived close()"
        time.sleep(0.02)


def test_a_chatty_stderr_never_blocks_the_command_and_is_kept_bounded():
    proxy = ShellProxyCommand("head -c 1000000 /dev/zero | tr '\\0' x >&2; echo done")
    proxy.settimeout(10)
    try:
        assert proxy.recv(100) == b"done\n"  # it got past a megabyte of stderr
    finally:
        proxy.close()
    assert len(proxy._stderr) == MAX_STDERR


def test_the_command_runs_in_the_user_s_shell_as_in_ssh(monkeypatch, tmp_path):
    shell = write(tmp_path / "myshell", "#!/bin/sh\necho \"shell $0\"\n")
    shell.chmod(0o755)
    monkeypatch.setenv("SHELL", str(shell))
    proxy = ShellProxyCommand("true")
    proxy.settimeout(5)
    try:
        assert proxy.recv(100) == f"shell {shell}\n".encode()
    finally:
        proxy.close()
    monkeypatch.setenv("SHELL", "not-a-path")  # not an absolute, executable path: /bin/sh, as its fallback
    assert ShellProxyCommand("true").cmd == ["/bin/sh", "-c", "exec true"]


# -- ProxyCommand to an in-process SSH server ----------------------------------------------------

class _AnyKeyServer(paramiko.ServerInterface):
    def get_allowed_auths(self, username):  # noqa: ANN001, ANN201
        return "publickey"

    def check_auth_publickey(self, username, key):  # noqa: ANN001, ANN201
        return paramiko.AUTH_SUCCESSFUL


@pytest.fixture
def ssh_server(tmp_path):
    """(port, host key, client key file): an SSH server that lets anyone in. Stopped by shutting its
    listener down first: a listener merely closed under a thread in accept() keeps that thread waiting
    on a descriptor number the next test's listener may get."""
    host_key = paramiko.ECDSAKey.generate()
    paramiko.ECDSAKey.generate().write_private_key_file(str(tmp_path / "id"))
    listener = socket.create_server(("127.0.0.1", 0))
    servers: list[paramiko.Transport] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            server = paramiko.Transport(conn)
            server.add_server_key(host_key)
            servers.append(server)
            try:
                server.start_server(server=_AnyKeyServer())
            except (paramiko.SSHException, EOFError, OSError):
                continue

    thread = threading.Thread(target=serve, name="test-ssh-server", daemon=True)
    thread.start()
    yield listener.getsockname()[1], host_key, tmp_path / "id"
    listener.shutdown(socket.SHUT_RDWR)  # wakes accept() with an error
    thread.join(10)
    listener.close()
    for server in servers:
        server.close()
    assert not thread.is_alive()


RELAY = """\
import os, socket, sys, threading
conn = socket.create_connection((sys.argv[1], int(sys.argv[2])))
def up():
    while data := os.read(0, 65536):
        conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
while data := conn.recv(65536):
    os.write(1, data)
"""


def test_a_proxycommand_host_is_verified_as_any_other(tmp_path, ssh_server):
    port, host_key, keyfile = ssh_server
    relay = write(tmp_path / "relay.py", RELAY)
    known = tmp_path / "known"
    config = write(tmp_path / "config", f"Host hv1\n  HostName 127.0.0.1\n  Port {port}\n  User ops\n"
                                        f"  IdentityFile {keyfile}\n  UserKnownHostsFile {known}\n"
                                        f"  ProxyCommand {sys.executable} {relay} %h %p\n")
    transport = ssh.SSHTransport(parse_uri("qemu+ssh://hv1/system"), ssh_config_path=str(config))
    assert transport.description.endswith(" via its ProxyCommand")
    with pytest.raises(UnknownHostKey) as unknown:  # the server answered: its key is asked about, as directly
        transport.connect()
    assert (unknown.value.host, unknown.value.label) == (f"[127.0.0.1]:{port}",) * 2
    transport.trust_key(unknown.value)
    try:
        transport.connect()  # the in-process server runs no commands: an authenticated connection is the test
        assert transport._client is not None and transport._alive(transport._client)
    finally:
        transport.close()
    assert known.read_text() == f"[127.0.0.1]:{port} {host_key.get_name()} {host_key.get_base64()}\n"


def test_a_proxycommand_that_never_answers_is_bounded_by_the_connect_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr(ssh, "CONNECT_TIMEOUT", 1.0)
    config = write(tmp_path / "config", "Host hv1\n  ProxyCommand sleep 30\n")
    transport = ssh.SSHTransport(parse_uri("qemu+ssh://hv1/system"), ssh_config_path=str(config))
    began = time.monotonic()
    with pytest.raises(ConnectionFailed) as failed:
        transport.connect()
    assert time.monotonic() - began < 5
    assert str(failed.value) == ("qemu+ssh://hv1/system: the ProxyCommand of hv1 brought no SSH server's "
                                 "greeting within 1 s")
    assert not [pid for pid in _children() if _comm(pid) == "sleep"]  # killed, not left behind


def _children() -> list[int]:
    me = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                found.append(int(entry))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
