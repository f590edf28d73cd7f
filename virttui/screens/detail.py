"""One domain in detail: live facts, CPU and disk I/O sparklines, and its XML."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Label, Sparkline, Static

from virttui.crash import contained
from virttui.drivers.errors import DriverError
from virttui.drivers.model import Domain
from virttui.format import human_kib, human_rate, percent
from virttui.messages import FleetUpdated
from virttui.screens.lifecycle import LIFECYCLE_BINDINGS, LifecycleActions

if TYPE_CHECKING:
    from virttui.app import VirtTUI


class DomainDetailScreen(LifecycleActions, Screen):
    """Opened with Enter on a domain; Escape goes back."""

    BINDINGS = [Binding("escape", "back", "Back"), *LIFECYCLE_BINDINGS]

    app: VirtTUI

    def __init__(self, uri: str, uuid: str) -> None:
        super().__init__()
        self.uri = uri
        self.uuid = uuid

    def compose(self) -> ComposeResult:
        yield Static(id="detail-head")
        with Horizontal(id="detail-graphs"):
            with Vertical(classes="graph"):
                yield Label("CPU %", id="cpu-label")
                yield Sparkline([], id="cpu-spark")
            with Vertical(classes="graph"):
                yield Label("Disk I/O", id="io-label")
                yield Sparkline([], id="io-spark")
        with VerticalScroll(id="xml-scroll"):
            yield Static(Text("loading XML…", style="dim"), id="xml")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#xml-scroll").border_title = "Domain XML"
        self.refresh_view()
        self.load_xml()

    @work(thread=True, exclusive=True, group="detail-xml", exit_on_error=False)
    def load_xml(self) -> None:
        """dumpxml can block on a remote host: fetch it off the UI thread."""
        try:
            xml = self.app.scheduler.driver(self.uri).domain_xml(self.uuid)
        except DriverError as exc:
            self.app.call_from_thread(self._show_xml, None, str(exc))
            return
        self.app.call_from_thread(self._show_xml, xml, "")

    def _show_xml(self, xml: str | None, error: str) -> None:
        widget = self.query_one("#xml", Static)
        if xml is None:
            widget.update(Text(f"XML unavailable: {error}", style="red"))
        else:
            widget.update(Syntax(xml, "xml", theme="ansi_dark", word_wrap=False, line_numbers=False))

    @contained
    def on_fleet_updated(self, message: FleetUpdated) -> None:
        self.refresh_view()

    def refresh_view(self) -> None:
        fleet = self.app.fleet
        dom = fleet.domain(self.uri, self.uuid)
        head = self.query_one("#detail-head", Static)
        if dom is None:
            head.update(Text(f"domain {self.uuid} is gone from {fleet.host(self.uri).label}", style="bold red"))
            self.refresh_bindings()
            return
        cpu_hist, io_hist = fleet.history(self.uri, self.uuid)
        rows = [r for r in fleet.domain_rows(self.uri) if r.domain.uuid == self.uuid]
        row = rows[0] if rows else None
        pending = self.app.actions.pending.get((self.uri, self.uuid))
        text = Text()
        text.append(dom.name, style="bold")
        text.append(f" on {fleet.host(self.uri).label}   ")
        text.append(f"{pending}…" if pending else dom.state.value, style="bold yellow" if pending else "bold")
        text.append(f"   {dom.vcpus} vCPU   {human_kib(dom.memory_kib)} of {human_kib(dom.max_memory_kib)}")
        kind = "persistent" if dom.persistent else "transient"
        text.append(f"\n{kind}, autostart {'on' if dom.autostart else 'off'}")
        text.append(f"   UUID {dom.uuid}", style="dim")
        head.update(text)
        # Rounded, so float noise in a flat series is not stretched into fake peaks.
        self.query_one("#cpu-spark", Sparkline).data = [round(v, 1) for v in cpu_hist] or [0.0]
        self.query_one("#io-spark", Sparkline).data = [round(v, -3) for v in io_hist] or [0.0]
        cpu_now = row.cpu_percent if row else None
        io_now = (row.read_bps or 0) + (row.write_bps or 0) if row and row.read_bps is not None else None
        self.query_one("#cpu-label", Label).update(f"CPU {percent(cpu_now)}")
        self.query_one("#io-label", Label).update(f"Disk I/O {human_rate(io_now)}")
        self.refresh_bindings()

    def current_domain(self) -> tuple[str, Domain] | None:
        dom = self.app.fleet.domain(self.uri, self.uuid)
        return (self.uri, dom) if dom is not None else None

    def action_back(self) -> None:
        self.app.pop_screen()
