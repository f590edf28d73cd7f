"""The poll scheduler keeps every host's loop going: long outages, failing drivers, removed hosts."""

from __future__ import annotations

import time

from support.app import lost_connection, make_app, poll, settle

from virttui.drivers.model import ConnectionState
from virttui.runtime.polling import MAX_BACKOFF, MIN_REPOLL_GAP


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


class _Timer:
    def __init__(self) -> None:
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


class _SteppedApp:
    """Just what PollScheduler asks of the app, on a stepped clock: timers fire when the test moves the
    clock past them, a poll runs at once (it takes no time), its result is handled when the test says."""

    def __init__(self, clock) -> None:  # noqa: ANN001 - SteppedClock
        self.clock = clock
        self.timers: list[tuple[float, int, object, _Timer]] = []
        self.messages: list = []
        self.scheduler = None

    def set_timer(self, delay: float, callback) -> _Timer:  # noqa: ANN001
        timer = _Timer()
        self.timers.append((self.clock() + delay, len(self.timers), callback, timer))
        return timer

    def run_worker(self, work, **_kwargs) -> None:  # noqa: ANN001
        work()

    def post_message(self, message) -> None:  # noqa: ANN001
        self.messages.append(message)

    def handle_messages(self) -> None:
        from virttui.console.messages import HostPolled

        while self.messages:
            message = self.messages.pop(0)
            uri = message.snapshot.host.uri if isinstance(message, HostPolled) else message.host.uri
            if self.scheduler.owns(uri, message.seq):
                self.scheduler.finished(uri, ok=isinstance(message, HostPolled))

    def run_until(self, when: float) -> None:
        """Move the clock to `when`, firing every timer due by then at its own time."""
        while True:
            due = [entry for entry in self.timers if not entry[3].stopped and entry[0] <= when]
            if not due:
                break
            entry = min(due, key=lambda e: (e[0], e[1]))
            entry[3].stopped = True
            self.clock.now = max(self.clock.now, entry[0])
            entry[2]()
            self.handle_messages()
        self.clock.now = max(self.clock.now, when)


def _stepped_scheduler(demo, clock, interval: float = 2.0):  # noqa: ANN001, ANN202
    from virttui.runtime.polling import PollScheduler

    app = _SteppedApp(clock)
    driver = demo.drivers[0]
    starts: list[float] = []
    real_poll = driver.poll

    def counted_poll():  # noqa: ANN202
        starts.append(clock())
        return real_poll()

    driver.poll = counted_poll
    scheduler = PollScheduler(app, [driver], interval, monotonic=clock)
    app.scheduler = scheduler
    scheduler.poll_now(driver.uri)
    app.handle_messages()
    starts.clear()
    return app, scheduler, driver.uri, starts


def test_an_event_storm_polls_its_host_at_most_twice_an_interval(demo, clock):
    """A guest making its host send events without end (1000 in 10 s, a 2 s interval): event-driven polls
    stay half an interval apart (~10, plus the timed ones), and the last events still get their poll."""
    app, scheduler, uri, starts = _stepped_scheduler(demo, clock)
    begin = clock()
    events = [begin + i * 0.01 for i in range(1000)]
    for when in events:
        app.run_until(when)
        scheduler.poll_on_event(uri)
        app.handle_messages()
    app.run_until(events[-1] + 1.5)
    storm = [t for t in starts if t <= events[-1]]
    assert len(storm) <= 10 + 1 + 5, f"{len(storm)} polls during the storm"  # event-driven + timed
    assert any(events[-1] <= t <= events[-1] + 1.0 for t in starts)  # what came last was polled too
    assert all(b - a >= 1.0 - 1e-9 for a, b in zip(starts, starts[1:], strict=False))


def test_an_event_after_a_quiet_spell_is_polled_at_once(demo, clock):
    app, scheduler, uri, starts = _stepped_scheduler(demo, clock)
    for _ in range(50):  # a burst, then quiet
        scheduler.poll_on_event(uri)
        app.handle_messages()
        app.run_until(clock() + 0.01)
    app.run_until(clock() + 5.0)
    before = len(starts)
    app.run_until(clock() + 0.3)  # between timed polls
    now = clock()
    scheduler.poll_on_event(uri)
    app.handle_messages()
    assert len(starts) == before + 1 and starts[-1] == now  # no wait for an event after a quiet spell


async def test_the_console_coalesces_a_hosts_event_storm(demo):
    """Through the app: HostChanged messages arriving back to back make one poll now and one at the
    end of the gap, not a poll per event (before, each event polled after a 0.1 s pause)."""
    from virttui.console.messages import HostChanged

    app = make_app(demo)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        hv1 = demo.drivers[0]
        starts: list[float] = []
        real_poll = hv1.poll

        def counted_poll():  # noqa: ANN202
            starts.append(time.monotonic())
            return real_poll()

        hv1.poll = counted_poll
        begin = time.monotonic()
        while time.monotonic() - begin < 0.8:
            app.post_message(HostChanged(hv1.uri))
            await pilot.pause(0.02)
        await pilot.pause(0.6)
        await settle(pilot)
        assert 1 <= len(starts) <= 2, starts


def test_a_long_interval_holds_an_events_poll_back_at_most_max_event_gap(demo, clock):
    """A quiet fleet polled hourly: an event just after an event-driven poll is polled MAX_EVENT_GAP
    later, not half an hour later (a guest destroyed elsewhere stayed "running" on screen)."""
    from virttui.runtime.polling import MAX_EVENT_GAP

    app, scheduler, uri, starts = _stepped_scheduler(demo, clock, interval=3600.0)
    scheduler.poll_on_event(uri)  # the guest started elsewhere
    app.handle_messages()
    app.run_until(clock() + 0.5)
    scheduler.poll_on_event(uri)  # and destroyed half a second later
    app.handle_messages()
    app.run_until(clock() + MAX_EVENT_GAP + 0.1)
    assert len(starts) == 2 and starts[1] - starts[0] <= MAX_EVENT_GAP + 1e-9


def test_timed_polls_start_an_interval_apart_however_late_their_answers_are_handled(demo, clock):
    """A poll whose answer the UI handles late (a slow host, a busy UI thread at 20 hosts) does not
    push the next one back: the interval runs from start to start. It once ran from the handling,
    so a lease change took up to 2.6 s to show at a 2 s interval."""
    app, scheduler, uri, starts = _stepped_scheduler(demo, clock)
    real_handle = app.handle_messages

    def handled_late() -> None:
        if app.messages:
            clock.now += 0.7
        real_handle()

    app.handle_messages = handled_late
    app.run_until(clock() + 10.0)
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert len(gaps) >= 3 and all(abs(gap - 2.0) < 1e-6 for gap in gaps), gaps
