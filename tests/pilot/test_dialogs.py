"""Every dialog as the operator expects it: y or Enter presses the default button, n or Esc cancels (typed
into a text field instead), a field error keeps the dialog open, text wraps, [x] / [ ] checkboxes, buttons
that follow the dialog's state, and everything on an 80x24 screen without a sideways scroll."""

from __future__ import annotations

import os

from support.app import make_app, settle
from support.pilot import host_of, open_detail, select
from textual.containers import Horizontal
from textual.widget import Widget
from textual.widgets import Button, DataTable, Input, Label

from virttui.drivers.model import DomainState
from virttui.screens.cleanup import CleanupScreen
from virttui.screens.columns import ColumnsScreen
from virttui.screens.confirm import ConfirmScreen, TrustScreen
from virttui.screens.detail import DomainDetailScreen
from virttui.screens.prompt import PromptScreen
from virttui.widgets.checkbox import TickBox


def text_of(widget: Widget) -> str:
    return str(widget.render())


def button_labels(screen) -> list[str]:
    return [str(button.label) for button in screen.query(Button) if button.display]


def domain_names(demo) -> set[str]:
    return {dom.name for driver in demo.drivers for dom in driver.poll().domains}


def dialog_of(screen) -> Widget:
    return screen.query_one("#cleanup" if isinstance(screen, CleanupScreen) else "#dialog")


def assert_fits(screen, width: int, height: int) -> None:
    """On the screen, nothing wider than the dialog, no sideways scroll; taller content scrolls down."""
    dialog = dialog_of(screen)
    region = dialog.region
    assert region.x >= 0 and region.right <= width and region.y >= 0 and region.bottom <= height
    assert dialog.max_scroll_x == 0
    inner = dialog.content_size.width
    for label in dialog.query(Label):
        assert label.outer_size.width <= inner, f"{text_of(label)!r} is cut at the dialog's border"
    for table in dialog.query(DataTable):
        assert table.max_scroll_x == 0, "the table scrolls sideways"
    for row in dialog.query(Horizontal):
        assert sum(child.outer_size.width for child in row.children if child.display) <= row.content_size.width
    if dialog.virtual_size.height > dialog.content_size.height:
        assert dialog.allow_vertical_scroll  # what does not fit scrolls into view


async def test_a_stray_enter_cancels_a_confirmation_and_refuses_a_host_key(app, demo):
    """A confirmation opens on Cancel: Enter typed for another window must not force off a guest;
    y, or Tab to the action and Enter, confirms."""
    import paramiko

    from virttui.drivers.sshhostkeys import UnknownHostKey

    hv2 = demo.drivers[1]
    pending = UnknownHostKey("hv2", paramiko.ECDSAKey.generate(), "/nonexistent/known_hosts")
    trusted: list[object] = []
    hv2.pending_host_key = lambda: pending
    hv2.trust_host_key = trusted.append
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "web-01")
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen) and app.screen.focused.id == "no"
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, ConfirmScreen)
        assert host_of(demo, "web-01")[1].state is DomainState.RUNNING
        await pilot.press("f")
        await pilot.pause()
        await pilot.press("shift+tab", "enter")  # to the Force off button, then Enter
        await settle(pilot)
        assert host_of(demo, "web-01")[1].state is DomainState.SHUT_OFF

        app.host_keys.check(hv2.uri)  # the trust dialog too: Refuse
        await settle(pilot)
        assert isinstance(app.screen, TrustScreen)
        await pilot.press("enter")
        await settle(pilot)
        assert trusted == [] and not isinstance(app.screen, TrustScreen)


async def test_n_closes_the_cleanup_dialog_as_it_closes_every_other(app, demo, lease_dir):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        before = set(os.listdir(lease_dir))
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, CleanupScreen)
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(app.screen, CleanupScreen)
        assert set(os.listdir(lease_dir)) == before


async def test_cleanup_buttons_follow_its_state(app, demo, lease_dir):
    """Remove and Cancel while there is something to remove; Close alone once it ran (y then does nothing
    more) and when there is nothing to remove; Enter presses the first button."""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        screen = app.screen
        assert button_labels(screen) == ["Remove 2 files (y)", "Cancel (n)"]
        await pilot.press("enter")  # the default: Remove
        await settle(pilot)
        assert screen.done and screen.removed == 2
        assert button_labels(screen) == ["Close (Esc)"]
        await pilot.press("y")
        await settle(pilot)
        assert app.screen is screen and screen.removed == 2
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, CleanupScreen)

        await pilot.press("x")  # again: nothing left to remove
        await pilot.pause()
        assert isinstance(app.screen, CleanupScreen) and not app.screen.candidates
        assert button_labels(app.screen) == ["Close (Esc)"]
        await pilot.press("y")
        await pilot.pause()
        assert isinstance(app.screen, CleanupScreen)
        await pilot.press("enter")
        await settle(pilot)
        assert not isinstance(app.screen, CleanupScreen)


async def test_enter_in_the_snapshot_name_field_creates_the_snapshot(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver, dom = host_of(demo, "web-01")
        await open_detail(pilot, demo, "web-01")
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*"before-upgrade", "enter")
        await settle(pilot)
        assert isinstance(app.screen, DomainDetailScreen)
        assert [s.name for s in driver.snapshots(dom.uuid)] == ["before-upgrade"]


async def test_a_typo_in_the_undefine_name_keeps_the_dialog_open_saying_why(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await select(pilot, demo, "build-runner")
        await pilot.press("U")
        await pilot.pause()
        await pilot.press(*"buidl-runner", "enter")
        await settle(pilot)
        assert isinstance(app.screen, PromptScreen)
        assert text_of(app.screen.query_one("#prompt-error")) == "type build-runner exactly to confirm"
        assert "build-runner" in domain_names(demo)
        field = app.screen.query_one("#field-confirm", Input)
        assert app.screen.focused is field and field.value == "buidl-runner"  # there to be fixed
        field.value = ""
        await pilot.press(*"build-runner", "enter")
        await settle(pilot)
        assert not isinstance(app.screen, PromptScreen)
        assert "build-runner" not in domain_names(demo)


async def test_the_undefine_flag_reads_x_or_blank_space_ticks_it_enter_on_it_submits(app, demo):
    asked: list[bool] = []

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        driver = host_of(demo, "build-runner")[0]
        undefine = driver.undefine

        def recording(uuid: str, *, remove_storage: bool = False) -> None:
            asked.append(remove_storage)
            undefine(uuid, remove_storage=remove_storage)

        driver.undefine = recording
        await select(pilot, demo, "build-runner")
        await pilot.press("U")
        await pilot.pause()
        flag = app.screen.query_one("#prompt-flag", TickBox)
        assert text_of(flag).startswith("[ ] Also delete its storage")
        await pilot.press(*"build-runner", "tab", "space")
        await pilot.pause()
        assert app.screen.focused is flag and flag.value
        assert text_of(flag).startswith("[x] Also delete its storage")
        await pilot.press("enter")  # on the flag: the form, not the box
        await settle(pilot)
        assert asked == [True]
        assert "build-runner" not in domain_names(demo)


async def test_the_columns_chooser_reads_x_or_blank_and_y_applies(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("C")
        await pilot.pause()
        assert isinstance(app.screen, ColumnsScreen)
        boxes = list(app.screen.query(TickBox))
        assert [text_of(box)[:3] for box in boxes] == ["[x]"] * len(boxes)
        await pilot.press("space")  # Host (Name cannot go: the focus starts past it)
        await pilot.pause()
        assert text_of(app.screen.query_one("#column-host"))[:3] == "[ ]"
        await pilot.press("y")
        await settle(pilot)
        assert not isinstance(app.screen, ColumnsScreen)
        assert "host" not in app.screen.query_one("#domains").shown_columns
        await pilot.press("C")
        await pilot.pause()
        await pilot.press("space", "n")  # n cancels: Host stays hidden
        await settle(pilot)
        assert "host" not in app.screen.query_one("#domains").shown_columns


async def test_the_memory_stats_period_dialog_opens_on_the_value_last_set(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_detail(pilot, demo, "db-primary")
        await pilot.press("m")
        await pilot.pause()
        field = app.screen.query_one("#field-seconds", Input)
        assert field.value == "5"
        field.value = "12"
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DomainDetailScreen)
        await pilot.press("m")
        await pilot.pause()
        assert app.screen.query_one("#field-seconds", Input).value == "12"
        await pilot.press("escape")
        await settle(pilot)
        await pilot.app.pop_screen()  # another domain still starts from the default
        await settle(pilot)
        await open_detail(pilot, demo, "web-01")
        await pilot.press("m")
        await pilot.pause()
        assert app.screen.query_one("#field-seconds", Input).value == "5"


async def test_a_long_add_host_error_wraps_whole_and_is_never_markup(demo):
    bad = "[b]hv9[/b]"
    for size in ((80, 24), (120, 40)):
        app = make_app(demo)
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            await pilot.press("plus")
            await pilot.pause()
            await pilot.press(*bad, "enter", "enter")  # the URI, and the (empty) group
            await pilot.pause()
            assert isinstance(app.screen, PromptScreen)
            error = app.screen.query_one("#prompt-error", Label)
            text = text_of(error)
            assert text.startswith(f"libvirt URI: '{bad}': not a libvirt URI") and text.endswith(")")
            assert error.size.height >= 2 and error.outer_size.width <= dialog_of(app.screen).content_size.width
            assert_fits(app.screen, *size)


async def test_every_dialog_fits_80x24_and_scrolls_only_down(app, demo):
    """The running domain's undefine with an error is the tallest prompt; the cleanup table the widest."""
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)

        async def check(*keys: str) -> None:
            await pilot.press(*keys)
            await settle(pilot)
            assert_fits(app.screen, 80, 24)

        await check("x")  # the cleanup preview
        result = app.screen.query_one("#cleanup-files", DataTable)
        assert result.get_column_index("result") == 3 and result.max_scroll_x == 0
        await check("y")  # after the run
        await pilot.press("escape")
        await settle(pilot)
        await select(pilot, demo, "web-01")
        await check("f")  # a confirmation
        await check("n", "U", *"typo", "enter", "enter")  # running: the longest note, and an error
        await check("escape", "plus", *"hv9", "enter", "enter")
        await check("escape", "C")
        await pilot.press("escape")
        await open_detail(pilot, demo, "web-01")
        await check("m")
        await check("escape", "n")


async def test_the_cleanup_table_follows_a_resized_terminal(app, demo):
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("x")
        await pilot.pause()
        table = app.screen.query_one("#cleanup-files", DataTable)
        wide = table.columns[table.ordered_columns[0].key].width
        await pilot.resize_terminal(80, 24)
        await settle(pilot)
        assert_fits(app.screen, 80, 24)
        assert table.columns[table.ordered_columns[0].key].width < wide
        detail = text_of(app.screen.query_one("#cleanup-detail"))
        assert app.screen.candidates[0].name in detail  # the name cut in the table, whole below it


async def test_dialogs_dim_the_console_under_an_ansi_theme_too(app):
    """Textual's ModalScreen goes transparent under an ANSI theme; the dialogs' own rule keeps the dimmed
    console behind them, as it is under every other theme."""
    from virttui.screens.help import HelpScreen

    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for theme in ("textual-dark", "ansi-dark"):
            app.theme = theme
            await pilot.press("question_mark")
            await pilot.pause()
            assert isinstance(app.screen, HelpScreen)
            assert app.screen.styles.background.a > 0, theme  # not transparent
            await pilot.press("escape")
            await pilot.pause()
