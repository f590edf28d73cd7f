"""The registry's keys on every screen that acts on one current domain."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.binding import Binding

from virttui import actiontable as registry
from virttui.actiontable import ActionSpec
from virttui.drivers.model import Domain

if TYPE_CHECKING:
    from virttui.console.consoleapp import ConsoleApp


def _key_bindings(spec: ActionSpec) -> list[Binding]:
    """A key's binding; for a key standing for several entries (p: Pause or Resume), one per entry,
    so the Footer names the one that would run (check_action hides the others)."""
    if not spec.one_of:
        return [Binding(spec.key, f"domain('{spec.id}')", spec.footer, show=spec.show)]
    return [Binding(spec.key, f"domain('{spec.id}', '{option}')", registry.spec(option).label, show=spec.show)
            for option in spec.one_of]


def action_bindings(screen: str) -> list[Binding]:
    """The Footer bindings of the registry's keys on `screen`, in table order."""
    specs = registry.keyed(screen)
    return [
        *(binding for spec in specs for binding in _key_bindings(spec)),
        # Reached only when the key's own binding above is disabled (Textual tries a key's bindings in
        # order): says why, instead of a key that does nothing. The Footer still shows the first, dimmed.
        *(Binding(spec.key, f"unavailable('{spec.id}')", "", show=False) for spec in specs),
    ]


class LifecycleActions:
    """Mixin for a Screen: the registry's keys act on `current_domain()`, offered only when valid."""

    @property
    def console(self) -> ConsoleApp:
        """The app's fleet, scheduler and controllers (VirtTUI, seen as a ConsoleApp)."""
        return cast("ConsoleApp", self.app)  # type: ignore[attr-defined]

    def current_domain(self) -> tuple[str, Domain] | None:
        """(host uri, domain) the keys act on; None when there is none."""
        raise NotImplementedError

    def why_no_domain(self) -> str:
        """Why current_domain() is None, for a key pressed then."""
        return "no domain under the cursor"

    def host_driver(self, uri: str) -> object | None:
        """The driver of the host the keys act on, asked what it can do at all; None once it is gone."""
        scheduler = self.console.scheduler
        return scheduler.driver(uri) if scheduler.has(uri) else None

    def host_refuses(self, uri: str, spec: ActionSpec) -> bool:
        """Whether the host can't run the entry at all (an embedded host has no serial console)."""
        if not spec.host_needs:
            return False
        driver = self.host_driver(uri)
        return driver is not None and not spec.offered_on(driver)

    def offers(self, spec: ActionSpec) -> bool:
        """check_action's answer for a registry entry: whether it can apply now."""
        current = self.current_domain()
        return current is not None and spec.fits(current[1]) and not self.host_refuses(current[0], spec)

    def acted_on(self, spec: ActionSpec) -> list[Domain]:
        """The domains the entry's key would act on now."""
        current = self.current_domain()
        return [] if current is None else [current[1]]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "domain":
            spec = registry.spec(str(parameters[0]))
            if len(parameters) > 1 and str(parameters[1]) != self._option_shown(spec):
                return False  # another binding of this key names the entry that would run
            return True if self.offers(spec) else None  # None: shown disabled
        return True

    def _option_shown(self, spec: ActionSpec) -> str:
        """Of a one_of key's entries, the one its Footer label names: the one that would run."""
        domains = self.acted_on(spec)
        return spec.choose(domains).id if domains else spec.one_of[0]

    def action_unavailable(self, name: str) -> None:
        """A key whose action can't apply now: one line saying why, not a silent key."""
        spec = registry.spec(name)
        if spec.bulk and getattr(self, "marked", None):
            self.action_domain(name)  # on the marked domains: the runner says none of them can
            return
        current = self.current_domain()
        if current is None:
            self.notify(self.why_no_domain(), severity="warning", markup=False)  # type: ignore[attr-defined]
        elif self.host_refuses(current[0], spec):
            self.notify(spec.refusal_here(self.console.fleet.host(current[0]).label),  # type: ignore[attr-defined]
                        severity="warning", markup=False)
        elif spec.runs_in_runner:
            self.action_domain(name)  # the runner says why (e.g. "Shutdown: win-test is paused")
        else:
            self.notify(spec.refusal(current[1]), severity="warning", markup=False)  # type: ignore[attr-defined]

    def action_domain(self, name: str, _shown: str = "") -> None:
        current = self.current_domain()
        if current is not None:
            self.console.actions.request(current[0], current[1], name)
