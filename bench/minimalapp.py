"""`python -m bench.minimalapp`: the start benchmark's yardstick in a real terminal, a minimal Textual app
showing one DataTable of 25 guests (the first named guest-00), run as any Textual app is run."""

from __future__ import annotations

import sys

FIRST_ROW = "guest-00"


def minimal_app():  # noqa: ANN201 - a textual App, imported here so that its import is in the timed start
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    class Minimal(App[None]):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("Name", "Host", "State", "vCPU", "Memory", "CPU%", "UUID")
            for index in range(25):
                table.add_row(f"guest-{index:02d}", "hv1", "running", "2", "2.0 GiB", "3.1",
                              f"00000000-0000-0000-0000-{index:012d}")

    return Minimal()


def main() -> int:
    minimal_app().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
