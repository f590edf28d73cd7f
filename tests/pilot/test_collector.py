"""Full collections: on their timer, but not in the middle of the operator's typing."""

from __future__ import annotations

import gc

import pytest

from virttui.runtime.collector import COLLECTION_DEFER_MAX_S, FULL_COLLECTION_EVERY_S, TYPING_PAUSE_S, CycleCollector


class FakeApp:
    def __init__(self) -> None:
        self.timers: list[float] = []

    def set_timer(self, delay: float, callback) -> None:  # noqa: ANN001
        self.timers.append(delay)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def collector_gc(monkeypatch):
    """gc.collect counted, not run; the process's collector settings restored afterwards."""
    runs: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *a: runs.append(1) or 0)
    before = (gc.isenabled(), gc.get_threshold())
    yield runs
    gc.unfreeze()
    gc.set_threshold(*before[1])
    if before[0]:
        gc.enable()


def started(collector: CycleCollector, runs: list[int]) -> CycleCollector:
    collector.start()
    runs.clear()  # start's own collection
    return collector


def test_a_due_collection_waits_for_a_pause_in_the_typing_but_not_for_ever(collector_gc):
    runs = collector_gc
    app, clock = FakeApp(), Clock()
    collector = started(CycleCollector(app, clock=clock), runs)

    collector.collect()  # nobody typing: collects, and the next one is a full interval away
    assert runs == [1] and app.timers[-1] == FULL_COLLECTION_EVERY_S

    collector.key_pressed()
    clock.now += 0.2
    collector.collect()  # due while typing: waits a moment
    assert runs == [1] and app.timers[-1] < TYPING_PAUSE_S

    clock.now += TYPING_PAUSE_S  # the pause came
    collector.collect()
    assert runs == [1, 1] and app.timers[-1] == FULL_COLLECTION_EVERY_S

    # someone typing without a pause for longer than the cap: collected anyway
    waited = 0.0
    while len(runs) == 2:
        collector.key_pressed()
        clock.now += 0.5
        waited += 0.5
        collector.collect()
    assert COLLECTION_DEFER_MAX_S <= waited <= COLLECTION_DEFER_MAX_S + 1


async def test_the_app_tells_the_collector_of_keys(demo):
    from support.app import make_app, settle

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.collector.last_key == float("-inf")
        await pilot.press("down")
        assert app.collector.last_key > 0


def test_a_due_collection_waits_while_poll_results_are_landing_but_not_for_ever(collector_gc):
    runs = collector_gc
    app, clock = FakeApp(), Clock()
    polls_landing = [True]
    collector = started(CycleCollector(app, clock=clock, busy=lambda: polls_landing[0]), runs)

    collector.collect()
    assert runs == [] and app.timers[-1] < TYPING_PAUSE_S
    polls_landing[0] = False
    clock.now += 0.5
    collector.collect()
    assert runs == [1] and app.timers[-1] == FULL_COLLECTION_EVERY_S

    polls_landing[0] = True  # a fleet that is never quiet still gets its collections
    waited = 0.0
    while len(runs) == 1:
        clock.now += 0.5
        waited += 0.5
        collector.collect()
    assert COLLECTION_DEFER_MAX_S <= waited <= COLLECTION_DEFER_MAX_S + 1


def test_once_started_only_the_timer_collects_and_stopping_gives_the_settings_back(collector_gc):
    """Automatic young-generation collections cost 10-40 ms each at 2000 domains and freed almost
    nothing: after start the automatic collector is off; stop restores what the process had."""
    gc.enable()
    gc.set_threshold(700, 10, 10)
    collector = started(CycleCollector(FakeApp()), collector_gc)
    assert not gc.isenabled()
    assert gc.get_freeze_count() > 0
    collector.stop()
    assert gc.isenabled() and gc.get_threshold() == (700, 10, 10)
    assert gc.get_freeze_count() == 0
    collector.collect()  # a timer left over after stop does nothing
    assert collector_gc == []


async def test_the_app_gives_the_collector_back_when_it_exits(demo):
    from support.app import make_app, settle

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.collector.start()  # what the app's 1 s timer does
        assert not gc.isenabled()
    assert gc.isenabled()
