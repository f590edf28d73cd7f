"""The hosts of this run, their groups, and the config file they are saved to.

Adding or removing a host in the console changes the running scheduler and
fleet at once (the context's host_added / host_removed signals, which every
owner of per-host state subscribes to), then writes the config file. Hosts
named with -c are never written there (the command line overrides the file,
never the reverse): the file keeps its own host list, plus what the operator
added or minus what the operator removed in the console. Remembered Domains sort and columns go the
same way.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

from virttui.config import Config, ConfigError, save_config, with_host, without_host
from virttui.drivers.errors import InvalidURI

if TYPE_CHECKING:
    from virttui.console.context import ConsoleContext

log = logging.getLogger(__name__)


class Roster:
    """What the keys + and - of the Hosts pane do, and where UI choices are remembered."""

    def __init__(self, ctx: ConsoleContext, config: Config | None) -> None:
        self.ctx = ctx
        self.fleet, self.scheduler, self.ui = ctx.fleet, ctx.scheduler, ctx.ui
        self.config = config  # None: nothing is saved (tests, or a caller without a config file)
        self._groups: dict[str, str] = dict(config.groups) if config is not None else {}

    def group_of(self, uri: str) -> str:
        return self._groups.get(uri, "")

    @property
    def group_names(self) -> list[str]:
        """Groups in the order their first host is listed."""
        names: list[str] = []
        for uri in self.fleet.uris:
            group = self._groups.get(uri, "")
            if group and group not in names:
                names.append(group)
        return names

    # -- adding ------------------------------------------------------------------
    def _uri_problem(self, text: str) -> str:
        uri = text.strip()
        if not uri:
            return "a URI is needed, e.g. qemu+ssh://root@hv1/system"
        if why := _group_problem(uri):
            return why
        if self.scheduler.has(uri):
            return "that host is already in the console"
        from virttui.drivers.registry import check_uri

        try:
            check_uri(uri)
        except InvalidURI as exc:
            return str(exc)
        return ""

    def ask_add(self, group: str = "") -> None:
        from virttui.screens.prompt import Field, PromptScreen

        groups = self.group_names
        note = (f"Groups so far: {', '.join(groups)}" if groups
                else "A group puts hosts on one branch of the Hosts tree.")
        fields = [
            Field("uri", "libvirt URI", placeholder="qemu+ssh://root@hv1/system", check=self._uri_problem),
            Field("group", "Group (optional)", value=group, placeholder="rack-a", check=_group_problem),
        ]
        where = self.config.path if self.config is not None else ""
        if where:
            note += f"\nSaved to {where}."

        def answered(values: dict[str, str] | None) -> None:
            if values:
                self.add(values["uri"].strip(), values["group"].strip())

        self.ui.push_screen(PromptScreen("Add a host", fields, ok_label="Add", note=note), answered)

    def add(self, uri: str, group: str = "") -> bool:
        """Poll the host from now on, list it under its group and save it; False if it cannot be."""
        from virttui.drivers.registry import open_driver

        if self.scheduler.has(uri):
            self.ui.notify(f"{uri} is already in the console", severity="warning", markup=False)
            return False
        try:
            driver = open_driver(uri)
        except InvalidURI as exc:
            self.ui.notify(str(exc), severity="error", timeout=10, markup=False)
            return False
        if group:
            self._groups[uri] = group
        self.ctx.host_added.emit(driver)  # the fleet lists it, the scheduler polls it
        log.info("host added: %s", uri)
        if self.config is not None:
            self._save(with_host(self.config, uri, group), f"added {uri}")
        self.ui.broadcast_fleet()
        return True

    # -- removing ----------------------------------------------------------------
    def ask_remove(self, uri: str) -> None:
        from virttui.screens.confirm import ConfirmScreen

        label = self.fleet.host(uri).label
        saved = self.config is not None and uri in self.config.hosts
        body = (f"{uri}\n\nIts guests are not touched: virttui only stops watching the host"
                + (", and removes it from the config file." if saved else "."))

        def answered(yes: bool | None) -> None:
            if yes:
                self.remove(uri)

        self.ui.push_screen(ConfirmScreen(f"Remove host {label} from the console?", body, yes_label="Remove"),
                            answered)

    def remove(self, uri: str) -> None:
        if not self.scheduler.has(uri):
            return
        self.ctx.host_removed.emit(uri)  # the scheduler, the fleet and every controller forget it
        self._groups.pop(uri, None)
        log.info("host removed: %s", uri)
        if self.config is not None and uri in self.config.hosts:
            self._save(without_host(self.config, uri), f"removed {uri}")
        self.ui.broadcast_fleet()

    # -- remembered UI choices -----------------------------------------------------
    def remember(self, *, domain_sort: str | None = None, domain_columns: tuple[str, ...] | None = None) -> None:
        if self.config is None:
            return
        changed = self.config
        if domain_sort is not None:
            changed = replace(changed, domain_sort=domain_sort)
        if domain_columns is not None:
            changed = replace(changed, domain_columns=domain_columns)
        if changed != self.config:
            self._save(changed, "")

    def _save(self, config: Config, what: str) -> None:
        """Write the file; the change stays for this run even when the file cannot be written."""
        previous, self.config = self.config, config
        try:
            save_config(config, previous)
        except ConfigError as exc:
            self.ui.notify(f"not saved: {exc}", severity="error", timeout=10, markup=False)
            return
        if what:
            self.ui.notify(f"{what}; saved to {config.path}", markup=False)


def _group_problem(text: str) -> str:
    """A group name is shown in the Hosts tree and written to the config: printable characters only."""
    return "" if all(ch.isprintable() for ch in text) else "use printable characters only"
