"""--debug: the log, live, in a pane at the bottom of the main screen."""

from __future__ import annotations

import logging
import threading

from textual.app import App
from textual.widgets import RichLog

from virttui.assets import styles


class LogPane(RichLog):
    """The last log records; fed by LogPaneHandler from any thread."""

    DEFAULT_CSS = styles("logpane.tcss")

    DEFAULT_CLASSES = "log-pane"

    def __init__(self) -> None:
        super().__init__(id="log-pane", max_lines=500, wrap=False, markup=False, highlight=False)
        self.border_title = "Log (--debug)"


class LogPaneHandler(logging.Handler):
    """Sends formatted records to the pane on the UI thread; never lets a record stop the app."""

    def __init__(self, app: App, pane: LogPane) -> None:
        super().__init__(level=logging.DEBUG)
        self.app = app
        self.pane = pane
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record).splitlines()[0]  # the first line; the full traceback is in the file
        except Exception:  # noqa: BLE001 - logging must never raise
            return
        try:
            if threading.get_ident() == self.app._thread_id:  # noqa: SLF001 - Textual's own UI thread id
                self.pane.write(line)
            else:
                self.app.call_from_thread(self.pane.write, line)
        except Exception:  # noqa: BLE001 - the app may be shutting down
            pass
