"""The main screen's marks and the rule that guest keys act only on what is seen: from the Domains
pane, on the domain under its cursor or on the marked domains it shows, never on hidden ones."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.screen import Screen

from virttui import actiontable as registry
from virttui.actiontable import ActionSpec
from virttui.drivers.model import ConnectionState, Domain
from virttui.screens.lifecycle import LifecycleActions
from virttui.widgets.panes import DomainsTable, split_domain_key

if TYPE_CHECKING:
    pass


class MarksMixin(LifecycleActions, Screen):
    """Marks (Space, *), bulk keys and the Domains-pane rule (MainScreen's parts it uses are declared here)."""

    marked: set[tuple[str, str]]
    _refresh_domains: Callable[..., None]
    _refresh_bindings: Callable[[], None]
    reveal_focused_pane: Callable[[], None]

    def _prune_marks(self) -> None:
        """Marks live only on domains of connected hosts: a removed host's, or one that failed (its
        domains shown as last seen), would be counted, disable every key, and join a bulk action."""
        if self.marked:
            fleet = self.console.fleet
            self.marked = {(uri, uuid) for uri, uuid in self.marked
                           if uri in fleet.uris and fleet.host(uri).state is ConnectionState.CONNECTED
                           and fleet.domain(uri, uuid) is not None}

    def marked_domains(self) -> list[tuple[str, Domain]]:
        """The marked domains that still exist, in host then name order."""
        found = [(uri, self.console.fleet.domain(uri, uuid)) for uri, uuid in self.marked]
        return sorted(((uri, dom) for uri, dom in found if dom is not None),
                      key=lambda item: (self.console.fleet.uris.index(item[0]), item[1].name))

    def _shown_keys(self) -> set[tuple[str, str]]:
        table = self.query_one(DomainsTable)
        return {split_domain_key(str(key.value)) for key in table.rows}  # a row's key is never None

    def shown_marked_domains(self) -> list[tuple[str, Domain]]:
        """The marked domains the Domains pane shows now: the only ones a bulk key acts on."""
        shown = self._shown_keys()
        return [(uri, dom) for uri, dom in self.marked_domains() if (uri, dom.uuid) in shown]

    def hidden_marked_domains(self) -> list[tuple[str, Domain]]:
        """Marked domains the filter or the Hosts choice hides: listed apart, never acted on."""
        shown = self._shown_keys()
        return [(uri, dom) for uri, dom in self.marked_domains() if (uri, dom.uuid) not in shown]

    def action_mark(self) -> None:
        current = self.current_domain()
        if current is None:
            return
        key = (current[0], current[1].uuid)
        self.marked.symmetric_difference_update({key})
        self._refresh_domains()
        self.query_one(DomainsTable).action_cursor_down()
        self._refresh_bindings()

    def action_mark_all(self) -> None:
        """* marks every domain the filter shows; if they are all marked already, unmarks them."""
        table = self.query_one(DomainsTable)
        shown = {split_domain_key(str(key.value)) for key in table.rows}  # a row's key is never None
        self.marked = self.marked - shown if shown <= self.marked else self.marked | shown
        self._refresh_domains()
        self._refresh_bindings()

    def guest_keys_live(self) -> bool:
        """Guest keys act only from the Domains pane: with the cursor of another pane in view, a key
        would act on a domain the operator is not looking at."""
        return isinstance(self.focused, DomainsTable)

    def offers(self, spec: ActionSpec) -> bool:
        if not self.guest_keys_live():
            return False
        if spec.bulk and self.marked:
            return any(spec.fits(dom) for _, dom in self.shown_marked_domains())
        return super().offers(spec)

    def acted_on(self, spec: ActionSpec) -> list[Domain]:
        if spec.bulk and self.marked:
            return [dom for _, dom in self.shown_marked_domains()]
        return super().acted_on(spec)

    def action_unavailable(self, name: str) -> None:
        if not self.guest_keys_live():
            self._say_guest_keys_need_domains()
            return
        super().action_unavailable(name)

    def action_domain(self, name: str, _shown: str = "") -> None:
        if not self.guest_keys_live():
            self._say_guest_keys_need_domains()
        elif self.marked and registry.spec(name).bulk:
            self.console.actions.request_bulk(self.shown_marked_domains(), name, self._bulk_done,
                                              hidden=self.hidden_marked_domains())
        else:
            super().action_domain(name)

    def _say_guest_keys_need_domains(self) -> None:
        self.notify("guest keys act on the Domains pane: Tab to it first", severity="warning", markup=False)

    def on_descendant_focus(self) -> None:
        self.call_after_refresh(self.reveal_focused_pane)  # once focus settled (on mount it passes Hosts)
        self._refresh_bindings()

    def on_descendant_blur(self) -> None:
        self._refresh_bindings()

    def _bulk_done(self) -> None:
        self.marked.clear()
        self._refresh_domains()
        self._refresh_bindings()
