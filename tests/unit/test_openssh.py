"""The OpenSSH transport's command lines, its one-line errors, and how it is chosen (config, registry).

The transport itself runs against real sshd hosts in tests/realstack (every SSH test there runs once
per SSH client); here, what it hands ssh: options from the target and the URI, quoting, refusals.
"""

from __future__ import annotations

import os
import re
import stat

import pytest

from virttui.config import ConfigError, load_config
from virttui.drivers import openssh
from virttui.drivers.errors import InvalidURI
from virttui.drivers.sshclients import choose_ssh_clients, ssh_client_for
from virttui.drivers.sshtarget import SSHTarget
from virttui.drivers.uri import parse_uri

URI = "qemu+ssh://admin@hv1:2222/system"


def target(**changes: object) -> SSHTarget:
    values: dict = dict(host="hv1", address="10.0.0.1", port=2222, user="admin", key_files=(),
                        known_hosts="/home/a/.ssh/known_hosts", strict="ask",
                        known_hosts_files=("/home/a/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts"))
    values.update(changes)
    return SSHTarget(**values)


def options(argv: list[str]) -> dict[str, str]:
    return dict(argv[i + 1].split("=", 1) for i, arg in enumerate(argv) if arg == "-o")


def master(uri: str = URI, **changes: object) -> list[str]:
    return openssh.master_argv("/usr/bin/ssh", parse_uri(uri), target(**changes), ("-F", "/cfg"), "/run/d/ctl",
                               "/run/d/accepted", 10.0)


def test_the_master_is_private_strict_and_keeps_the_uri_and_config():
    argv = master(URI + "?keyfile=/keys/id_ed25519")
    assert argv[:3] == ["/usr/bin/ssh", "-F", "/cfg"] and argv[-2:] == ["--", "hv1"]
    assert ["-S", "/run/d/ctl"] == argv[3:5] and "-M" in argv and "-N" in argv
    assert argv[argv.index("-l") + 1] == "admin" and argv[argv.index("-p") + 1] == "2222"
    assert argv[argv.index("-i") + 1] == "/keys/id_ed25519"
    opts = options(argv)
    assert opts["ControlMaster"] == "yes" and opts["ControlPersist"] == "no" and opts["BatchMode"] == "yes"
    assert opts["StrictHostKeyChecking"] == "yes"  # ask has no dialog here: refused, never accepted
    assert opts["UserKnownHostsFile"] == "/home/a/.ssh/known_hosts /etc/ssh/ssh_known_hosts"
    assert opts["GlobalKnownHostsFile"] == os.devnull
    assert (opts["ServerAliveInterval"], opts["ServerAliveCountMax"], opts["ConnectTimeout"]) == ("15", "3", "10")


def test_the_targets_keepalive_and_timeout_win():
    opts = options(master(alive_interval=5, alive_count_max=2, connect_timeout=4.0))
    assert (opts["ServerAliveInterval"], opts["ServerAliveCountMax"], opts["ConnectTimeout"]) == ("5", "2", "4")


def test_no_verify_accepts_unknown_keys_into_a_scratch_file_and_still_refuses_changed_ones():
    opts = options(master(strict="no"))
    assert opts["StrictHostKeyChecking"] == "accept-new"  # `no` would connect despite a changed key
    assert opts["UserKnownHostsFile"].split()[0] == "/run/d/accepted"  # where ssh writes: thrown away
    assert options(master(strict="accept-new"))["UserKnownHostsFile"].split()[0] == "/home/a/.ssh/known_hosts"


def test_paths_are_quoted_and_escaped_as_ssh_reads_them():
    opts = options(master(known_hosts_files=("/h/my files/known 100%",)))
    assert opts["UserKnownHostsFile"] == '"/h/my files/known 100%%"'
    argv = master(URI + "?keyfile=/k/100%25key")
    assert argv[argv.index("-i") + 1] == "/k/100%%key"


@pytest.mark.parametrize("path", ['/k/"quoted"', "/k/${HOME}", "/k/line\nbreak", ""])
def test_a_path_ssh_would_read_otherwise_is_refused(path):
    with pytest.raises(InvalidURI, match="cannot be given to ssh"):
        master(known_hosts_files=(path,))


@pytest.mark.parametrize("host", ["-oProxyCommand=x", "hv 1", "hv\x1b"])
def test_a_host_that_would_be_an_option_is_refused(host):
    with pytest.raises(InvalidURI, match="cannot be given to ssh"):
        master(host=host)


def test_a_client_shares_the_master_and_never_connects_on_its_own():
    argv = openssh.client_argv("/usr/bin/ssh", parse_uri(URI), target(), (), "/run/d/ctl", "exec /bin/sh")
    opts = options(argv)
    assert ["-S", "/run/d/ctl"] == argv[1:3] and "-T" in argv and "-M" not in argv
    assert opts["ControlMaster"] == "no" and opts["ProxyCommand"] == "false" and opts["RemoteCommand"] == "none"
    assert argv[-3:] == ["--", "hv1", "exec /bin/sh"]  # one remote command string, quoted by the caller
    tty = openssh.client_argv("/usr/bin/ssh", parse_uri(URI), target(), (), "/c", "virsh console x", tty=True)
    assert "-t" in tty and "-T" not in tty


@pytest.mark.parametrize("stderr, needle", [
    (b"@@@@@@\r\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\r\n@@@@@@\r\nHost key verification failed.\r\n",
     "CHANGED"),
    (b"No ED25519 host key is known for [127.0.0.1]:22 and you have requested strict checking.\r\n"
     b"Host key verification failed.\r\n", "not in known_hosts"),
    (b"@   WARNING: REVOKED HOST KEY DETECTED!   @\nHost key verification failed.\n", "@revoked"),
    (b"root@hv1: Permission denied (publickey).\r\n", "Permission denied (publickey)"),
])
def test_ssh_failures_are_one_printable_line_naming_the_host(stderr, needle):
    message = openssh.explain_ssh_failure(stderr, "hv1")
    assert message.startswith("hv1: ") and needle in message
    assert "\n" not in message and message.isprintable()


def test_sshs_stderr_is_bounded_and_made_printable():
    message = openssh.explain_ssh_failure(b"x" * 100_000 + b"\n\x1b[31mbad\x07 \xff thing\n", "hv1")
    assert message == "hv1: ?[31mbad? \ufffd thing"
    assert len(openssh.explain_ssh_failure(b"y" * 100_000, "hv1")) <= openssh.MAX_ERROR_LINE + 10


def test_the_private_directory_is_fresh_and_ours_alone(monkeypatch):
    import shutil
    import tempfile

    runtime = tempfile.mkdtemp(prefix="vt", dir="/tmp")  # short: a socket path has room for 107 bytes
    try:
        monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
        made = {openssh._private_dir() for _ in range(3)}
        assert len(made) == 3
        for path in made:
            mode = os.lstat(path).st_mode
            assert stat.S_ISDIR(mode) and stat.S_IMODE(mode) == 0o700 and os.path.dirname(path) == runtime
        long = runtime + "/" + "x" * 80
        for unusable in (long, runtime + "/with space", runtime + "/100%"):  # no room for a socket; not plain
            os.makedirs(unusable)
            monkeypatch.setenv("XDG_RUNTIME_DIR", unusable)
            fallback = openssh._private_dir()
            os.rmdir(fallback)
            assert os.path.dirname(fallback) == "/tmp"
    finally:
        shutil.rmtree(runtime)


def test_the_ssh_client_is_chosen_globally_or_per_host():
    try:
        choose_ssh_clients("openssh", {"qemu+ssh://b/system": "paramiko"})
        assert ssh_client_for("qemu+ssh://a/system") == "openssh"
        assert ssh_client_for("qemu+ssh://b/system") == "paramiko"
        with pytest.raises(InvalidURI, match=re.escape("ssh_client 'putty' is not one of paramiko, openssh")):
            choose_ssh_clients("putty")
        assert ssh_client_for("qemu+ssh://a/system") == "openssh"  # a refused choice changes nothing
    finally:
        choose_ssh_clients()
    assert ssh_client_for("qemu+ssh://a/system") == "paramiko"


def test_an_openssh_host_gets_the_openssh_transport(monkeypatch):
    from virttui.drivers.registry import open_driver

    monkeypatch.setattr(openssh, "resolve_target", lambda uri, path=None: target())
    monkeypatch.setattr(openssh, "_config_file", lambda path: ("/cfg", ()))
    try:
        choose_ssh_clients("paramiko", {URI: "openssh"})
        driver = open_driver(URI)
        assert isinstance(driver.transport, openssh.OpenSSHTransport)  # type: ignore[attr-defined]
        assert driver.transport.description == "openssh admin@10.0.0.1:2222"  # type: ignore[attr-defined]
    finally:
        choose_ssh_clients()


def test_the_config_chooses_the_client_globally_and_per_host(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('ssh_client = "openssh"\n[[hosts]]\nuri = "qemu+ssh://a/system"\nssh_client = "paramiko"\n'
                    '[[hosts]]\nuri = "qemu+ssh://b/system"\n')
    config = load_config(str(path))
    assert config.ssh_client == "openssh" and config.ssh_clients == (("qemu+ssh://a/system", "paramiko"),)
    path.write_text('[[hosts]]\nuri = "qemu+ssh://a/system"\n')
    assert load_config(str(path)).ssh_client == "paramiko"  # the default


@pytest.mark.parametrize("text, key", [
    ('ssh_client = "OpenSSH"\n', "ssh_client"),
    ("ssh_client = 1\n", "ssh_client"),
    ('[[hosts]]\nuri = "qemu+ssh://a/system"\nssh_client = "libssh"\n', "hosts[0].ssh_client"),
])
def test_a_bad_ssh_client_is_one_line_naming_the_file(tmp_path, text, key):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: {key} must be \"paramiko\" or \"openssh\"") and "\n" not in message
