"""The user's TOML configuration: hosts and poll interval."""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field


class ConfigError(Exception):
    """The config file cannot be used; str() names the file and the problem."""


@dataclass(frozen=True)
class Config:
    hosts: tuple[str, ...] = field(default=())
    poll_interval: float = 2.0
    path: str = ""


def default_config_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "virttui", "config.toml")


def load_config(path: str | None = None) -> Config:
    """Read the config file; a missing default file is an empty config, a missing named one an error."""
    explicit = path is not None
    path = path or default_config_path()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: no such file") from None
        return Config(path=path)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    hosts = []
    for index, entry in enumerate(data.get("hosts", [])):
        uri = entry.get("uri") if isinstance(entry, dict) else entry
        if not isinstance(uri, str) or not uri:
            raise ConfigError(f"{path}: hosts[{index}] needs a uri string")
        hosts.append(uri)
    interval = data.get("poll_interval", 2.0)
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) or not 0.2 <= interval <= 3600:
        raise ConfigError(f"{path}: poll_interval must be a number of seconds from 0.2 to 3600")
    return Config(hosts=tuple(hosts), poll_interval=float(interval), path=path)
