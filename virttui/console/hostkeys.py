"""Unknown SSH host keys: ask the operator once, save the key only on a deliberate yes (no single key).

Once the operator declines a host's key, that host is not asked about again until they say so
(K, or the command palette): a host rotating its key would otherwise reopen the dialog on every
retry, each time with a new key, until a tired operator trusts one.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from virttui.console.context import ConsoleContext

log = logging.getLogger(__name__)


class HostKeyPrompter:
    """Shows one dialog per unknown key; the host stays in error until the key is accepted."""

    def __init__(self, ctx: ConsoleContext) -> None:
        self.fleet, self.scheduler, self.ui = ctx.fleet, ctx.scheduler, ctx.ui
        ctx.host_removed.subscribe(self.forget_host)
        self._asking: set[str] = set()
        self._declined: set[str] = set()  # hosts whose key the operator refused: not asked again unprompted
        self._deferred: set[str] = set()  # hosts to ask about once the open question is answered

    def forget_host(self, uri: str) -> None:
        """A removed host: added again, its key is asked about again (a refusal may have been a slip)."""
        self._declined.discard(uri)
        self._deferred.discard(uri)

    @property
    def declined(self) -> list[str]:
        """Hosts whose unknown key was refused and not reviewed since, in the fleet's order."""
        return [uri for uri in self.fleet.uris if uri in self._declined]

    def ask_deferred(self) -> None:
        """A screen is on top again (a dialog closed): ask what had to wait for it."""
        for uri in sorted(self._deferred):
            self._deferred.discard(uri)
            if self.scheduler.has(uri):
                self.check(uri)

    def explain(self, uri: str, error: str) -> str:
        """The error a host shows: for a refused host whose connect failed on an unknown key, that it
        waits for the operator (K) rather than asking again; any other error as it is."""
        if uri not in self._declined or not self.scheduler.has(uri):
            return error
        pending = self.scheduler.driver(uri).pending_host_key()
        if pending is None or pending.fingerprint not in error:
            return error  # it failed for another reason this time
        return _declined_text(pending)

    def check(self, uri: str) -> None:
        """After a failed connect: if it failed on an unknown host key, ask about it."""
        driver = self.scheduler.driver(uri)
        pending = driver.pending_host_key()
        if pending is None or uri in self._asking or uri in self._declined:
            return
        from textual.screen import ModalScreen

        if isinstance(self.ui.screen, ModalScreen):
            self._deferred.add(uri)  # never on top of another question: asked once that one is answered
            return
        from virttui.screens.confirm import TrustScreen

        self._asking.add(uri)
        body = (f"The SSH host key of {pending.label} is not in {pending.known_hosts}.\n\n"
                f"  {pending.key_type} {pending.fingerprint}\n\n"
                "Compare this fingerprint with the one the host's administrator gives you "
                "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub). Trust it and save it to known_hosts?")

        def answered(yes: bool | None) -> None:
            self._asking.discard(uri)
            if not yes:
                self._declined.add(uri)
                self.ui.notify(f"{pending.label}: host key not trusted; the host stays disconnected "
                               "(K asks again)", severity="warning", markup=False)
                self._show_declined(uri)
                return
            try:
                driver.trust_host_key(pending)  # the key shown, even if a retry has seen another since
            except (OSError, ValueError) as exc:
                why = getattr(exc, "strerror", None) or str(exc)
                self.ui.notify(f"cannot save the host key: {why}", severity="error", markup=False)
                return
            self.scheduler.poll_now(uri)

        self.ui.push_screen(TrustScreen(f"Unknown host key: {pending.label}", body, yes_label="Trust"), answered)

    def review(self, uri: str | None) -> None:
        """The operator asks again (K, or the command palette): about this host if it has a refused or
        unknown key, else about the first host whose key was refused."""
        if uri is None or not self.scheduler.has(uri) or (
                uri not in self._declined and self.scheduler.driver(uri).pending_host_key() is None):
            uri = next(iter(self.declined), None)
        if uri is None:
            self.ui.notify("no host has an unknown host key to review", markup=False)
            return
        self._declined.discard(uri)
        if self.scheduler.driver(uri).pending_host_key() is not None:
            self.check(uri)
        else:
            self.scheduler.poll_now(uri)  # its next connect meets the key again, and asks

    def _show_declined(self, uri: str) -> None:
        """The host's row says at once why it stays disconnected, not only after its next retry."""
        if not self.scheduler.has(uri):
            return
        host = self.fleet.host(uri)
        pending = self.scheduler.driver(uri).pending_host_key()
        if host.last_error and pending is not None:
            self.fleet.set_host(replace(host, last_error=_declined_text(pending)))
            self.ui.broadcast_fleet()


def _declined_text(pending) -> str:  # noqa: ANN001 - virttui.drivers.ssh.UnknownHostKey
    return f"unknown host key {pending.key_type} {pending.fingerprint} declined; press K to review"
