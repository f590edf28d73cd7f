"""The user's TOML configuration: hosts (with groups), poll interval, remembered UI choices.

Read at start; written only when the operator adds or removes a host or
changes the Domains columns or sort in the console. Command-line options
override what the file says for that run and are never written back.
"""

from __future__ import annotations

import os
import stat
import tempfile
from dataclasses import field, replace

from virttui.boundedread import read_bounded
from virttui.records import record


class ConfigError(Exception):
    """The config file cannot be used; str() names the file and the problem."""


@record
class HostEntry:
    uri: str
    group: str = ""  # hosts with the same group form one branch of the Hosts tree


@record
class Config:
    hosts: tuple[str, ...] = field(default=())
    poll_interval: float = 2.0
    path: str = ""
    groups: tuple[tuple[str, str], ...] = ()  # (uri, group) for hosts that have one
    domain_sort: str = ""  # remembered sort column of the Domains pane
    domain_columns: tuple[str, ...] = ()  # remembered visible columns, () = all
    lease_slow_interval: float = 30.0  # [leases] slow_interval: seconds between reads of changed lease files
    lease_full_interval: float = 600.0  # [leases] full_interval: every lease file read again within this
    confirm: tuple[tuple[str, bool], ...] = ()  # [confirm] action = true/false: overrides of the defaults
    names: tuple[tuple[str, str], ...] = ()  # (uri, name) for hosts given a name of their own
    ssh_client: str = "paramiko"  # ssh_client: the SSH client of +ssh URIs, "paramiko" or "openssh"
    ssh_clients: tuple[tuple[str, str], ...] = ()  # (uri, client) for hosts with an ssh_client of their own

    def group_of(self, uri: str) -> str:
        return dict(self.groups).get(uri, "")

    def name_of(self, uri: str) -> str:
        return dict(self.names).get(uri, "")


def default_config_path() -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "virttui", "config.toml")


def load_config(path: str | None = None) -> Config:
    """Read the config file; a missing default file is an empty config, a missing named one an error."""
    explicit = path is not None
    path = path or default_config_path()
    try:
        raw = read_bounded(path)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: no such file") from None
        return Config(path=path)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    import tomllib  # here: a start without a config file need not load the TOML parser

    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    except RecursionError:  # tomllib recurses per nesting level: `a = [[[[...` would end in a traceback
        raise ConfigError(f"{path}: nested too deeply") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    hosts, groups, names, clients = [], [], [], []
    entries = data.get("hosts", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: hosts must be a list of [[hosts]] tables")
    for index, entry in enumerate(entries):
        uri = entry.get("uri") if isinstance(entry, dict) else entry
        if not isinstance(uri, str) or not uri:
            raise ConfigError(f"{path}: hosts[{index}] needs a uri string")
        group = entry.get("group", "") if isinstance(entry, dict) else ""
        if not isinstance(group, str):
            raise ConfigError(f"{path}: hosts[{index}].group must be a string")
        name = entry.get("name", "") if isinstance(entry, dict) else ""
        if not isinstance(name, str) or len(name) > 64 or not name.isprintable():
            raise ConfigError(f"{path}: hosts[{index}].name must be printable text of at most 64 characters")
        client = entry.get("ssh_client", "") if isinstance(entry, dict) else ""
        if client:
            _check_ssh_client(client, f"hosts[{index}].ssh_client", path)
        if uri in hosts:
            continue  # a host listed twice is one host (as with -c), in its first group
        if client:
            clients.append((uri, client))
        hosts.append(uri)
        if group:
            groups.append((uri, group))
        if name.strip():
            names.append((uri, name.strip()))
    interval = data.get("poll_interval", 2.0)
    if not isinstance(interval, (int, float)) or isinstance(interval, bool) or not 0.2 <= interval <= 3600:
        raise ConfigError(f"{path}: poll_interval must be a number of seconds from 0.2 to 3600")
    ui = data.get("ui", {})
    if not isinstance(ui, dict):
        raise ConfigError(f"{path}: [ui] must be a table")
    sort = ui.get("domain_sort", "")
    columns = ui.get("domain_columns", [])
    if not isinstance(sort, str) or not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ConfigError(f"{path}: ui.domain_sort must be a string and ui.domain_columns a list of strings")
    slow, full = _lease_intervals(data.get("leases", {}), path)
    ssh_client = data.get("ssh_client", "paramiko")
    _check_ssh_client(ssh_client, "ssh_client", path)
    return Config(hosts=tuple(hosts), poll_interval=float(interval), path=path, groups=tuple(groups),
                  domain_sort=sort, domain_columns=tuple(columns), lease_slow_interval=slow, lease_full_interval=full,
                  confirm=_confirmations(data.get("confirm", {}), path), names=tuple(names),
                  ssh_client=ssh_client, ssh_clients=tuple(clients))


SSH_CLIENTS = ("paramiko", "openssh")  # as virttui.drivers.sshclients.SSH_CLIENTS (not imported: start-up cost)


def _check_ssh_client(value: object, key: str, path: str) -> None:
    if value not in SSH_CLIENTS:
        raise ConfigError(f"{path}: {key} must be \"paramiko\" or \"openssh\", not {value!r}"[:300])


# [confirm] keys: the registry's ids, and the words the help and Footer use for two of them
CONFIRM_ALIASES = {"force_off": "destroy", "pause": "suspend"}


def _confirmations(table: object, path: str) -> tuple[tuple[str, bool], ...]:
    """[confirm] (or confirm = {...}): action = true or false, for actions the console runs itself."""
    from virttui import actiontable

    if not isinstance(table, dict):
        raise ConfigError(f"{path}: confirm must be a table, e.g. confirm = {{shutdown = false}}")
    known = sorted({entry.id for entry in actiontable.ACTIONS if entry.method} | set(CONFIRM_ALIASES))
    chosen: list[tuple[str, bool]] = []
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{path}: confirm.{key}: not an action (one of {', '.join(known)})")
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: confirm.{key} must be true or false")
        chosen.append((CONFIRM_ALIASES.get(key, str(key)), value))
    return tuple(chosen)


def _lease_intervals(leases: object, path: str) -> tuple[float, float]:
    """[leases] slow_interval and full_interval: how often lease files are read (docs/leases.md)."""
    if not isinstance(leases, dict):
        raise ConfigError(f"{path}: [leases] must be a table")
    slow, full = leases.get("slow_interval", 30.0), leases.get("full_interval", 600.0)
    for name, value in (("slow_interval", slow), ("full_interval", full)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 1 <= value <= 86400:
            raise ConfigError(f"{path}: leases.{name} must be a number of seconds from 1 to 86400")
    if full < slow:
        raise ConfigError(f"{path}: leases.full_interval must not be shorter than leases.slow_interval")
    return float(slow), float(full)


def _toml_string(text: str) -> str:
    """A TOML basic string: JSON's escaping, plus DEL, which JSON leaves bare and TOML forbids."""
    import json  # here: only a config being written needs it, not a start

    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def render_config(config: Config) -> str:
    lines = ["# virttui configuration, written by virttui; edit freely (see config.sample.toml).",
             f"poll_interval = {config.poll_interval!r}", ""]  # repr: every digit kept
    if config.domain_sort or config.domain_columns:
        lines.append("[ui]")
        if config.domain_sort:
            lines.append(f"domain_sort = {_toml_string(config.domain_sort)}")
        if config.domain_columns:
            lines.append("domain_columns = [" + ", ".join(_toml_string(c) for c in config.domain_columns) + "]")
        lines.append("")
    for uri in config.hosts:
        lines.append("[[hosts]]")
        lines.append(f"uri = {_toml_string(uri)}")
        if config.group_of(uri):
            lines.append(f"group = {_toml_string(config.group_of(uri))}")
        lines.append("")
    return "\n".join(lines)


def save_config(config: Config, previous: Config | None = None) -> None:
    """Write `config` into its file: atomically, with the file's mode, through a symlink to its target.

    With `previous` (what virttui last knew the file to say), only what changed from it is applied
    to the file as it is now, so hosts or settings the operator added meanwhile stay; comments and
    keys virttui does not know are kept either way (the file is edited, not regenerated).
    ConfigError names the file.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    given = os.path.abspath(config.path or default_config_path())
    # A symlinked config (dotfiles) is edited at its target, the link kept; trusted only where nobody
    # else could have planted the link (the target's directory is checked when writing).
    path = os.path.realpath(given)
    if os.path.islink(given):
        try:
            _check_directory(path, os.path.dirname(given))
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    try:
        with open(path, encoding="utf-8") as handle:
            doc = tomlkit.parse(handle.read())
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        try:
            doc, mode = tomlkit.parse(render_config(config)), 0o600
        except TOMLKitError as exc:
            raise ConfigError(f"{path}: not written: {exc}") from None
        previous = None
    except (OSError, UnicodeDecodeError, TOMLKitError, RecursionError) as exc:
        # RecursionError: this tomlkit caps nesting itself (ParseError); one that recursed would raise it
        why = getattr(exc, "strerror", None) or ("nested too deeply" if isinstance(exc, RecursionError) else str(exc))
        raise ConfigError(f"{path}: not rewritten, it cannot be read back: {why}") from None
    try:
        _apply(doc, config, previous)
        text = tomlkit.dumps(doc)
    except (TOMLKitError, ValueError, RecursionError) as exc:  # a value TOML cannot hold: the file is left as it is
        raise ConfigError(f"{path}: not rewritten: {exc}") from None
    _write_atomically(path, text, mode)


def _apply(doc, config: Config, previous: Config | None) -> None:  # noqa: ANN001 - tomlkit document
    """Edit the parsed file: the hosts table array and [ui], as far as they changed."""
    import tomlkit

    before = previous.hosts if previous is not None else None
    entries = doc.get("hosts")
    if not isinstance(entries, list):
        entries = None
    kept = []
    for entry in entries or []:
        uri = entry.get("uri") if isinstance(entry, dict) else entry
        gone = uri not in config.hosts and (before is None or uri in before)
        if not gone:
            kept.append(entry)
    present = {entry.get("uri") if isinstance(entry, dict) else entry for entry in kept}
    for uri in config.hosts:
        if uri in present:
            continue
        table = tomlkit.table()
        table["uri"] = uri
        if config.group_of(uri):
            table["group"] = config.group_of(uri)
        kept.append(table)
    if kept or entries is not None:
        array = tomlkit.aot()
        for entry in kept:
            if isinstance(entry, dict):
                _trim_trailing_blank_lines(entry)
                array.append(entry)
            else:  # `hosts = ["uri", ...]`, which the loader takes too: each becomes a table, none is lost
                table = tomlkit.table()
                table["uri"] = str(entry)
                if config.group_of(str(entry)):
                    table["group"] = config.group_of(str(entry))
                array.append(table)
        if "hosts" in doc:
            del doc["hosts"]
        if len(array):
            doc.append("hosts", array)
    ui_changed = previous is None or (previous.domain_sort, previous.domain_columns) != (
        config.domain_sort, config.domain_columns)
    if ui_changed and (config.domain_sort or config.domain_columns or "ui" in doc):
        ui = doc.get("ui")
        if not isinstance(ui, dict):
            ui = tomlkit.table()
            doc["ui"] = ui
        for key, value in (("domain_sort", config.domain_sort), ("domain_columns", list(config.domain_columns))):
            if value:
                ui[key] = value
            elif key in ui:
                del ui[key]


def _trim_trailing_blank_lines(table) -> None:  # noqa: ANN001 - tomlkit Table
    """A table moved into a rebuilt [[hosts]] array keeps its blank lines: trimmed to one, or each
    save would add a few more."""
    import tomlkit
    from tomlkit.items import Whitespace

    body = getattr(getattr(table, "value", None), "body", None)
    if not isinstance(body, list):
        return
    while body and body[-1][0] is None and isinstance(body[-1][1], Whitespace):
        body.pop()
    table.add(tomlkit.nl())


def _check_directory(path: str, directory: str) -> None:
    """Refuse a directory someone else can write to: they could swap in their own file or name it
    before virttui writes (the file holds the host URIs)."""
    info = os.stat(directory)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ConfigError(f"{path}: not written: its directory is writable by group or others (chmod go-w {directory})")
    if info.st_uid not in (os.geteuid(), 0):
        raise ConfigError(f"{path}: not written: its directory is owned by another user (uid {info.st_uid})")


def _write_atomically(path: str, text: str, mode: int) -> None:
    """A crash mid-write leaves the old file or the new one, never half of one, and no temp file.

    path is already resolved (save_config writes through a symlinked config to its target, as an
    editor would); the temp file is mkstemp's: a fresh name, O_EXCL, so a planted symlink can't redirect it.
    """
    directory = os.path.dirname(path)
    tmp = ""
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, mode=0o700, exist_ok=True)  # the file holds host URIs (user names, key paths)
        _check_directory(path, directory)
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(fd, mode)  # as the file was (new: 0600), whatever the umask says
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(fd)
        os.replace(tmp, path)
        tmp = ""
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    finally:
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass


def with_host(config: Config, uri: str, group: str = "") -> Config:
    hosts = config.hosts if uri in config.hosts else (*config.hosts, uri)
    groups = tuple((u, g) for u, g in config.groups if u != uri) + (((uri, group),) if group else ())
    return replace(config, hosts=hosts, groups=groups)


def without_host(config: Config, uri: str) -> Config:
    return replace(config, hosts=tuple(u for u in config.hosts if u != uri),
                   groups=tuple((u, g) for u, g in config.groups if u != uri))
