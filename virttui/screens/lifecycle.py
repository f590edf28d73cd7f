"""Lifecycle keys shared by every screen that acts on one current domain."""

from __future__ import annotations

from textual.binding import Binding

from virttui.drivers.base import Action, valid_actions
from virttui.drivers.model import Domain

LIFECYCLE_BINDINGS = [
    Binding("s", "domain('start')", "Start"),
    Binding("d", "domain('shutdown')", "Shutdown"),
    Binding("r", "domain('reboot')", "Reboot"),
    Binding("f", "domain('destroy')", "Force off"),
    Binding("p", "pause_resume", "Pause"),
    Binding("c", "console", "Console"),
    Binding("a", "autostart", "Autostart", show=False),
    Binding("U", "undefine", "Undefine", show=False),
    # Reached only when the key's own binding above is disabled (Textual tries a key's bindings in
    # order): says why, instead of a key that does nothing. The Footer still shows the first, dimmed.
    *(Binding(key, f"unavailable('{key}')", "", show=False) for key in "sdrfpcaU"),
]


class LifecycleActions:
    """Mixin for a Screen: s/d/r/f/p act on `current_domain()`, offered only when valid."""

    def current_domain(self) -> tuple[str, Domain] | None:
        """(host uri, domain) the keys act on; None when there is none."""
        raise NotImplementedError

    def why_no_domain(self) -> str:
        """Why current_domain() is None, for a key pressed then."""
        return "no domain under the cursor"

    def lifecycle_allowed(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """check_action's answer for lifecycle actions: True, or None (shown disabled)."""
        current = self.current_domain()
        if current is None:
            return None
        allowed = valid_actions(current[1].state)
        if action == "domain":
            return True if Action(parameters[0]) in allowed else None
        return True if allowed & {Action.SUSPEND, Action.RESUME} else None

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("domain", "pause_resume"):
            return self.lifecycle_allowed(action, parameters)
        if action in ("console", "autostart", "undefine"):
            current = self.current_domain()
            if current is None:
                return None
            dom = current[1]
            return True if (dom.state.is_active if action == "console" else dom.persistent) else None
        return True

    def action_unavailable(self, key: str) -> None:
        """A lifecycle key whose action can't apply now: one line saying why, not a silent key."""
        acts = {"s": "start", "d": "shutdown", "r": "reboot", "f": "destroy", "p": ""}
        if key in acts and getattr(self, "marked", None):
            self._act(acts[key])  # on the marked domains: it says none of them can
            return
        current = self.current_domain()
        if current is None:
            self.notify(self.why_no_domain(), severity="warning", markup=False)  # type: ignore[attr-defined]
        elif key in acts:
            self._act(acts[key])  # the action runner says why (e.g. "Shutdown: win-test is paused")
        elif key == "c":
            self.notify(f"Console: {current[1].name} is {current[1].state.value}",  # type: ignore[attr-defined]
                        severity="warning", markup=False)
        else:
            label = "Autostart" if key == "a" else "Undefine"
            self.notify(f"{label}: {current[1].name} is transient (it has no definition)",  # type: ignore[attr-defined]
                        severity="warning", markup=False)

    def _act(self, name: str) -> None:
        if name:
            self.action_domain(name)
        else:
            self.action_pause_resume()

    def action_console(self) -> None:
        current = self.current_domain()
        if current is not None:
            self.app.essentials.console(*current)  # type: ignore[attr-defined]

    def action_autostart(self) -> None:
        current = self.current_domain()
        if current is not None:
            self.app.essentials.toggle_autostart(*current)  # type: ignore[attr-defined]

    def action_undefine(self) -> None:
        current = self.current_domain()
        if current is not None:
            self.app.essentials.undefine(*current)  # type: ignore[attr-defined]

    def action_domain(self, name: str) -> None:
        current = self.current_domain()
        if current is not None:
            self.app.actions.request(current[0], current[1], Action(name))  # type: ignore[attr-defined]

    def action_pause_resume(self) -> None:
        current = self.current_domain()
        if current is None:
            return
        uri, dom = current
        action = Action.RESUME if Action.RESUME in valid_actions(dom.state) else Action.SUSPEND
        self.app.actions.request(uri, dom, action)  # type: ignore[attr-defined]
