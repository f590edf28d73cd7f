"""The command line, run in-process and as a real subprocess."""

import json
import os
import subprocess
import sys

import pytest

from virttui.cli import main
from virttui.locks.embedded import write_free_lease
from virttui.locks.naming import sanlock_lease_name


def run(*args):
    return subprocess.run([sys.executable, "-m", "virttui", *args], capture_output=True, text=True, timeout=120)


def test_status_json_shape_for_the_demo(capsys):
    assert main(["status", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [h["hostname"] for h in data["hosts"]] == ["hv1", "hv2", "hv3"]
    host = data["hosts"][0]
    assert set(host) == {"uri", "hostname", "state", "error", "domains"} and host["state"] == "connected"
    dom = next(d for d in host["domains"] if d["name"] == "demo")
    assert set(dom) == {"uuid", "name", "state", "reason", "vcpus", "memory_kib", "disks"}
    assert dom["state"] == "running" and dom["memory_kib"] == 1024 * 1024
    assert dom["disks"][0] == {"target": "vda", "source": "/var/lib/libvirt/images/demo.img", "format": "raw",
                               "readonly": False, "shareable": False}
    assert {d["state"] for h in data["hosts"] for d in h["domains"]} >= {"running", "paused", "shut off", "idle",
                                                                        "crashed", "pmsuspended"}


def test_status_text_lists_every_domain(capsys):
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    for name in ("web-01", "db-replica", "legacy-app"):
        assert name in out


def test_failed_hosts_exit_one_with_one_line_each(tmp_path, capsys):
    broken = tmp_path / "broken.xml"
    broken.write_text("<node><domain>")
    code = main(["status", "-c", "nosuch://x/", "-c", f"test://{broken}", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    errors = captured.err.strip().splitlines()
    assert len(errors) == 2 and "nosuch" in errors[0] and "broken.xml" in errors[1]
    data = json.loads(captured.out)
    assert [h["state"] for h in data["hosts"]] == ["error", "error"]


def test_no_traceback_for_bad_input_in_a_real_process(tmp_path):
    out = run("status", "-c", "test:///does/not/exist.xml")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr and "exist.xml" in out.stderr
    out = run("--config", str(tmp_path / "missing.toml"), "status")
    assert out.returncode == 2 and "missing.toml" in out.stderr and "Traceback" not in out.stderr


def test_config_file_hosts_and_command_line_precedence(tmp_path, lease_dir, capsys):
    node = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "demo", "hv2.xml")
    config = tmp_path / "config.toml"
    config.write_text(f'poll_interval = 5\n[[hosts]]\nuri = "test://{os.path.abspath(node)}?lease_dir={lease_dir}"\n')
    assert main(["status", "--config", str(config), "--json"]) == 0
    assert [h["hostname"] for h in json.loads(capsys.readouterr().out)["hosts"]] == ["hv2"]
    hv3 = os.path.abspath(node).replace("hv2", "hv3")
    assert main(["status", "--config", str(config), "-c", f"test://{hv3}?lease_dir={lease_dir}", "--json"]) == 0
    assert [h["hostname"] for h in json.loads(capsys.readouterr().out)["hosts"]] == ["hv3"]


def test_libvirt_default_uri_is_honoured(monkeypatch, lease_dir, capsys):
    node = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "assets", "demo", "hv3.xml"))
    monkeypatch.setenv("LIBVIRT_DEFAULT_URI", f"test://{node}?lease_dir={lease_dir}")
    assert main(["status", "--json"]) == 0
    assert [h["hostname"] for h in json.loads(capsys.readouterr().out)["hosts"]] == ["hv3"]


@pytest.fixture
def hv1_uri(lease_dir):
    node = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "assets", "demo", "hv1.xml"))
    return f"test://{node}?lease_dir={lease_dir}"


def test_leases_status_json(hv1_uri, lease_dir, capsys):
    write_free_lease(str(lease_dir), "/stale/disk")
    assert main(["leases", "status", "-c", hv1_uri, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert set(rows[0]) == {"name", "path", "disk", "state", "owner_host_id", "domains"}
    demo = next(r for r in rows if r["name"] == "bfa0240911bc17753e0b473688822159")
    assert demo["state"] == "held" and demo["owner_host_id"] == 1 and demo["domains"] == ["hv1/demo"]
    assert any(r["state"] == "orphan" for r in rows)


def test_leases_cleanup_text_dry_run_and_json(hv1_uri, lease_dir, capsys):
    stale = write_free_lease(str(lease_dir), "/stale/disk")
    assert main(["leases", "cleanup", "-c", hv1_uri, "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert f"Cleanup: __LIBVIRT__DISKS__:{os.path.basename(stale)}:{stale}:0 PASS (dry run)" in lines
    assert os.path.exists(stale)
    assert main(["leases", "cleanup", "-c", hv1_uri, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["removed"] == [os.path.basename(stale)]
    assert all(k["reason"] == "lease is held" for k in result["kept"])
    assert not os.path.exists(stale)
    assert main(["leases", "cleanup", "-c", hv1_uri, "-q"]) == 0
    assert capsys.readouterr().out == ""


def test_two_processes_on_one_lease_directory_conflict(hv1_uri, lease_dir, tmp_path):
    """A second virttui on the same node and lease directory cannot start the same disks."""
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom virttui.drivers.registry import open_driver\n"
         f"d = open_driver({hv1_uri!r}); d.connect(); print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        out = run("status", "-c", hv1_uri, "--json")
        states = {d["name"]: d["state"] for d in json.loads(out.stdout)["hosts"][0]["domains"]}
        assert states["web-01"] == "shut off"  # its lease is held by the other process
        assert "web-01 left shut off" in out.stderr and "lease conflict" in out.stderr
    finally:
        holder.communicate("", timeout=30)


def test_lease_file_names_are_printed_safely(hv1_uri, lease_dir, capsys):
    write_free_lease(str(lease_dir), "/stale/disk")
    (lease_dir / os.fsdecode(b"bad\xffname")).write_bytes(b"x" * 600)  # not UTF-8
    (lease_dir / "esc\x1b[31mRED").write_bytes(b"x" * 600)  # a terminal escape
    assert main(["leases", "status", "-c", hv1_uri]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "corrupt" in out and "bad" in out


def test_a_lock_configuration_error_is_shown_by_the_lease_commands(monkeypatch, capsys):
    import contextlib

    from virttui.drivers.model import ConnectionState, Host, HostSnapshot

    problem = "lock configuration: /etc/libvirt/qemu-sanlock.conf:3: unterminated string"

    class BrokenConfigHost:  # what the virsh driver reports for a malformed qemu-sanlock.conf
        uri = "qemu:///system"

        def connect(self) -> None: ...

        def poll(self) -> HostSnapshot:
            return HostSnapshot(Host(uri=self.uri, state=ConnectionState.CONNECTED, warnings=(problem,)))

        def lease_manager(self) -> None:
            return None

        def close(self) -> None: ...

    @contextlib.contextmanager
    def hosts(_args):  # noqa: ANN001, ANN202
        yield [BrokenConfigHost()], 2.0, None

    monkeypatch.setattr("virttui.cli.leases.open_hosts", hosts)  # imported when a lease command runs
    assert main(["leases", "status", "-c", "qemu:///system"]) == 1
    assert "qemu-sanlock.conf:3: unterminated string" in capsys.readouterr().err
    assert main(["leases", "cleanup", "-c", "qemu:///system"]) != 0
    err = capsys.readouterr().err
    assert "qemu-sanlock.conf:3" in err and "lock configuration errors above" in err


def fake_sanlock_host(monkeypatch, agent) -> str:  # noqa: ANN001 - an AgentRunner stand-in
    """One connected sanlock host whose lease agent is `agent`; returns its URI."""
    import contextlib

    from virttui.drivers.model import ConnectionState, Host, HostSnapshot
    from virttui.locks.hostleases import HostLeaseManager
    from virttui.locks.model import LockConfig

    class SanlockHost:
        uri = "qemu+ssh://hv9/system"

        def connect(self) -> None: ...

        def poll(self) -> HostSnapshot:
            return HostSnapshot(Host(uri=self.uri, state=ConnectionState.CONNECTED))

        def lease_manager(self) -> HostLeaseManager:
            return HostLeaseManager(LockConfig(manager="sanlock", auto_disk_leases=True, host_id=1), agent)

        def close(self) -> None: ...

    @contextlib.contextmanager
    def hosts(_args):  # noqa: ANN001, ANN202
        yield [SanlockHost()], 2.0, None

    monkeypatch.setattr("virttui.cli.leases.open_hosts", hosts)  # imported when a lease command runs
    return SanlockHost.uri


GONE, HELD = sanlock_lease_name("/img/gone"), sanlock_lease_name("/img/held")


class AgentStoppingAfterTwo:
    """What AgentRunner yields when the agent's stream stops after two files, with `stop` raised."""

    def __init__(self, stop: BaseException) -> None:
        self.stop = stop

    def cleanup(self, directory, lockspace, names):  # noqa: ANN001, ANN202
        yield {"total": 3}
        yield {"name": GONE, "path": f"{directory}/{GONE}", "removed": True, "reason": ""}
        yield {"name": HELD, "path": f"{directory}/{HELD}", "removed": False, "reason": "held by a live host"}
        raise self.stop


def test_a_cleanup_that_stops_part_way_still_reports_what_it_removed(monkeypatch, capsys):
    """The SSH link drops after some files: the JSON still lists them, the error is one line, exit 1."""
    from virttui.locks.agentrunner import LeaseAgentError

    cut_off = LeaseAgentError("lease agent stopped after 2 of 3 files (connection lost)")
    uri = fake_sanlock_host(monkeypatch, AgentStoppingAfterTwo(cut_off))
    assert main(["leases", "cleanup", "-c", uri, "--json"]) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["removed"] == [GONE] and result["kept"] == [{"name": HELD, "reason": "held by a live host"}]
    assert result["errors"] == ["lease agent stopped after 2 of 3 files (connection lost)"]
    assert captured.err.strip() == "virttui: lease agent stopped after 2 of 3 files (connection lost)"
    assert main(["leases", "cleanup", "-c", uri]) == 1
    assert capsys.readouterr().out.splitlines()[0].endswith(f"/{GONE}:0 PASS")


def test_ctrl_c_during_a_json_cleanup_still_reports_what_was_removed(monkeypatch, capsys):
    uri = fake_sanlock_host(monkeypatch, AgentStoppingAfterTwo(KeyboardInterrupt()))
    assert main(["leases", "cleanup", "-c", uri, "--json"]) == 130
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["removed"] == [GONE] and result["interrupted"] is True
    assert captured.err.strip() == "virttui: interrupted"


def test_a_cleanup_whose_output_fails_stops_removing_and_says_so(monkeypatch, capsys):
    """stdout on a full disk: the first line that can't be written ends the cleanup (no file is removed
    unreported after it), and the failure is the output's, not the lease directory's."""
    import virttui.cli as cli

    agent = AgentStoppingAfterTwo(AssertionError("the cleanup went on after its output failed"))
    uri = fake_sanlock_host(monkeypatch, agent)

    class FullDisk:
        def write(self, _text: str) -> int:
            raise OSError(28, "No space left on device")

        def flush(self) -> None: ...

    monkeypatch.setattr(sys, "stdout", FullDisk())
    assert cli.main(["leases", "cleanup", "-c", uri]) == 1
    assert capsys.readouterr().err.strip() == "virttui: cannot write the output: No space left on device"


def test_hosts_named_before_and_after_the_subcommand_are_all_polled(hv1_uri, capsys, tmp_path):
    missing = f"test://{tmp_path}/nonexistent.xml"
    assert main(["-c", hv1_uri, "status", "-c", missing, "--json"]) == 1
    assert [h["uri"] for h in json.loads(capsys.readouterr().out)["hosts"]] == [hv1_uri, missing]


def test_an_unreachable_host_fails_the_lease_commands_with_one_line_and_the_others_are_still_shown(
        hv1_uri, lease_dir, tmp_path, capsys):
    stale = write_free_lease(str(lease_dir), "/stale/disk")
    missing = f"test://{tmp_path}/nonexistent.xml"
    assert main(["leases", "status", "-c", hv1_uri, "-c", missing, "--json"]) == 1
    captured = capsys.readouterr()
    assert os.path.basename(stale) in {row["name"] for row in json.loads(captured.out)}
    assert len(captured.err.strip().splitlines()) == 1 and "nonexistent.xml" in captured.err
    assert main(["leases", "cleanup", "-c", missing, "--dry-run"]) == 1  # not a usage error (2)
    assert "nonexistent.xml" in capsys.readouterr().err


def test_cleanup_without_c_cleans_every_configured_hosts_lease_directory(tmp_path, capsys):
    """As `leases status` shows them all; before, only the first host was cleaned, silently."""
    node = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "assets", "demo", "hv1.xml"))
    stale = []
    config = tmp_path / "config.toml"
    for index in (1, 2):
        directory = tmp_path / f"leases{index}"
        directory.mkdir()
        stale.append(write_free_lease(str(directory), f"/stale/disk{index}"))
        with config.open("a") as handle:
            handle.write(f'[[hosts]]\nuri = "test://{node}?lease_dir={directory}&host_id={index}"\n')
    assert main(["--config", str(config), "leases", "cleanup", "--json"]) == 0
    removed = json.loads(capsys.readouterr().out)["removed"]
    assert sorted(removed) == sorted(os.path.basename(path) for path in stale)
    assert not any(os.path.exists(path) for path in stale)


def test_a_host_listed_twice_in_the_config_is_one_host(tmp_path, hv1_uri, capsys):
    config = tmp_path / "config.toml"
    config.write_text(f'[[hosts]]\nuri = "{hv1_uri}"\n[[hosts]]\nuri = "{hv1_uri}"\ngroup = "b"\n')
    assert main(["--config", str(config), "status", "--json"]) == 0
    captured = capsys.readouterr()
    assert [h["hostname"] for h in json.loads(captured.out)["hosts"]] == ["hv1"]
    assert "conflict" not in captured.err


def test_a_password_in_a_uri_never_reaches_the_output(capsys):
    assert main(["status", "-c", "qemu+ssh://bob:s3cret@h/system", "--json"]) == 1
    captured = capsys.readouterr()
    assert "s3cret" not in captured.out + captured.err
    assert json.loads(captured.out)["hosts"][0]["uri"] == "qemu+ssh://bob:***@h/system"


def test_an_embedded_hosts_lease_dir_must_be_absolute(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["status", "-c", "test:///default?lease_dir=relative/dir"]) == 1
    assert "lease_dir must be an absolute path" in capsys.readouterr().err
    assert not os.path.exists("relative")


@pytest.mark.parametrize("redirect, message", [
    (">&-", "virttui: no standard output to write to"),
    (">/dev/full", "virttui: cannot write the output: No space left on device"),
])
@pytest.mark.parametrize("command", ["status", "top --batch -n 1"])
def test_output_that_cannot_be_written_is_one_line_and_exit_one(command, redirect, message):
    done = subprocess.run(["bash", "-c", f'"{sys.executable}" -m virttui {command} -c test:///default {redirect}'],
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr.strip()) == (1, message)


def test_an_ascii_only_output_escapes_what_it_cannot_encode():
    done = subprocess.run([sys.executable, "-m", "virttui", "status", "-c", "test:///défault"],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert done.returncode == 1
    assert done.stdout.strip() == "test:///d\\xe9fault: error"
    assert "internal error" not in done.stderr


@pytest.mark.parametrize("kind", ["fifo", "zero", "huge"])
def test_a_config_file_that_is_not_a_small_regular_file_is_refused_without_hanging(tmp_path, kind):
    path = {"zero": "/dev/zero"}.get(kind, str(tmp_path / "config.toml"))
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "huge":
        with open(path, "wb") as handle:
            handle.truncate(17 * 1024 * 1024)  # sparse: no real disk used
    done = run("--config", path, "status")
    assert done.returncode == 2
    assert done.stderr.strip() in (f"virttui: {path}: not a regular file", f"virttui: {path}: larger than 16 MiB")


def test_a_json_result_that_cannot_be_written_still_names_what_was_removed(monkeypatch, capsys):
    """--json writes once, at the end: on a full disk the removed files go to stderr instead."""
    from virttui.locks.agentrunner import LeaseAgentError

    uri = fake_sanlock_host(monkeypatch, AgentStoppingAfterTwo(LeaseAgentError("cut")))

    class FullDisk:
        def write(self, _text: str) -> int:
            raise OSError(28, "No space left on device")

        def flush(self) -> None: ...

    monkeypatch.setattr(sys, "stdout", FullDisk())
    assert main(["leases", "cleanup", "-c", uri, "--json"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"virttui: the JSON result could not be written; removed: {GONE}"
    assert err[-1] == "virttui: cannot write the output: No space left on device"


@pytest.mark.parametrize("command, unpaced", [(["leases", "status"], True), (["status"], True),
                                              (["top", "--batch"], False), ([], False)])
def test_one_shot_commands_read_every_lease_file_at_once_and_leave_the_policy_as_it_was(command, unpaced):
    """`leases status` is one poll that must show every file (docs/leases.md): no read budget then;
    a console or `top` reads paced. The policy is the process's: restored when the command ends."""
    from virttui.cli import build_parser, open_hosts
    from virttui.locks.readers import DEFAULT_READ_BUDGET, ELECTION

    args = build_parser().parse_args([*command, "--demo"] if command else ["--demo"])
    with open_hosts(args):
        assert (ELECTION.read_budget == 0) is unpaced
    assert ELECTION.read_budget == DEFAULT_READ_BUDGET


def test_the_election_knows_how_many_hosts_the_console_watches_and_forgets_it_after(monkeypatch):
    """With one host, its first poll reads its lease directory in the run that learns which it is
    (readers.ReaderElection.watched_hosts); with more, they might share it. A one-shot command too."""
    from virttui.cli import build_parser, open_hosts
    from virttui.locks.readers import ELECTION

    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    before = ELECTION.watched_hosts
    for uris, watched in ((["test:///default"], 1), (["test:///default", "test:///other"], 2)):
        args = build_parser().parse_args([arg for uri in uris for arg in ("-c", uri)])
        with open_hosts(args) as (drivers, _interval, _config):
            assert len(drivers) == watched and ELECTION.watched_hosts == watched
        assert ELECTION.watched_hosts == before


CONSOLE_ARGVS = [
    [], ["--demo"], ["-c", "test:///default"], ["-ctest:///default", "--debug"], ["--connect=qemu:///system"],
    ["--config", "/x.toml", "--poll-interval", "5", "--log", "/tmp/l"], ["--poll-interval=0.5", "--demo"],
    ["-c", "status"],  # an option's value that reads as a subcommand
]
OTHER_ARGVS = [
    ["status"], ["status", "--json", "-c", "a"], ["-c", "a", "status", "-c", "b"], ["top", "--batch", "-n", "1"],
    ["leases", "status"], ["leases", "cleanup", "--dry-run"], ["--conn", "x"], ["--pol", "3"],
]
BAD_ARGVS = [
    ["--poll-interval", "abc"], ["--poll-interval"], ["--nosuch"], ["bogus"], ["-h"], ["--help"], ["--he"],
    ["--version"], ["--demo", "--"], ["-"], ["status", "--nosuch"], ["top"], ["leases"], ["-c"], ["-c", "-h"],
    ["-1", "--version"], ["-x y", "--vers"], ["-- ", "--version"], ["--demo", "-1.5"],  # positional to argparse
]


@pytest.mark.parametrize("argv", CONSOLE_ARGVS + OTHER_ARGVS)
def test_the_console_start_parses_argv_as_the_whole_grammar_does(argv):
    """A console start skips building the subcommands' parsers: never a different result for it."""
    from virttui.cli.parser import _console_start, build_parser, parse_command_line

    assert _console_start(argv) == (argv in CONSOLE_ARGVS)
    assert vars(parse_command_line(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", BAD_ARGVS)
def test_help_version_and_errors_read_as_the_whole_grammar_has_them(argv, capsys):
    from virttui.cli.parser import build_parser, parse_command_line

    with pytest.raises(SystemExit) as whole:
        build_parser().parse_args(argv)
    expected = capsys.readouterr()
    with pytest.raises(SystemExit) as parsed:
        parse_command_line(argv)
    assert parsed.value.code == whole.value.code and capsys.readouterr() == expected


_PLAIN_TOKENS = ["-c", "--connect", "--demo", "--debug", "--config", "--poll-interval", "--log", "x", "2", "-1", "nan",
                 "", " 2 ", "1_0", "status", "--", "-h", "--dem", "--connect=x", "-cx"]


def test_plain_console_options_are_read_as_argparse_reads_them():
    """Every argv of up to three of these words: read without argparse only when argparse reads it
    the same way; everything else (errors, abbreviations, joined values) is left to argparse."""
    import itertools

    from virttui.cli.parser import build_parser
    from virttui.cli.plainargs import plain_console_args

    grammar = build_parser()
    read_plainly = 0
    for length in range(4):
        for argv in itertools.product(_PLAIN_TOKENS, repeat=length):
            plain = plain_console_args(list(argv))
            if plain is not None:
                read_plainly += 1
                assert repr(vars(plain)) == repr(vars(grammar.parse_args(list(argv)))), argv  # nan: by repr
    assert read_plainly > 100  # the plain reader is what a console start takes
    for argv in (["--dem"], ["--connect=x"], ["-cx"], ["--poll-interval", "abc"], ["-c"], ["-c", "-h"], ["status"],
                 ["--version"], ["--log", "--demo"]):
        assert plain_console_args(argv) is None, argv
