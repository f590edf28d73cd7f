"""The config file: hosts with groups, remembered UI choices, atomic saving, round trips."""

from __future__ import annotations

import re

import pytest

from virttui.config import Config, ConfigError, load_config, save_config, with_host, without_host


def test_round_trip_with_groups_and_ui_choices(tmp_path):
    path = str(tmp_path / "sub" / "config.toml")
    config = Config(hosts=("qemu:///system", 'qemu+ssh://root@hv1/system?keyfile=/k "x"'), poll_interval=3.5,
                    path=path, groups=(("qemu+ssh://root@hv1/system?keyfile=/k \"x\"", "rack ü"),),
                    domain_sort="cpu", domain_columns=("name", "state"))
    save_config(config)
    assert load_config(path) == config


def test_adding_and_removing_hosts(tmp_path):
    config = Config(path=str(tmp_path / "c.toml"))
    config = with_host(with_host(config, "qemu:///system"), "lxc:///", "containers")
    assert config.hosts == ("qemu:///system", "lxc:///") and config.group_of("lxc:///") == "containers"
    config = without_host(config, "lxc:///")
    assert config.hosts == ("qemu:///system",) and config.groups == ()


@pytest.mark.parametrize("text, problem", [
    ("[[hosts]]\nuri = 3\n", "needs a uri"),
    ("[[hosts]]\nuri = 'a'\ngroup = 1\n", "group must be a string"),
    ("ui = 3\n", "[ui] must be a table"),
    ("[ui]\ndomain_columns = 'name'\n", "domain_columns"),
    ("poll_interval = 0\n", "poll_interval"),
    ("hosts = 'x'\n", "hosts must be a list"),
])
def test_bad_config_is_one_line_naming_the_file(tmp_path, text, problem):
    path = tmp_path / "config.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(problem)) as info:
        load_config(str(path))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_save_to_an_unwritable_place_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="file"):
        save_config(Config(path=str(blocker / "config.toml")))


USER_FILE = """\
# my fleet; hv1 is the old rack
poll_interval = 5   # slow links

[ui]
domain_sort = "name"
theme_hint = "dark"  # a key virttui does not know

[[hosts]]
uri = "qemu+ssh://root@hv1/system"  # keep me
group = "rack a"
note = "spare PSU"

[[hosts]]
uri = "qemu:///system"
"""


def test_saving_edits_the_file_and_keeps_the_operators_comments_keys_mode_and_link(tmp_path):
    import os

    real = tmp_path / "dotfiles" / "virttui.toml"
    real.parent.mkdir()
    real.write_text(USER_FILE)
    os.chmod(real, 0o640)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    loaded = load_config(str(link))
    added = with_host(loaded, "lxc:///", "containers")
    save_config(added, loaded)
    text = real.read_text()
    assert link.is_symlink() and oct(real.stat().st_mode & 0o777) == "0o640"
    for kept in ("# my fleet; hv1 is the old rack", "# slow links", 'theme_hint = "dark"', "# keep me",
                 'note = "spare PSU"'):
        assert kept in text
    assert load_config(str(link)).hosts == ("qemu+ssh://root@hv1/system", "qemu:///system", "lxc:///")
    assert not [p for p in real.parent.iterdir() if ".tmp-" in p.name]


def test_a_host_the_operator_added_to_the_file_meanwhile_is_not_dropped(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text(USER_FILE)
    loaded = load_config(str(path))
    with open(path, "a") as handle:  # edited by hand while the console runs
        handle.write('\n[[hosts]]\nuri = "qemu+ssh://root@hv7/system"\n')
    save_config(without_host(loaded, "qemu:///system"), loaded)
    assert load_config(str(path)).hosts == ("qemu+ssh://root@hv1/system", "qemu+ssh://root@hv7/system")


def test_a_config_that_is_not_utf8_is_a_one_line_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b"poll_interval = 2 # caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(path))


def test_a_poll_interval_keeps_every_digit(tmp_path):
    path = str(tmp_path / "config.toml")
    save_config(Config(poll_interval=1234.5678, path=path))
    assert load_config(path).poll_interval == 1234.5678


def test_hosts_written_as_plain_strings_survive_a_save(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('hosts = ["qemu+ssh://a/system", "qemu+ssh://b/system"]\n')
    loaded = load_config(str(path))
    save_config(with_host(loaded, "lxc:///", "containers"), loaded)
    assert load_config(str(path)).hosts == ("qemu+ssh://a/system", "qemu+ssh://b/system", "lxc:///")
    reloaded = load_config(str(path))
    save_config(without_host(reloaded, "qemu+ssh://a/system"), reloaded)
    assert load_config(str(path)).hosts == ("qemu+ssh://b/system", "lxc:///")


def test_a_control_character_is_saved_escaped_and_read_back(tmp_path):
    """JSON leaves DEL (U+007F) bare, which TOML forbids: written as is, the file could not be read back."""
    path = tmp_path / "config.toml"
    config = with_host(Config(path=str(path)), "qemu:///system", "rack\x7f-a")
    save_config(config)  # a first save: no file yet
    assert load_config(str(path)).group_of("qemu:///system") == "rack\x7f-a"
    save_config(with_host(load_config(str(path)), "lxc:///", "b\x7f"), load_config(str(path)))
    assert load_config(str(path)).group_of("lxc:///") == "b\x7f"


def test_read_bounded_takes_a_file_up_to_its_limit_and_refuses_more(tmp_path):
    import pytest

    from virttui.boundedread import read_bounded

    path = tmp_path / "f"
    path.write_bytes(b"x" * 100)
    assert read_bounded(str(path), limit=100) == b"x" * 100
    with pytest.raises(OSError, match="larger than"):
        read_bounded(str(path), limit=99)


def test_read_bounded_takes_dev_null_as_an_empty_file_but_refuses_other_devices():
    import pytest

    from virttui.boundedread import read_bounded

    assert read_bounded("/dev/null") == b""
    with pytest.raises(OSError, match="not a regular file"):
        read_bounded("/dev/zero")


def test_lease_read_intervals(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[leases]\nslow_interval = 10\nfull_interval = 300\n")
    config = load_config(str(path))
    assert (config.lease_slow_interval, config.lease_full_interval) == (10.0, 300.0)
    assert (Config().lease_slow_interval, Config().lease_full_interval) == (30.0, 600.0)
    for text, problem in (("[leases]\nslow_interval = 0\n", "from 1 to 86400"),
                          ("[leases]\nslow_interval = true\n", "from 1 to 86400"),
                          ("[leases]\nslow_interval = 60\nfull_interval = 30\n", "not be shorter"),
                          ("leases = 3\n", "must be a table")):
        path.write_text(text)
        with pytest.raises(ConfigError, match=problem):
            load_config(str(path))


def test_the_sample_config_loads(tmp_path):
    from pathlib import Path

    sample = Path(__file__).parents[2] / "assets" / "config.sample.toml"
    config = load_config(str(sample))
    assert config.lease_slow_interval == 30.0 and "qemu:///system" in config.hosts
