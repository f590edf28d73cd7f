"""The poll scheduler keeps every host's loop going: long outages, failing drivers, removed hosts."""

from __future__ import annotations

from helpers import lost_connection, make_app, poll, settle

from virttui.drivers.model import ConnectionState
from virttui.polling import MAX_BACKOFF


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
