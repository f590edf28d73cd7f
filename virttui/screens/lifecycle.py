"""The registry's keys on every screen that acts on one current domain."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual.binding import Binding

from virttui import actiontable as registry
from virttui.actiontable import ActionSpec
from virttui.drivers.model import Domain

if TYPE_CHECKING:
    from virttui.console.consoleapp import ConsoleApp


def action_bindings(screen: str) -> list[Binding]:
    """The Footer bindings of the registry's keys on `screen`, in table order."""
    specs = registry.keyed(screen)
    return [
        *(Binding(spec.key, f"domain('{spec.id}')", spec.footer, show=spec.show) for spec in specs),
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

    def offers(self, spec: ActionSpec) -> bool:
        """check_action's answer for a registry entry: whether it can apply now."""
        current = self.current_domain()
        return current is not None and spec.fits(current[1])

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "domain":
            return True if self.offers(registry.spec(str(parameters[0]))) else None  # None: shown disabled
        return True

    def action_unavailable(self, name: str) -> None:
        """A key whose action can't apply now: one line saying why, not a silent key."""
        spec = registry.spec(name)
        if spec.bulk and getattr(self, "marked", None):
            self.action_domain(name)  # on the marked domains: the runner says none of them can
            return
        current = self.current_domain()
        if current is None:
            self.notify(self.why_no_domain(), severity="warning", markup=False)  # type: ignore[attr-defined]
        elif spec.runs_in_runner:
            self.action_domain(name)  # the runner says why (e.g. "Shutdown: win-test is paused")
        else:
            self.notify(spec.refusal(current[1]), severity="warning", markup=False)  # type: ignore[attr-defined]

    def action_domain(self, name: str) -> None:
        current = self.current_domain()
        if current is not None:
            self.console.actions.request(current[0], current[1], name)
