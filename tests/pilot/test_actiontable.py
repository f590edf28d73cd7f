"""The action registry: one entry per action, and the keys, check_action, help, palette and runner follow it."""

from __future__ import annotations

import json

import pytest
from support.app import run_python, settle
from support.paths import DEMO_NODE
from textual.widgets._footer import FooterKey

from virttui import actiontable as registry
from virttui.console.app import VirtTUI
from virttui.drivers.base import STATE_AFTER, Action, valid_actions
from virttui.drivers.model import Domain, DomainState
from virttui.screens.confirm import ConfirmScreen
from virttui.screens.detail import DomainDetailScreen
from virttui.screens.help import HelpScreen, key_rows
from virttui.screens.lifecycle import LifecycleActions, action_bindings

# A new action as a maintainer adds it: this entry, and the driver method it names. Kept as source so
# the fresh interpreter of test_an_added_entry_is_reached_by_its_key makes the very same one.
EXTRA = '''
from virttui.drivers.testdriver import TestDriver
from virttui.actiontable import RUNNING, ActionSpec

RESET = ActionSpec("reset", "Reset", "e", "Reset", help="reset the domain: a hard reboot (asks first)",
                   palette=("Reset domain", "Hard-reset the selected domain (e)"), states=RUNNING,
                   pending="resetting", confirm="The guest is reset at once, as by its reset button.",
                   bulk=True, method="reset")


class ResettableDriver(TestDriver):
    """An embedded host with the new action's driver method."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.resets = []

    def reset(self, uuid):
        self.resets.append(uuid)
'''
_extra: dict = {}
exec(EXTRA, _extra)  # the test's own source, above
RESET = _extra["RESET"]
ResettableDriver = _extra["ResettableDriver"]

# What each state offers (persistent domain): the keys as they were before the registry.
OFFERED = {
    DomainState.RUNNING: "drfpcaU", DomainState.IDLE: "drfpcaU", DomainState.PAUSED: "fpcaU",
    DomainState.SHUT_OFF: "saU", DomainState.IN_SHUTDOWN: "fcaU", DomainState.CRASHED: "fcaU",
    DomainState.PMSUSPENDED: "fwcaU", DomainState.NOSTATE: "aU",
}


class OneDomain(LifecycleActions):
    """check_action with a given current domain, no screen needed."""

    def __init__(self, dom: Domain) -> None:
        self.dom = dom

    def current_domain(self) -> tuple[str, Domain]:
        return ("test:///one", self.dom)

    def host_driver(self, uri: str) -> None:
        return None


def a_domain(state: DomainState, *, persistent: bool = True) -> Domain:
    return Domain("6695eb01-f6a4-8304-79aa-97f2502e193f", "guest", state, 1, 1024, 1024, persistent=persistent)


@pytest.fixture
def with_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "ACTIONS", (*registry.ACTIONS, RESET))


def test_every_entry_is_well_formed():
    ids = [spec.id for spec in registry.ACTIONS]
    assert len(ids) == len(set(ids))
    for screen in registry.SCREENS:
        keys = [spec.key for spec in registry.keyed(screen)]
        assert len(keys) == len(set(keys)), f"a key bound twice on {screen}"
    for spec in registry.ACTIONS:
        assert all(registry.spec(name).method for name in spec.one_of)
        if spec.method:
            assert callable(getattr(ResettableDriver, spec.method, None)), spec.method
        if not spec.key:  # reached through another entry's key
            assert any(spec.id in other.one_of for other in registry.ACTIONS)
    with pytest.raises(ValueError):
        registry.ActionSpec("both", "Both", method="start", essentials="console")


def test_the_driver_layer_constants_are_the_registrys():
    for action in Action:
        spec = registry.spec(action)  # an Action finds its entry, as its value does
        assert spec is registry.spec(action.value) and action.label == spec.label
        assert STATE_AFTER.get(action) == spec.state_after
    for state in DomainState:
        assert {a.value for a in valid_actions(state)} == registry.valid_ids(state) & {a.value for a in Action}


@pytest.mark.parametrize("state", list(DomainState))
def test_check_action_follows_the_valid_states(state):
    for persistent in (True, False):
        screen = OneDomain(a_domain(state, persistent=persistent))
        offered = "".join(spec.key for spec in registry.keyed("main")
                          if screen.check_action("domain", (spec.id,)))
        assert offered == (OFFERED[state] if persistent else OFFERED[state].replace("a", "").replace("U", ""))
        assert all(screen.check_action("domain", (spec.id,)) in (True, None) for spec in registry.ACTIONS)


def test_one_key_for_pause_and_resume_runs_what_the_domains_can_take():
    pause = registry.spec("pause")
    chosen = {state: pause.choose([a_domain(state)]).id for state in DomainState}
    assert chosen[DomainState.RUNNING] == "suspend" and chosen[DomainState.PAUSED] == "resume"
    assert chosen[DomainState.SHUT_OFF] == "suspend"  # refused by the runner as "Pause: … is shut off"
    marked = [a_domain(DomainState.PAUSED), a_domain(DomainState.RUNNING)]
    assert pause.choose(marked).id == "suspend"  # any that can pause: pause those
    assert pause.choose([a_domain(DomainState.SHUT_OFF)] * 2).id == "resume"  # "Resume: none of the 2 …"


def test_every_entry_is_in_the_bindings_help_and_palette():
    rows = key_rows()
    for spec in registry.keyed():
        assert (spec.key, spec.help) in rows
        for screen in spec.screens:
            bound = [(b.key, b.action, b.description, b.show) for b in action_bindings(screen)]
            if spec.one_of:  # one binding per entry, labelled with it: p reads Pause or Resume
                for option in spec.one_of:
                    assert (spec.key, f"domain('{spec.id}', '{option}')", registry.spec(option).label,
                            spec.show) in bound
            else:
                assert (spec.key, f"domain('{spec.id}')", spec.footer, spec.show) in bound
            assert (spec.key, f"unavailable('{spec.id}')", "", False) in bound
    marks = next(what for key, what in rows if key.startswith("Space"))
    assert all(f" {spec.key} " in marks for spec in registry.keyed() if spec.bulk)
    assert [title for title, _, _ in registry.in_palette("main")] == [
        "Start domain", "Shut down domain", "Reboot domain", "Force off domain", "Pause or resume domain",
        "Wake domain", "Serial console", "Toggle autostart", "Undefine domain"]


def test_an_added_entry_is_bound_listed_and_checked_with_no_other_change(with_reset):
    bound = [(b.key, b.action, b.description) for b in action_bindings("main")]
    assert ("e", "domain('reset')", "Reset") in bound and ("e", "unavailable('reset')", "") in bound
    assert ("e", "reset the domain: a hard reboot (asks first)") in key_rows()
    assert "then s d r f p e act on all marked" in dict(key_rows())["Space  *"]
    assert ("Reset domain", "Hard-reset the selected domain (e)", "reset") in registry.in_palette("main")
    assert OneDomain(a_domain(DomainState.RUNNING)).check_action("domain", ("reset",)) is True
    assert OneDomain(a_domain(DomainState.PAUSED)).check_action("domain", ("reset",)) is None


async def test_the_screens_bind_and_list_every_entry(demo):
    app = VirtTUI(demo.drivers, poll_interval=2.0, autopoll=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        for screen_name in ("main", "detail"):
            if screen_name == "detail":
                await pilot.press("enter")
                await settle(pilot)
                assert isinstance(app.screen, DomainDetailScreen)
            active = app.screen.active_bindings
            footer_keys = {key.key for key in app.screen.query(FooterKey)}
            for spec in registry.keyed(screen_name):
                shown = f"domain('{spec.id}', '{spec.one_of[0]}')" if spec.one_of else f"domain('{spec.id}')"
                assert active[spec.key].binding.action == shown  # (build-runner is shut off: "p Pause", dimmed)
                assert (spec.key in footer_keys) == spec.show
        await pilot.press("escape")
        await settle(pilot)
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert all(title in titles for title, _, _ in registry.in_palette("main"))
        await pilot.press("question_mark")
        await settle(pilot)
        assert isinstance(app.screen, HelpScreen)
        table = app.screen.query_one("#help-keys")
        shown = [table.get_row_at(row)[0].text for row in range(table.row_count)]
        assert all(spec.key in shown for spec in registry.keyed())


async def test_an_added_entry_runs_from_the_palette_through_its_driver_method(with_reset, lease_dir):
    driver = ResettableDriver("test:///reset", str(DEMO_NODE), lease_dir=str(lease_dir))
    app = VirtTUI([driver], poll_interval=2.0, autopoll=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        screen = app.screen
        while screen.selected_domain()[1].state is not DomainState.RUNNING:
            await pilot.press("down")
        dom = screen.selected_domain()[1]
        command = next(c for c in app.get_system_commands(screen) if c.title == "Reset domain")
        command.callback()
        await settle(pilot)
        assert isinstance(app.screen, ConfirmScreen)  # its confirm words: asked first
        await pilot.press("y")
        await settle(pilot)
        assert driver.resets == [dom.uuid]
        assert not app.actions.pending


def test_an_added_entry_is_reached_by_its_key(lease_dir):
    """In a fresh interpreter the entry is in the table before the screens are made, as one written
    into registry.py is: its key is bound, shown in the Footer (dimmed where it can't apply) and runs."""
    code = EXTRA + f'''
import asyncio, json
from virttui import actiontable as registry
registry.ACTIONS = (*registry.ACTIONS, RESET)
from virttui.console.app import VirtTUI
from virttui.drivers.model import DomainState
from virttui.widgets.keysfooter import KeysFooter
from textual.widgets._footer import FooterKey

async def main():
    driver = ResettableDriver("test:///reset", {str(DEMO_NODE)!r}, lease_dir={str(lease_dir)!r})
    app = VirtTUI([driver], poll_interval=2.0, autopoll=False)
    seen = {{}}
    async with app.run_test(size=(160, 45)) as pilot:
        for _ in range(10):
            await app.workers.wait_for_complete()
            await pilot.pause()
        screen = app.screen
        def footer_e():
            return [not key.has_class("-disabled") for key in screen.query_one(KeysFooter).query(FooterKey)
                    if key.key == "e"]
        for state in (DomainState.SHUT_OFF, DomainState.RUNNING):
            await pilot.press("home")
            for _ in range(20):
                if screen.selected_domain()[1].state is state:
                    break
                await pilot.press("down")
            await pilot.pause()
            seen[state.value] = footer_e()
        await pilot.press("e")
        await pilot.pause()
        await pilot.press("y")
        for _ in range(10):
            await app.workers.wait_for_complete()
            await pilot.pause()
        seen["reset"] = driver.resets == [screen.selected_domain()[1].uuid]
    print(json.dumps(seen))

asyncio.run(main())
'''
    seen = json.loads(run_python(code).stdout.strip().splitlines()[-1])
    assert seen == {"shut off": [False], "running": [True], "reset": True}
