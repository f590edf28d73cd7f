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
