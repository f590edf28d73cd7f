"""Files virttui writes or runs that others could tamper with: the config, the log, the remote lease agent."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from virttui import cli
from virttui.config import Config, ConfigError, load_config, save_config, with_host
from virttui.drivers.transport import LocalTransport
from virttui.locks.agentrunner import AGENT_SOURCE, AgentRunner

CONFIG = '# my hosts\n[[hosts]]\nuri = "qemu:///system"  # keep me\n'
VICTIM = "someone else's file\n"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "cfg"
    directory.mkdir(mode=0o700)
    return directory


# -- config save ---------------------------------------------------------------------------------
def test_a_symlink_planted_at_a_temp_name_cannot_redirect_the_save(tmp_path, config_dir):
    path = config_dir / "config.toml"
    path.write_text(CONFIG)
    victim = tmp_path / "victim"
    victim.write_text(VICTIM)
    for name in (f"config.toml.tmp-{os.getpid()}", f".config.toml.tmp-{os.getpid()}", "config.toml.tmp"):
        (config_dir / name).symlink_to(victim)
    save_config(with_host(load_config(str(path)), "lxc:///"))
    assert victim.read_text() == VICTIM
    assert not path.is_symlink() and "lxc:///" in path.read_text() and "# keep me" in path.read_text()


def test_every_file_the_save_creates_is_created_exclusively(config_dir, monkeypatch):
    """O_EXCL fails on any existing name, a dangling symlink included: whatever name an attacker guessed."""
    path = config_dir / "config.toml"
    path.write_text(CONFIG)
    real_open, created = os.open, []

    def spy(file, flags, *args, **kwargs):  # noqa: ANN001, ANN202 - os.open's signature
        if flags & os.O_CREAT and os.path.dirname(os.fspath(file)) == str(config_dir):
            created.append((file, bool(flags & os.O_EXCL)))
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    save_config(with_host(load_config(str(path)), "lxc:///"))
    assert created and all(exclusive for _, exclusive in created), created
    assert "lxc:///" in path.read_text()


@pytest.mark.parametrize("mode", [0o770, 0o707, 0o1777])
def test_a_directory_others_can_write_is_refused_in_one_line(config_dir, mode):
    path = config_dir / "config.toml"
    path.write_text(CONFIG)
    os.chmod(config_dir, mode)
    with pytest.raises(ConfigError) as info:
        save_config(with_host(load_config(str(path)), "lxc:///"))
    message = str(info.value)
    assert "writable by group or others" in message and str(path) in message and "\n" not in message
    assert path.read_text() == CONFIG and os.listdir(config_dir) == ["config.toml"]


def test_a_symlinked_config_in_a_shared_directory_is_refused(tmp_path, config_dir):
    real = config_dir / "real.toml"
    real.write_text(CONFIG)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    link = shared / "config.toml"
    link.symlink_to(real)  # as another user could have planted it
    with pytest.raises(ConfigError, match="writable by group or others"):
        save_config(with_host(load_config(str(link)), "lxc:///"))
    assert real.read_text() == CONFIG


def test_a_new_config_is_private_whatever_the_umask(tmp_path, umask_022):
    path = tmp_path / "fresh" / "config.toml"
    save_config(Config(hosts=("qemu+ssh://root@hv1/system",), path=str(path)))
    assert _mode(path.parent) == 0o700 and _mode(path) == 0o600
    assert load_config(str(path)).hosts == ("qemu+ssh://root@hv1/system",)


# -- deeply nested TOML ----------------------------------------------------------------------------
DEEP = {
    "arrays": "a = " + "[" * 100000 + "]" * 100000 + "\n",
    "inline tables": "a = " + "{b = " * 100000 + "1" + "}" * 100000 + "\n",
}


@pytest.mark.parametrize("kind", DEEP)
def test_a_deeply_nested_config_is_a_one_line_error(tmp_path, kind):
    path = tmp_path / "config.toml"
    path.write_text(DEEP[kind])
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert str(info.value) == f"{path}: nested too deeply"


@pytest.mark.parametrize("kind", DEEP)
def test_a_deeply_nested_config_is_not_an_internal_error_of_the_cli(tmp_path, kind):
    path = tmp_path / "config.toml"
    path.write_text(DEEP[kind])
    out = subprocess.run([sys.executable, "-m", "virttui", "--log", str(tmp_path / "log"), "status",
                          "--config", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    assert out.stderr == f"virttui: {path}: nested too deeply\n"


def test_saving_over_a_deeply_nested_file_is_a_config_error(config_dir):
    """tomlkit refuses deep nesting itself (ParseError): the file is left as it is."""
    path = config_dir / "config.toml"
    path.write_text(DEEP["arrays"])
    with pytest.raises(ConfigError, match="cannot be read back"):
        save_config(Config(hosts=("lxc:///",), path=str(path)))
    assert path.read_text() == DEEP["arrays"]


def test_a_tomlkit_that_recursed_would_still_be_a_config_error(config_dir, monkeypatch):
    import tomlkit

    path = config_dir / "config.toml"
    path.write_text(CONFIG)

    def recurse(_text: str) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(tomlkit, "parse", recurse)
    with pytest.raises(ConfigError, match="nested too deeply"):
        save_config(Config(hosts=("lxc:///",), path=str(path)))
    assert path.read_text() == CONFIG


# -- log file ------------------------------------------------------------------------------------
@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """_setup_logging's handler, removed and closed after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_the_log_and_its_new_directory_are_private_whatever_the_umask(tmp_path, umask_022, root_logger):
    path = tmp_path / "state" / "virttui" / "virttui.log"
    cli._setup_logging(str(path))  # noqa: SLF001
    logging.getLogger("virttui").info("host added: qemu+ssh://root@hv1/system")
    for handler in root_logger.handlers:
        handler.flush()
    assert _mode(path.parent) == 0o700 and _mode(path) == 0o600
    assert "qemu+ssh://root@hv1/system" in path.read_text()


def test_an_existing_world_readable_log_is_tightened(tmp_path, umask_022, root_logger):
    path = tmp_path / "virttui.log"
    path.write_text("old line\n")
    os.chmod(path, 0o644)
    cli._setup_logging(str(path))  # noqa: SLF001
    logging.getLogger("virttui").info("new line")
    for handler in root_logger.handlers:
        handler.flush()
    assert _mode(path) == 0o600
    assert path.read_text().startswith("old line\n") and "new line" in path.read_text()


def test_a_symlink_planted_at_the_default_log_path_is_not_followed(tmp_path, root_logger, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_text(VICTIM)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = tmp_path / "state" / "virttui" / "virttui.log"
    path.parent.mkdir(parents=True)
    path.symlink_to(victim)
    cli._setup_logging(None)  # noqa: SLF001 - no log then, and no failure either
    logging.getLogger("virttui").error("host added: qemu+ssh://root@hv1/system")
    for handler in root_logger.handlers:
        handler.flush()
    assert victim.read_text() == VICTIM


def test_a_log_path_the_operator_names_may_be_a_symlink(tmp_path, root_logger):
    """`--log /dev/stderr` and the like: the operator chose it, nobody planted it."""
    target = tmp_path / "real.log"
    path = tmp_path / "named.log"
    path.symlink_to(target)
    cli._setup_logging(str(path))  # noqa: SLF001
    logging.getLogger("virttui").error("written")
    for handler in root_logger.handlers:
        handler.flush()
    assert "written" in target.read_text()


# -- remote lease agent ----------------------------------------------------------------------------
def test_the_remote_agent_runs_python_isolated():
    runner = AgentRunner(transport=object())
    argv = runner._agent("scan", "/var/lib/libvirt/sanlock", "__LIBVIRT__DISKS__")  # noqa: SLF001
    source = argv.index(AGENT_SOURCE)
    assert argv[source - 1] == "-c"
    flags = argv[3:source - 1]  # after sh -c SCRIPT $0, before python's -c
    assert "-I" in flags and "-S" in flags


@pytest.mark.parametrize("plant", ["login directory", "PYTHONPATH"])
def test_a_json_module_planted_on_the_host_is_not_imported_by_the_agent(tmp_path, lease_dir, monkeypatch, plant):
    home = tmp_path / "login"
    home.mkdir()
    marker = tmp_path / "marker"
    (home / "json.py").write_text(f"open({str(marker)!r}, 'w').close()\n")  # and no dumps: the agent would fail
    if plant == "login directory":
        monkeypatch.chdir(home)  # where an SSH login starts
    else:
        monkeypatch.setenv("PYTHONPATH", str(home))
    runner = AgentRunner(LocalTransport())
    scan = runner.scan(str(lease_dir), "__LIBVIRT__DISKS__", False)
    assert isinstance(scan, dict)
    assert list(runner.cleanup(str(lease_dir), "__LIBVIRT__DISKS__", None)) == [{"total": 0}]
    assert not marker.exists()
