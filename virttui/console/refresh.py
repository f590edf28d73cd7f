"""Ctrl+R: every host polled now, and one line once they all answered (how many failed)."""

from __future__ import annotations

from virttui.format import plural


class RefreshReport:
    """The hosts a refresh is still waiting for, and what it says when it starts and ends."""

    def __init__(self) -> None:
        self._waiting: set[str] = set()
        self._failed: set[str] = set()
        self._asked = 0

    def start(self, uris: list[str]) -> str:
        self._waiting, self._failed, self._asked = set(uris), set(), len(uris)
        return f"Refresh: polling {plural(len(uris), 'host')} now…"

    def answered(self, uri: str, ok: bool) -> str | None:
        """A host's poll came back: the closing line once it was the last one waited for."""
        if uri not in self._waiting:
            return None
        self._waiting.discard(uri)
        if not ok:
            self._failed.add(uri)
        if self._waiting:
            return None
        failed = f", {len(self._failed)} failed" if self._failed else ""
        return f"Refresh: {plural(self._asked, 'host')} polled{failed}"

    def forget(self, uri: str) -> str | None:
        """A host removed meanwhile is not waited for."""
        self._asked -= uri in self._waiting
        return self.answered(uri, ok=True) if uri in self._waiting else None

