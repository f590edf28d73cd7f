"""virttui against real libvirtd + QEMU hosts, locally (virsh) and over SSH (paramiko).

The `realstack` fixture (tests/realstack/) starts two private test hosts,
each in its own mount namespace with its own libvirtd, virtlogd and sshd.
Nothing here is mocked: what virttui shows is checked against what virsh says.
"""

from __future__ import annotations

import json
import os
import time
import uuid as uuidlib

import pytest
from support.app import settle
from support.realhosts import select_domain, until, uri_with_known_hosts

from realstack.fixtures import ssh_client_chosen

from virttui.cli import main
from virttui.console.app import VirtTUI
from virttui.drivers.base import Action
from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.model import ConnectionState, DomainState
from virttui.drivers.registry import open_driver
from virttui.screens.confirm import ConfirmScreen

pytestmark = pytest.mark.realstack

# libvirt refuses "/" in names; a command that did run would leave PWNED in the shell's cwd or in $HOME.
PWNED = ".virttui-pwned"
# libvirt itself refuses "/" and newlines in names; tabs and long names it takes (the qemu driver keeps a
# NAME.xml, so a name is bounded by the file-name limit: 200 characters here).
HOSTILE_NAMES = (f"vttest-x'; touch {PWNED}; '", f"vttest-\"; touch {PWNED}; \"", "vttest-naïve guest with spaces",
                 "vttest-$(id)`id`", "vttest-tab\there\\n", "vttest-" + "x" * 193)


def virsh_states(host) -> dict[str, str]:  # noqa: ANN001 - harness TestHost
    """name -> state as virsh on the host itself reports it."""
    states = {}
    for uuid in host.virsh("list", "--all", "--uuid").split():
        name = host.virsh("domname", uuid).strip()
        states[name] = host.virsh("domstate", uuid).strip()
    return states


def uuid_of(host, name: str) -> str:  # noqa: ANN001
    return host.virsh("domuuid", name).strip()


@pytest.fixture
def guest(realstack):
    """A fresh shut-off guest on host 1, removed afterwards."""
    host = realstack.hosts[0]
    name = f"vttest-g{uuidlib.uuid4().hex[:6]}"
    uuid = host.define_guest(name)
    yield host, name, uuid
    host.undefine_guest(name)


def wait_for(predicate, timeout: float = 20.0, step: float = 0.05):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


@pytest.fixture
def guests_on_both(realstack):
    """A running and a shut-off guest on each host, so the listings compared are never empty."""
    made = []
    for host in realstack.hosts:
        for state in ("run", "off"):
            name = f"vttest-{state}{uuidlib.uuid4().hex[:6]}"
            host.define_guest(name, start=state == "run")
            made.append((host, name))
    yield made
    for host, name in made:
        host.undefine_guest(name)


@pytest.mark.parametrize("kind", ["local", "ssh", "openssh"])
def test_status_json_agrees_with_virsh(realstack, guests_on_both, kind, capsys, private_home):
    if kind == "openssh":  # the config file's global choice, as an operator sets it
        (private_home / ".config" / "virttui").mkdir(parents=True)
        (private_home / ".config" / "virttui" / "config.toml").write_text('ssh_client = "openssh"\n')
    for host in realstack.hosts:
        uri = host.local_uri if kind == "local" else host.ssh_uri
        assert main(["status", "--json", "-c", uri]) == 0
        (reported,) = json.loads(capsys.readouterr().out)["hosts"]
        assert reported["state"] == "connected"
        states = {d["name"]: d["state"] for d in reported["domains"]}
        mine = {name for owner, name in guests_on_both if owner is host}
        assert mine <= set(states) and {states[n] for n in mine} == {"running", "shut off"}
        assert states == virsh_states(host)
        for dom in reported["domains"]:
            assert dom["uuid"] == uuid_of(host, dom["name"])


def test_hosts_are_distinct(realstack, guests_on_both):
    one, two = (set(virsh_states(h)) for h in realstack.hosts)
    assert len(one) >= 2 and len(two) >= 2 and not one & two


async def test_every_lifecycle_key_against_a_real_guest_over_ssh(realstack, guest, ssh_client):
    host, name, uuid = guest
    driver = open_driver(host.ssh_uri)
    app = VirtTUI([driver], poll_interval=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        def shown() -> DomainState | None:
            dom = app.fleet.domain(driver.uri, uuid)
            return dom.state if dom else None

        await until(pilot, lambda: shown() is DomainState.SHUT_OFF)
        await select_domain(pilot, driver.uri, uuid)

        await pilot.press("s")
        await until(pilot, lambda: shown() is DomainState.RUNNING)
        assert host.virsh("domstate", uuid).strip() == "running"

        await pilot.press("p")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)  # pausing asks first; resuming does not
        await pilot.press("y")
        await until(pilot, lambda: shown() is DomainState.PAUSED)
        assert host.virsh("domstate", uuid).strip() == "paused"

        await pilot.press("p")
        await until(pilot, lambda: shown() is DomainState.RUNNING)
        assert host.virsh("domstate", uuid).strip() == "running"

        await pilot.press("r")  # a guest without an OS ignores ACPI: the request itself must succeed
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await settle(pilot)
        assert not [n for n in app._notifications if n.severity == "error"]  # noqa: SLF001
        assert host.virsh("domstate", uuid).strip() in ("running", "in shutdown")

        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await until(pilot, lambda: shown() is DomainState.SHUT_OFF)
        assert host.virsh("domstate", uuid).strip() == "shut off"


async def test_an_invalid_action_is_a_notification_not_a_crash(realstack, guest):
    host, name, uuid = guest
    driver = open_driver(host.local_uri)
    driver.connect()
    try:
        with pytest.raises(Exception) as info:
            driver.perform(uuid, Action.RESUME)
        assert "not" in str(info.value) and "\n" not in str(info.value)
    finally:
        driver.close()


async def test_an_external_virsh_change_arrives_through_events(realstack, guest, ssh_client):
    host, name, uuid = guest
    driver = open_driver(host.ssh_uri)
    app = VirtTUI([driver], poll_interval=3600)  # no timed poll will come: only events can tell
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.fleet.domain(driver.uri, uuid) is not None)
        await pilot.pause(1.0)  # the event stream is up
        host.virsh("start", uuid)
        # within 10 s, with an hour-long poll interval: only an event can have brought it
        await until(pilot, lambda: app.fleet.domain(driver.uri, uuid).state is DomainState.RUNNING, timeout=10)
        host.virsh("destroy", uuid)
        await until(pilot, lambda: app.fleet.domain(driver.uri, uuid).state is DomainState.SHUT_OFF, timeout=10)


async def test_unknown_host_key_is_trusted_only_after_the_operator_accepts(realstack, tmp_path):
    host = realstack.hosts[1]
    known = tmp_path / "known_hosts"
    driver = open_driver(uri_with_known_hosts(host, str(known)))
    app = VirtTUI([driver], poll_interval=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        body = str(app.screen.query_one("#dialog-body").render())
        assert "SHA256:" in body and not known.exists()
        assert app.fleet.host(driver.uri).state is ConnectionState.ERROR
        await pilot.press("y")  # no single key trusts a host key
        await pilot.pause(0.3)
        assert isinstance(app.screen, ConfirmScreen) and not known.exists()
        await pilot.press("tab", "enter")
        await until(pilot, lambda: app.fleet.host(driver.uri).state is ConnectionState.CONNECTED)
    assert f"[127.0.0.1]:{host.ssh_port} " in known.read_text()


@pytest.mark.parametrize("query", ["", "&no_verify=1"])  # libvirt: no_verify accepts new keys, still checks known ones
def test_a_changed_host_key_is_refused(realstack, tmp_path, query, ssh_client):
    host = realstack.hosts[0]
    other = realstack.hosts[1]
    known = tmp_path / "known_hosts"
    # host 1's port with host 2's key: what a man in the middle would look like
    theirs = [line for line in open(realstack.known_hosts) if line.startswith(f"[127.0.0.1]:{other.ssh_port} ")]
    known.write_text("".join(line.replace(f":{other.ssh_port} ", f":{host.ssh_port} ", 1) for line in theirs))
    driver = open_driver(uri_with_known_hosts(host, str(known)) + query)
    with pytest.raises(ConnectionFailed, match="CHANGED"):
        driver.connect()
    driver.close()


def test_a_revoked_host_key_is_refused_and_never_offered_for_trust(realstack, tmp_path, ssh_client):
    host = realstack.hosts[0]
    known = tmp_path / "known_hosts"
    mine = [line for line in open(realstack.known_hosts) if line.startswith(f"[127.0.0.1]:{host.ssh_port} ")]
    revoked = ["@revoked * " + line.split(" ", 1)[1] for line in mine]
    # listed for the host and revoked in the same file, behind a CA line paramiko can't parse
    known.write_text("@cert-authority *.example.com " + mine[0].split(" ", 1)[1] + "".join(mine + revoked))
    driver = open_driver(uri_with_known_hosts(host, str(known)))
    with pytest.raises(ConnectionFailed, match="@revoked"):
        driver.connect()
    assert driver.pending_host_key() is None
    driver.close()
    known.write_text("@cert-authority *.example.com " + mine[0].split(" ", 1)[1] + "".join(mine))
    driver = open_driver(uri_with_known_hosts(host, str(known)))
    try:
        driver.connect()  # the CA line is skipped, the host's own line still counts
        assert driver.poll().host.state is ConnectionState.CONNECTED
    finally:
        driver.close()


def test_no_verify_accepts_an_unknown_key_without_saving(realstack, tmp_path, ssh_client):
    host = realstack.hosts[0]
    known = tmp_path / "known_hosts"
    driver = open_driver(uri_with_known_hosts(host, str(known)) + "&no_verify=1")
    driver.connect()
    try:
        assert driver.poll().host.state is ConnectionState.CONNECTED
    finally:
        driver.close()
    assert not known.exists()


async def test_sshd_killed_mid_session_then_back(realstack, ssh_client):
    host = realstack.hosts[1]
    driver = open_driver(host.ssh_uri)
    app = VirtTUI([driver], poll_interval=0.3)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.fleet.host(driver.uri).state is ConnectionState.CONNECTED)
        host.stop_sshd()
        try:
            await until(pilot, lambda: app.fleet.host(driver.uri).state is ConnectionState.ERROR)
            assert app.fleet.host(driver.uri).last_error
        finally:
            host.start_sshd()
        await until(pilot, lambda: app.fleet.host(driver.uri).state is ConnectionState.CONNECTED, timeout=60)


async def test_libvirtd_restarted(realstack, ssh_client):
    host = realstack.hosts[1]
    driver = open_driver(host.ssh_uri)
    app = VirtTUI([driver], poll_interval=0.3)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.fleet.host(driver.uri).state is ConnectionState.CONNECTED)
        host.stop_libvirtd()
        try:
            await until(pilot, lambda: app.fleet.host(driver.uri).state is ConnectionState.ERROR)
            assert "connect" in app.fleet.host(driver.uri).last_error
        finally:
            host.start_libvirtd()
        await until(pilot, lambda: app.fleet.host(driver.uri).state is ConnectionState.CONNECTED, timeout=60)


@pytest.mark.parametrize("kind", ["local", "ssh", "openssh"])
def test_hostile_domain_names_work_and_run_nothing(realstack, kind):
    host = realstack.hosts[0]
    traces = [os.path.join(os.getcwd(), PWNED), os.path.join(os.path.expanduser("~root"), PWNED)]
    for trace in traces:
        if os.path.exists(trace):
            os.unlink(trace)
    uuids = {name: host.define_guest(name) for name in HOSTILE_NAMES}
    try:
        with ssh_client_chosen("openssh" if kind == "openssh" else "paramiko"):
            driver = open_driver(host.local_uri if kind == "local" else host.ssh_uri)
        driver.connect()
        try:
            shown = {d.name: d for d in driver.poll().domains}
            for name, uuid in uuids.items():
                assert shown[name].uuid == uuid
            victim = uuids[HOSTILE_NAMES[0]]
            driver.perform(victim, Action.START)
            assert {d.uuid: d.state for d in driver.poll().domains}[victim] is DomainState.RUNNING
            assert f"<uuid>{victim}</uuid>" in driver.domain_xml(victim)
            driver.perform(victim, Action.DESTROY)
        finally:
            driver.close()
    finally:
        for name in HOSTILE_NAMES:
            host.undefine_guest(name)
    assert not any(os.path.exists(trace) for trace in traces)
    assert host.run("sh", "-c", f"test ! -e ~/{PWNED}", check=False).returncode == 0


def test_every_remote_argument_arrives_verbatim(realstack, ssh_client):
    """The SSH transport quotes each argument: what the remote program gets is exactly what we sent."""
    driver = open_driver(realstack.hosts[0].ssh_uri)
    assert driver.transport.description.startswith("openssh " if ssh_client == "openssh" else "ssh ")
    driver.connect()
    try:
        for text in (*HOSTILE_NAMES, "a\nb", "$HOME", "*", "", "naïve ünïcödé", "x" * 1000):
            result = driver.transport.run(["printf", "%s", text])
            assert (result.returncode, result.stdout) == (0, text)
    finally:
        driver.close()


def test_a_pooled_shell_that_died_while_idle_is_replaced_not_reported(realstack, ssh_client):
    """The connection stays up but the idle shell behind a pooled session ends (killed on the host):
    the next command gets a fresh shell instead of failing once with "closed by the host"."""
    host = realstack.hosts[0]
    driver = open_driver(host.ssh_uri)
    driver.connect()
    try:
        transport = driver.transport
        shell_pid = transport.run(["sh", "-c", "echo $PPID"]).stdout.strip()  # the pooled session's /bin/sh
        assert shell_pid.isdigit() and len(transport._idle) == 1
        host.run("kill", "-9", shell_pid)
        wait_for(lambda: not transport._idle[0].usable, timeout=10)
        result = transport.run(["echo", "still here"])
        assert (result.returncode, result.stdout) == (0, "still here\n")
        assert transport.run(["sh", "-c", "echo $PPID"]).stdout.strip() != shell_pid
    finally:
        driver.close()


def test_an_argument_that_cannot_be_sent_fails_one_command_and_keeps_the_pool(realstack, ssh_client):
    """A lone surrogate (U+D800) cannot be encoded: that command fails in one line, and its shell
    session goes back to the pool (before, each such command kept one of the few sessions forever)."""
    driver = open_driver(realstack.hosts[0].ssh_uri)
    driver.connect()
    try:
        transport = driver.transport
        for _ in range(5):
            with pytest.raises(ConnectionFailed, match="command failed over SSH"):
                transport.run_lines(["echo", "\ud800"], line_timeout=10)
        assert transport.run(["echo", "ok"]).stdout == "ok\n"
        bytes_name = os.fsdecode(b"bad\xffname")  # a name read from a host as bytes goes back as them
        assert transport.run(["printf", "%s", bytes_name]).stdout == "bad\ufffdname"
    finally:
        driver.close()


def test_the_ssh_connection_gives_up_on_a_silent_peer_within_a_minute(realstack):
    """A path that drops packets never resets the connection: the kernel is told to end it after
    DEAD_PEER_SECONDS of unacknowledged data (and to probe it while idle), so the next poll reconnects."""
    import socket

    from virttui.drivers.sshconnect import DEAD_PEER_SECONDS

    driver = open_driver(realstack.hosts[0].ssh_uri)
    driver.connect()
    try:
        sock = driver.transport._client.get_transport().sock
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == DEAD_PEER_SECONDS * 1000 <= 60_000
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) <= 30
    finally:
        driver.close()


def test_the_openssh_master_gives_up_on_a_black_hole_and_the_next_connect_starts_anew(realstack, private_home):
    """A black hole: the host's sshd processes of the connection stopped (the kernel still acknowledges,
    nothing answers). ServerAliveInterval 1 x ServerAliveCountMax 2 from ~/.ssh/config end the private
    master within seconds, a command fails long before its own timeout, and once the host answers
    again the next connect starts a new master; close removes it with its private directory."""
    import signal

    from realstack.harness import _marker_processes

    host = realstack.hosts[1]
    (private_home / ".ssh").mkdir(mode=0o700)
    (private_home / ".ssh" / "config").write_text("Host 127.0.0.1\n  ServerAliveInterval 1\n  ServerAliveCountMax 2\n")
    with ssh_client_chosen("openssh"):
        driver = open_driver(host.ssh_uri)
    driver.connect()
    transport = driver.transport
    first = transport._client
    stopped: list[int] = []
    try:
        assert transport.run(["echo", "up"]).stdout == "up\n"
        assert "ServerAliveInterval=1" in open(f"/proc/{first.proc.pid}/cmdline").read().split("\0")
        for pid in _marker_processes(host.marker):
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if cmdline.read().startswith(b"sshd: root"):
                    os.kill(pid, signal.SIGSTOP)
                    stopped.append(pid)
        assert stopped
        started = time.monotonic()
        with pytest.raises(ConnectionFailed):
            transport.run(["echo", "lost"], timeout=30)
        assert time.monotonic() - started < 10  # the master's keepalives, not the command's 30 s
        wait_for(lambda: not first.alive(), timeout=10)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
    try:
        driver.connect()
        assert transport._client is not first and transport.run(["echo", "back"]).stdout == "back\n"
        second = transport._client
    finally:
        driver.close()
    assert not os.path.exists(first.directory) and not os.path.exists(second.directory)
    assert second.proc.poll() is not None  # ended and reaped, its process group with it


def test_an_unknown_host_key_over_openssh_is_refused_in_one_line_and_never_saved(realstack, tmp_path):
    """The OpenSSH client has no trust dialog: one printable line telling the operator what to do."""
    host = realstack.hosts[1]
    known = tmp_path / "known_hosts"
    with ssh_client_chosen("openssh"):
        driver = open_driver(uri_with_known_hosts(host, str(known)))
    try:
        with pytest.raises(ConnectionFailed) as info:
            driver.connect()
        message = str(info.value)
        assert "not in known_hosts" in message and "add it" in message
        assert "\n" not in message and message.isprintable()
        assert driver.pending_host_key() is None and not known.exists()
    finally:
        driver.close()


def test_ssh_config_alias_and_the_agent_are_honoured(realstack, private_home, tmp_path, ssh_client):
    """~/.ssh/config supplies HostName, Port and User; the key comes from ssh-agent, not the URI."""
    import subprocess

    host = realstack.hosts[0]
    ssh_dir = private_home / ".ssh"
    ssh_dir.mkdir(mode=0o700)
    (ssh_dir / "config").write_text(f"Host hv-alias\n  HostName 127.0.0.1\n  Port {host.ssh_port}\n  User root\n")
    agent_sock = str(tmp_path / "agent.sock")
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", agent_sock], stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: os.path.exists(agent_sock), timeout=10)
        env = {**os.environ, "SSH_AUTH_SOCK": agent_sock}
        subprocess.run(["ssh-add", realstack.client_key], env=env, check=True, capture_output=True)
        os.environ["SSH_AUTH_SOCK"] = agent_sock
        try:
            driver = open_driver(f"qemu+ssh://hv-alias/system?known_hosts={realstack.known_hosts}")
            driver.connect()
            try:
                assert set(d.name for d in driver.poll().domains) == set(virsh_states(host))
            finally:
                driver.close()
        finally:
            del os.environ["SSH_AUTH_SOCK"]
    finally:
        agent.terminate()
        agent.wait(10)


def test_a_host_that_accepts_and_never_answers_times_out(monkeypatch, ssh_client):
    import socket

    import virttui.drivers.ssh as ssh

    monkeypatch.setattr(ssh, "CONNECT_TIMEOUT", 1.0)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)  # the kernel completes the handshake; nobody ever speaks
        port = silent.getsockname()[1]
        driver = open_driver(f"qemu+ssh://root@127.0.0.1:{port}/system")
        started = time.monotonic()
        with pytest.raises(ConnectionFailed) as info:
            driver.connect()
        assert time.monotonic() - started < 10
        assert "\n" not in str(info.value)


def test_no_key_material_reaches_the_log(realstack, tmp_path, capsys, ssh_client):
    host = realstack.hosts[0]
    log = tmp_path / "virttui.log"
    assert main(["--log", str(log), "status", "-c", host.ssh_uri]) == 0
    out = capsys.readouterr()
    secret_lines = open(realstack.client_key).read().splitlines()[1:-1]  # the base64 body of the private key
    public_blob = open(realstack.client_key + ".pub").read().split()[1]
    for text in (log.read_text(), out.out, out.err):
        assert not any(line in text for line in secret_lines)
        assert public_blob not in text
    if ssh_client == "paramiko":
        assert "Authentication (publickey) successful" in log.read_text()  # paramiko did log, and safely


def test_the_ssh_connection_sends_and_acknowledges_small_packets_at_once(realstack, monkeypatch):
    """Nagle's algorithm off, and sshd's post-login global request acknowledged at once: before,
    the key exchange took ~65 ms on loopback and the first session ~42 ms more, each a packet held
    back behind a delayed acknowledgement (virttui.drivers.sshsocket)."""
    import socket

    from virttui.drivers import sshsocket

    acknowledged = []
    real_acknowledge = sshsocket.acknowledge_now
    monkeypatch.setattr(sshsocket, "acknowledge_now",
                        lambda sock: (acknowledged.append(isinstance(sock, socket.socket)), real_acknowledge(sock)))
    host = realstack.hosts[0]
    first_sessions = []
    for _ in range(5):
        driver = open_driver(host.ssh_uri)
        try:
            transport = driver.transport
            transport.connect()
            sock = transport._client.get_transport().sock
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            wait_for(lambda: acknowledged, timeout=5)  # sshd's hostkeys-00@openssh.com, right after login
            started = time.monotonic()
            assert transport.run(["true"]).returncode == 0  # opens the first pooled shell
            first_sessions.append(time.monotonic() - started)
        finally:
            driver.close()
    assert acknowledged[0] is True
    assert min(first_sessions) < 0.030, first_sessions  # the delayed acknowledgement alone was 40 ms
