"""Full collections: on their timer, but not in the middle of the operator's typing."""

from __future__ import annotations

import gc

from virttui.collector import COLLECTION_DEFER_MAX_S, FULL_COLLECTION_EVERY_S, TYPING_PAUSE_S, CycleCollector


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


def test_a_due_collection_waits_for_a_pause_in_the_typing_but_not_for_ever(monkeypatch):
    runs = []
    monkeypatch.setattr(gc, "collect", lambda *a: runs.append(1) or 0)
    app, clock = FakeApp(), Clock()
    collector = CycleCollector(app, clock=clock)

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
    from helpers import make_app, settle

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.collector.last_key == float("-inf")
        await pilot.press("down")
        assert app.collector.last_key > 0
