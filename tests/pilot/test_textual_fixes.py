"""The fixes to the pinned Textual that keep a console open for days from growing (found by the soak)."""

from __future__ import annotations

import gc
import weakref

from support.app import make_app, settle
from support.pilot import select
from textual._styles_cache import StylesCache
from textual.color import Color
from textual.widgets._footer import FooterKey

from virttui.widgets import textual_fixes
from virttui.widgets.keysfooter import KeysFooter


def count_frames(monkeypatch) -> list[int]:  # noqa: ANN001 - pytest's MonkeyPatch
    """A list that gets an item for every frame a screen makes from now on."""
    from textual.screen import Screen

    frames: list[int] = []
    real = Screen._compositor_refresh
    monkeypatch.setattr(Screen, "_compositor_refresh", lambda self: frames.append(1) or real(self))
    return frames


def test_styles_cache_colours_do_not_keep_the_cache_alive():
    cache = StylesCache()
    inner, outer = cache.get_inner_outer(Color(10, 20, 30), Color(40, 50, 60, 0.5))
    assert (inner, outer) == textual_fixes._inner_outer(Color(10, 20, 30), Color(40, 50, 60, 0.5))
    assert outer.background == Color(10, 20, 30)
    gone = weakref.ref(cache)
    del cache
    gc.collect()
    assert gone() is None


async def test_footer_recomposes_do_not_pile_up_dead_keys(demo):
    """Each recompose of the Footer replaces its keys; its watcher list must hold only the keys
    it shows."""
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        footer = app.screen.query_one(KeysFooter)
        for _ in range(15):
            footer._composed = None  # forget what it shows: the next recompose is a full one
            footer.call_later(footer.recompose)  # in the footer's own message loop, as Textual does
            await pilot.pause()
            await pilot.pause()
        await settle(pilot)
        watchers = getattr(footer, "__watchers")["compact"]
        shown = len(footer.children)
        assert shown > 5
        assert len(watchers) <= 2 * shown  # the keys shown, plus at most the previous generation


async def test_keys_enabled_or_not_flip_in_place_without_a_recompose(demo):
    """Moving between a running and a shut-off domain changes which lifecycle keys are enabled:
    the Footer's keys stay the same widgets and only their -disabled class follows."""
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        footer = app.screen.query_one(KeysFooter)

        def keys() -> dict[str, object]:
            return {widget.key: widget for widget in footer.query(FooterKey)}

        await select(pilot, demo, "cache-01")  # running: shut down offered, start not
        await settle(pilot)
        before = keys()
        assert before["s"].has_class("-disabled") and not before["d"].has_class("-disabled")
        for _ in range(3):
            await select(pilot, demo, "build-runner")  # shut off: start offered, shut down not
            await settle(pilot)
            after = keys()
            assert not after["s"].has_class("-disabled") and after["d"].has_class("-disabled")
            assert after["s"]._disabled is False and after["d"]._disabled is True
            assert all(after[key] is before[key] for key in before)  # the same widgets: no recompose
            await select(pilot, demo, "cache-01")
            await settle(pilot)
            assert keys()["s"].has_class("-disabled") and keys()["s"] is before["s"]


async def test_a_cursor_move_flips_the_footer_keys_in_its_own_handling(demo):
    """Not on the Footer's later recompose: the keys change in the frame the cursor moves in."""
    from support.pilot import host_of

    from virttui.widgets.panes import DomainsTable, domain_key

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await select(pilot, demo, "cache-01")  # running
        await settle(pilot)
        footer = app.screen.query_one(KeysFooter)
        start = next(widget for widget in footer.query(FooterKey) if widget.key == "s")
        assert start.has_class("-disabled")
        driver, dom = host_of(demo, "build-runner")  # shut off
        table = app.screen.query_one(DomainsTable)
        table.move_to_key(domain_key(driver.uri, dom.uuid))
        app.screen._domain_changed()  # what the cursor's RowHighlighted runs; no await after it
        assert not start.has_class("-disabled")


async def test_tab_repaints_the_two_panes_not_the_whole_screen(demo, monkeypatch):
    from textual._compositor import Compositor

    from virttui.widgets.panes import DisksTable, DomainsTable

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.pause(0.2)
        full = []
        real = Compositor.render_full_update
        monkeypatch.setattr(Compositor, "render_full_update", lambda self, *a, **k: full.append(1) or real(self, *a, **k))
        assert app.focused is app.screen.query_one(DomainsTable)
        await pilot.press("tab")
        await pilot.pause(0.2)
        assert app.focused is app.screen.query_one(DisksTable)
        assert full == []
        assert app.screen.query_one(DisksTable).has_focus  # and its :focus border is what the snapshots show


async def test_tab_is_painted_in_one_frame(demo, monkeypatch):
    """The focus change restyles both panes' scrollbars; they used to ask for their repaint
    after the screen had painted the panes, and came in a second frame one tick later."""
    from virttui.widgets.panes import DisksTable, DomainsTable

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.pause(0.3)
        frames = count_frames(monkeypatch)
        assert app.focused is app.screen.query_one(DomainsTable)
        await pilot.press("tab")
        await pilot.pause(0.3)  # many screen ticks: a second frame would have come
        assert app.focused is app.screen.query_one(DisksTable)
        assert frames == [1]


async def test_an_update_for_a_widget_painted_since_is_ignored(demo):
    from textual import messages
    from textual.scrollbar import ScrollBar

    from virttui.widgets.panes import DomainsTable

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.pause(0.3)
        screen = app.screen
        table = screen.query_one(DomainsTable)
        assert not table._repaint_regions
        await screen._on_update(messages.Update(table))
        assert table not in screen._dirty_widgets  # nothing left to repaint: no frame for it
        table.refresh()
        await screen._on_update(messages.Update(table))
        assert table in screen._dirty_widgets  # a real repaint still gets its frame
        hidden = ScrollBar(vertical=False)
        await screen._on_update(messages.Update(hidden))
        assert hidden not in screen._dirty_widgets


async def test_ready_widgets_join_a_frame_only_right_after_a_key(demo, monkeypatch):
    """Poll results come in bursts: between keys, a widget's repaint waits for its own Update
    (a later result may change it again), right after a key it joins the frame being made."""
    from virttui.widgets.panes import HostsTable

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.pause(0.3)
        screen = app.screen
        hosts = screen.query_one(HostsTable)
        monkeypatch.setattr(textual_fixes, "_eager_until", 0.0)
        hosts.refresh()
        screen._compositor_refresh()
        assert hosts._repaint_regions  # left for its own frame
        textual_fixes.paint_eagerly_after_key()
        screen._compositor_refresh()
        assert not hosts._repaint_regions  # painted in this one


async def test_a_filter_keystroke_is_painted_in_one_frame(demo, monkeypatch):
    """Rows hidden by a keystroke change the Domains table's virtual size: DataTable measured it
    on an idle and asked for the layout on the next, after the screen had painted, so the pane
    was laid out and painted again one tick later (DiffTable._lay_out_now)."""
    from virttui.widgets.panes import DomainsTable

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = app.screen.query_one(DomainsTable)
        first = app.screen.selected_domain()[1].name  # kept by the filter: the keys on offer stay
        await pilot.press("slash", first[0])
        await pilot.pause(0.3)
        before = table.row_count
        frames = count_frames(monkeypatch)
        await pilot.press(first[1])  # narrows the table, the first row stays
        await pilot.pause(0.3)  # many screen ticks: a second frame would have come
        assert app.screen.selected_domain()[1].name == first
        assert 0 < table.row_count < before
        assert frames == [1]


async def test_page_keys_in_a_squeezed_columns_dialog_or_palette_do_not_crash(demo):
    """Textual's OptionList indexed its empty line table: KeyError, and the app died."""
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("C")
        await pilot.resize_terminal(1, 1)
        await pilot.press("pagedown", "pageup")
        await pilot.resize_terminal(120, 40)
        await pilot.press("escape")
        await pilot.resize_terminal(200, 3)
        await pilot.press("ctrl+p")
        await pilot.press("pageup", "pagedown")
        await pilot.resize_terminal(120, 40)
        await pilot.press("escape")
        await pilot.pause()
        assert pilot.app.is_running and pilot.app._exception is None
