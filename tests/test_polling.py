"""The poll scheduler keeps every host's loop going: long outages, failing drivers, removed hosts."""

from __future__ import annotations

import time

from helpers import lost_connection, make_app, poll, settle

from virttui.drivers.model import ConnectionState
from virttui.polling import MAX_BACKOFF, MIN_REPOLL_GAP


async def test_a_host_down_for_days_is_still_retried(demo):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        uri = demo.drivers[1].uri
        delays = [app.scheduler.finished(uri, ok=False) for _ in range(5000)]  # 2 ** 1024 overflowed
        assert delays[-1] == MAX_BACKOFF and all(0 < d <= MAX_BACKOFF for d in delays)


async def test_a_driver_failing_to_stop_its_events_still_reports_the_failure(demo, clock):
    app = make_app(demo)
    hv2 = demo.drivers[1]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)

        def unwatch_fails():  # noqa: ANN202
            raise RuntimeError("event thread already gone")

        hv2.poll, hv2.unwatch = lost_connection, unwatch_fails
        await poll(pilot, clock)
        host = app.fleet.host(hv2.uri)
        assert host.state is ConnectionState.ERROR and "connection reset" in host.last_error
        assert not app.scheduler.polling()  # the loop ended its poll: the next one can run


async def test_a_poll_asked_for_a_host_just_removed_is_ignored(demo):
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        uri = demo.drivers[2].uri
        app.roster.remove(uri)
        app.scheduler.poll_now(uri)  # an action's follow-up poll, arriving after the removal
        await settle(pilot)
        assert not app.scheduler.has(uri)


async def test_polls_asked_for_during_a_poll_become_one_poll_after_a_pause(demo):
    """An event storm on a slow host: the requests made while a poll runs (and during the pause after
    it) make one more poll, started a pause as long as the poll took after it ended, not back to back."""
    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        hv2 = demo.drivers[1]
        polls: list[list[float]] = []
        real_poll = hv2.poll

        def slow_poll():  # noqa: ANN202
            polls.append([time.monotonic()])
            time.sleep(0.2)
            try:
                return real_poll()
            finally:
                polls[-1].append(time.monotonic())

        async def until(condition) -> None:  # noqa: ANN001 - a regression fails here, it never hangs
            deadline = time.monotonic() + 20
            while not condition():
                assert time.monotonic() < deadline, "the scheduler never got there"
                await pilot.pause(0.01)

        hv2.poll = slow_poll
        app.scheduler.poll_now(hv2.uri)
        await until(lambda: polls)
        for _ in range(5):  # events arriving while the poll runs
            app.scheduler.poll_now(hv2.uri)
        await until(lambda: len(polls[0]) == 2 and not app.scheduler._loops[hv2.uri].running)  # noqa: SLF001
        for _ in range(5):  # and during the pause
            app.scheduler.poll_now(hv2.uri)
            await pilot.pause(0.01)
        await until(lambda: len(polls) >= 2 and len(polls[1]) == 2)
        await settle(pilot)
        assert polls[1][0] - polls[0][1] >= max(MIN_REPOLL_GAP, 0.2) - 0.02
        await pilot.pause(0.5)
        assert len(polls) == 2 and not app.scheduler.polling()
