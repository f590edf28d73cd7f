"""The dialogs' common ground: a box centred over the dimmed console."""

from __future__ import annotations

from typing import TypeVar

from textual.screen import ModalScreen

from virttui.assets import styles

ResultT = TypeVar("ResultT")


class Dialog(ModalScreen[ResultT]):
    """A modal dialog. Its rules (dialog.tcss, scoped to Dialog) are parsed at the first dialog
    opened, not with the main screen's: a start parses only what its first frame shows."""

    DEFAULT_CSS = styles("dialog.tcss")
