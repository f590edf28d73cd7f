"""One domain in detail: live facts, CPU and disk I/O sparklines, and its XML."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.syntax import Syntax
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Sparkline, Static
from textual.widgets.data_table import RowDoesNotExist

from virttui.assets import styles
from virttui.console.messages import FleetUpdated
from virttui.console.workers import WorkResult, run_blocking
from virttui.drivers.errors import DriverError
from virttui.drivers.model import ConnectionState, Domain, DomainSnapshot
from virttui.drivers.names import escaped
from virttui.format import human_kib, human_rate, percent
from virttui.runtime.crash import contained
from virttui.screens.lifecycle import LifecycleActions, action_bindings
from virttui.widgets.navigation import RowTable, Viewer
from virttui.widgets.sparkline import ZeroSparkline

if TYPE_CHECKING:
    from collections.abc import Callable


class XmlLoaded(WorkResult[str]):
    """The domain's XML, or why it could not be read."""


class SnapshotsListed(WorkResult[list[DomainSnapshot]]):
    """The domain's snapshots, or why they could not be listed."""


class DomainDetailScreen(LifecycleActions, Screen):
    """Opened with Enter on a domain; Escape goes back."""

    DEFAULT_CSS = styles("detail.tcss")

    BINDINGS = [
        Binding("escape", "back", "Back"),
        Binding("q", "back", "Back", show=False),  # one level back, as Esc: not the app's quit
        *action_bindings("detail"),
        Binding("n", "new_snapshot", "Snapshot"),
        Binding("v", "revert_snapshot", "Revert"),
        Binding("delete", "delete_snapshot", "Del snap"),
        Binding("m", "memory_period", "Mem stats", show=False),
        # The main screen's host keys: pressed here, they say where they work rather than nothing.
        Binding("plus", "main_only('add')", "", show=False),
        Binding("minus", "main_only('remove')", "", show=False),
    ]

    def __init__(self, uri: str, uuid: str) -> None:
        super().__init__()
        self.uri = uri
        self.uuid = uuid
        self._last_seen: tuple[str, str] | None = None  # (domain name, host label) as last shown
        self._offered: tuple[object, ...] | None = ()  # what the Footer's keys were last checked against
        self._snapshots: dict[str, DomainSnapshot] = {}  # by row key
        self._snapshot_names: frozenset[str] = frozenset()  # as last listed: a new one can't reuse them

    def compose(self) -> ComposeResult:
        yield Static(id="detail-head")
        with Horizontal(id="detail-graphs"):
            with Vertical(classes="graph"):
                yield Label("CPU %", id="cpu-label")
                yield ZeroSparkline([], id="cpu-spark")
            with Vertical(classes="graph"):
                yield Label("Disk I/O", id="io-label")
                yield ZeroSparkline([], id="io-spark")
        snapshots = RowTable(id="snapshots")
        snapshots.add_columns("Snapshot", "Taken", "State", "Description")
        yield snapshots
        with Viewer(id="xml-scroll"):  # both ways: XML lines are never wrapped
            yield Static(Text("loading XML…", style="dim"), id="xml")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#xml-scroll").border_title = "Domain XML"
        self.query_one("#snapshots").border_title = "Snapshots"
        self.refresh_view()
        self.load_xml()
        self.load_snapshots()

    def load_snapshots(self, _result: object = None) -> None:
        """snapshot-list and one dumpxml each: off the UI thread, like the XML. Also the callback of a
        snapshot action, which may finish after this screen was closed: nothing to show then."""
        if not self.is_attached:
            return
        scheduler = self.console.scheduler
        run_blocking(self, lambda: scheduler.driver(self.uri).snapshots(self.uuid), SnapshotsListed,
                     group="detail-snapshots", exclusive=True)

    @contained
    def on_snapshots_listed(self, message: SnapshotsListed) -> None:
        """Any failure shows in the pane, never a silent "loading"."""
        if message.error is not None:
            self._show_snapshots(None, _one_line(message.error))
        else:
            self._show_snapshots(message.value, "")

    def _show_snapshots(self, snaps: list[DomainSnapshot] | None, error: str) -> None:
        table = self.query_one("#snapshots", DataTable)
        was = self.selected_snapshot()
        row = table.cursor_row
        table.clear()
        self._snapshot_names = frozenset(snap.name for snap in snaps or ())
        self._snapshots = {str(index): snap for index, snap in enumerate(snaps or ())}
        if snaps is None:
            table.border_title = Content(f"Snapshots: {error}")  # plain text, not markup
            return
        table.border_title = Content(f"Snapshots · {len(snaps)}" if snaps else "Snapshots · none (n creates one)")
        for key, snap in self._snapshots.items():
            name = Text(("● " if snap.current else "  ") + escaped(snap.name), style="bold" if snap.current else "")
            description = Text(escaped(snap.description))
            if not snap.usable:
                name.append(" ⚠ unusable name", style="bold red")
                description = Text("no action: its name holds control characters", style="red")
            table.add_row(name, Text(_when(snap.created)), Text(escaped(snap.state) or "-"), description, key=key)
        self._keep_cursor(table, was, row)

    def _keep_cursor(self, table: DataTable, was: DomainSnapshot | None, row: int) -> None:
        """After a reload (n, v, Del) the cursor stays on its snapshot, else on the row that took
        its place: not back on the first row, where the next v or Del would act."""
        index = next((i for i, snap in enumerate(self._snapshots.values()) if was and snap.name == was.name), row)
        if table.row_count:
            table.move_cursor(row=min(index, table.row_count - 1), animate=False)

    def selected_snapshot(self) -> DomainSnapshot | None:
        """The snapshot under the cursor: the row the operator sees highlighted, by its key."""
        table = self.query_one("#snapshots", DataTable)
        if table.row_count == 0:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        except RowDoesNotExist:
            return None
        return self._snapshots.get(key or "")

    def _actionable_snapshot(self) -> str | None:
        """The selected snapshot's name, if a command may carry it; otherwise says why not."""
        snap = self.selected_snapshot()
        if snap is None:
            return None
        if not snap.usable:
            self.notify(f"Snapshot {escaped(snap.name)!r}: its name holds control characters; "
                        "virttui never sends it to the host", severity="warning", markup=False)
            return None
        return snap.name

    def action_new_snapshot(self) -> None:
        current = self.current_domain()
        if current is not None:
            self.console.essentials.create_snapshot(*current, self.load_snapshots, self._snapshot_names)

    def action_revert_snapshot(self) -> None:
        current, name = self.current_domain(), self._actionable_snapshot()
        if current is not None and name is not None:
            self.console.essentials.revert_snapshot(*current, name, self.load_snapshots)

    def action_delete_snapshot(self) -> None:
        current, name = self.current_domain(), self._actionable_snapshot()
        if current is not None and name is not None:
            self.console.essentials.delete_snapshot(*current, name, self.load_snapshots)

    def action_memory_period(self) -> None:
        current = self.current_domain()
        if current is not None:
            self.console.essentials.memory_stats_period(*current)

    def load_xml(self) -> None:
        """dumpxml can block on a remote host: fetch it off the UI thread."""
        scheduler = self.console.scheduler
        run_blocking(self, lambda: scheduler.driver(self.uri).domain_xml(self.uuid), XmlLoaded, name="load_xml",
                     group="detail-xml", exclusive=True)

    @contained
    def on_xml_loaded(self, message: XmlLoaded) -> None:
        """Any failure shows in the pane, never a silent "loading"."""
        if message.error is not None:
            self._show_xml(None, _one_line(message.error))
        else:
            self._show_xml(message.value, "")

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
        fleet = self.console.fleet
        dom = fleet.domain(self.uri, self.uuid)
        head = self.query_one("#detail-head", Static)
        if dom is None:  # undefined, or its host removed: named as the operator last saw it
            name, host_label = self._last_seen or (f"domain {self.uuid}", fleet.host(self.uri).label)
            head.update(Text(f"{name} is gone from {host_label}", style="bold red"))
            self.query_one("#cpu-spark", Sparkline).data = []
            self.query_one("#io-spark", Sparkline).data = []
            self.query_one("#cpu-label", Label).update("CPU -")
            self.query_one("#io-label", Label).update("Disk I/O -")
            for graph in self.query(".graph"):
                graph.border_subtitle = ""
            self._refresh_bindings_if_changed(None)
            return
        self._last_seen = (dom.name, fleet.host(self.uri).label)
        cpu_hist, io_hist = fleet.history(self.uri, self.uuid)
        rows = [r for r in fleet.domain_rows(self.uri) if r.domain.uuid == self.uuid]
        row = rows[0] if rows else None
        pending = self.console.actions.pending.get((self.uri, self.uuid))
        text = Text()
        text.append(dom.name, style="bold")
        text.append(f" on {fleet.host(self.uri).label}   ")
        host = fleet.host(self.uri)
        if host.state is not ConnectionState.CONNECTED:  # what is shown is the last state seen, not now
            text.append(f"{dom.state_text} when last seen ({host.label} is {host.state_words})", style="bold red")
        else:
            text.append(f"{pending}…" if pending else dom.state_text, style="bold yellow" if pending else "bold")
        text.append(f"   {dom.vcpus} vCPU   {human_kib(dom.memory_kib)} of {human_kib(dom.max_memory_kib)}")
        used = human_kib(dom.memory_used_kib) if dom.memory_used_kib is not None else "n/a"
        text.append(f", used {used}")
        kind = "persistent" if dom.persistent else "transient"
        text.append(f"\n{kind}, autostart {'on' if dom.autostart else 'off'}")
        text.append(f"   UUID {dom.uuid}", style="dim")
        head.update(text)
        # Rounded, so float noise in an idle series is not drawn as full-height peaks; fewer than two
        # samples draw a flat line (Textual draws a single value as a full-height bar).
        cpu_data = [round(v, 1) for v in cpu_hist]
        io_data = [round(v, -3) for v in io_hist]
        self.query_one("#cpu-spark", Sparkline).data = cpu_data if len(cpu_data) > 1 else []
        self.query_one("#io-spark", Sparkline).data = io_data if len(io_data) > 1 else []
        cpu_now = row.cpu_percent if row else None
        io_now = (row.read_bps or 0) + (row.write_bps or 0) if row and row.read_bps is not None else None
        # CPU% is a share of the whole host: 8 vCPUs flat out on a 24-CPU host read 33%, which looks
        # idle; the share of the guest's own vCPUs says it is saturated.
        own = None if cpu_now is None or not dom.vcpus else min(100.0, cpu_now * host.cpus / dom.vcpus)
        vcpus = f"{dom.vcpus} vCPU{'s' if dom.vcpus != 1 else ''}"
        self.query_one("#cpu-label", Label).update(f"CPU {percent(cpu_now)} host · {percent(own)} of {vcpus}")
        self.query_one("#io-label", Label).update(f"Disk I/O {human_rate(io_now)}")
        # Sparklines scale from zero to their highest sample: the range says what a full bar is.
        graphs = self.query(".graph")
        graphs[0].border_subtitle = _range(cpu_data, percent)
        graphs[1].border_subtitle = _range(io_data, human_rate)
        self._refresh_bindings_if_changed((host.state, dom.state, dom.persistent))

    def _refresh_bindings_if_changed(self, offered: tuple[object, ...] | None) -> None:
        """The Footer is rebuilt only when what the keys depend on changed: every host's poll
        refreshes this screen, and a rebuild per poll cost up to half a core at short intervals."""
        if offered != self._offered:
            self._offered = offered
            self.refresh_bindings()

    def current_domain(self) -> tuple[str, Domain] | None:
        """The domain, while its host is connected: a host in error leaves only a stale snapshot."""
        if self.console.fleet.host(self.uri).state is not ConnectionState.CONNECTED:
            return None
        dom = self.console.fleet.domain(self.uri, self.uuid)
        return (self.uri, dom) if dom is not None else None

    def why_no_domain(self) -> str:
        host = self.console.fleet.host(self.uri)
        if host.state is not ConnectionState.CONNECTED:
            return f"{host.label} is {host.state_words}"
        return "the domain is gone"

    def on_screen_resume(self) -> None:
        """On top again (a dialog closed): a host key question that had to wait is asked now."""
        self.console.host_keys.ask_deferred()

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_main_only(self, what: str) -> None:
        self.notify(f"{what} hosts on the main screen (Esc)", markup=False)


def _one_line(exc: Exception) -> str:
    """A driver's message as it is; anything else named as the internal error it is."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, DriverError) else f"internal error: {type(exc).__name__}: {text}"


def _when(created: int) -> str:
    """A snapshot's creation time (UTC, from the host's XML): "-" when absent or beyond any calendar."""
    if not created:
        return "-"
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(created))
    except (OverflowError, OSError, ValueError):
        return "-"


def _range(samples: list[float], show: Callable[[float], str]) -> str:
    """The span a sparkline is scaled to, e.g. "0.0%–2.3% over 12 polls"; "" until it draws a line."""
    if len(samples) < 2:
        return ""
    return f"{show(min(0.0, *samples))}–{show(max(samples))} over {len(samples)} polls"
