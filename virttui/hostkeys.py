"""Unknown SSH host keys: ask the operator once, save the key only on a deliberate yes (no single key)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from virttui.app import VirtTUI

log = logging.getLogger(__name__)


class HostKeyPrompter:
    """Shows one dialog per unknown key; the host stays in error until the key is accepted."""

    def __init__(self, app: VirtTUI) -> None:
        self.app = app
        self._asking: set[str] = set()
        self._declined: set[tuple[str, str]] = set()  # (uri, fingerprint) the operator refused
        self._deferred: set[str] = set()  # hosts to ask about once the open question is answered

    def forget_host(self, uri: str) -> None:
        """A removed host: added again, its key is asked about again (a refusal may have been a slip)."""
        self._declined = {(u, fp) for u, fp in self._declined if u != uri}
        self._deferred.discard(uri)

    def ask_deferred(self) -> None:
        """A screen is on top again (a dialog closed): ask what had to wait for it."""
        for uri in sorted(self._deferred):
            self._deferred.discard(uri)
            if self.app.scheduler.has(uri):
                self.check(uri)

    def check(self, uri: str) -> None:
        """After a failed connect: if it failed on an unknown host key, ask about it."""
        driver = self.app.scheduler.driver(uri)
        pending = driver.pending_host_key()
        if pending is None or uri in self._asking or (uri, pending.fingerprint) in self._declined:
            return
        from textual.screen import ModalScreen

        if isinstance(self.app.screen, ModalScreen):
            self._deferred.add(uri)  # never on top of another question: asked once that one is answered
            return
        from virttui.screens.confirm import TrustScreen

        self._asking.add(uri)
        body = (f"The SSH host key of {pending.host} is not in {pending.known_hosts}.\n\n"
                f"  {pending.key_type} {pending.fingerprint}\n\n"
                "Compare this fingerprint with the one the host's administrator gives you "
                "(ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub). Trust it and save it to known_hosts?")

        def answered(yes: bool | None) -> None:
            self._asking.discard(uri)
            if not yes:
                self._declined.add((uri, pending.fingerprint))
                self.app.notify(f"{pending.host}: host key not trusted; the host stays disconnected",
                                severity="warning", markup=False)
                return
            try:
                driver.trust_host_key(pending)  # the key shown, even if a retry has seen another since
            except (OSError, ValueError) as exc:
                why = getattr(exc, "strerror", None) or str(exc)
                self.app.notify(f"cannot save the host key: {why}", severity="error", markup=False)
                return
            self.app.scheduler.poll_now(uri)

        self.app.push_screen(TrustScreen(f"Unknown host key: {pending.host}", body, yes_label="Trust"), answered)
