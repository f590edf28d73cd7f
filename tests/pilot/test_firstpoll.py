"""The first poll of a host that is not embedded starts before the console imports Textual, and
the scheduler takes its outcome (snapshot or failure) as that host's first poll."""

from __future__ import annotations

import threading

from support.app import run_python, settle

from virttui.assets import asset
from virttui.console.app import VirtTUI
from virttui.drivers.errors import ConnectionFailed
from virttui.drivers.model import ConnectionState
from virttui.drivers.testdriver import TestDriver
from virttui.runtime.firstpoll import start_first_polls

NODE = str(asset("demo", "hv1.xml"))


class RemoteLikeDriver(TestDriver):
    """The embedded host, polled as a remote one is (on worker threads), recording where."""

    polls_in_process = False

    def __init__(self, uri: str, *, fail_connect: bool = False) -> None:
        super().__init__(uri, NODE)
        self.fail_connect = fail_connect
        self.connects: list[str] = []
        self.polls: list[str] = []

    def connect(self) -> None:
        self.connects.append(threading.current_thread().name)
        if self.fail_connect:
            raise ConnectionFailed(f"{self.uri}: no route to host")
        super().connect()

    def poll(self):  # noqa: ANN201
        self.polls.append(threading.current_thread().name)
        return super().poll()


async def test_the_first_poll_started_before_the_app_is_the_hosts_first_poll():
    driver = RemoteLikeDriver("test:///first-poll")
    first_polls = start_first_polls([driver])
    app = VirtTUI([driver], autopoll=False, first_polls=first_polls)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            host = app.fleet.host(driver.uri)
            assert host.state is ConnectionState.CONNECTED
            assert len(app.fleet.snapshot(driver.uri).domains) > 0
            assert driver.connects == ["first poll test:///first-poll"]  # connected once, before the app
            assert driver.polls == ["first poll test:///first-poll"]
            app.scheduler.poll_now(driver.uri)
            await settle(pilot)
            assert len(driver.connects) == 1 and len(driver.polls) == 2
            assert driver.polls[1] != driver.polls[0]  # later polls: the scheduler's own workers
    finally:
        driver.close()


async def test_a_first_poll_that_failed_is_the_hosts_first_failure_and_it_retries():
    driver = RemoteLikeDriver("test:///unreachable", fail_connect=True)
    app = VirtTUI([driver], autopoll=False, first_polls=start_first_polls([driver]))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        host = app.fleet.host(driver.uri)
        assert host.state is ConnectionState.ERROR and "no route to host" in host.last_error
        driver.fail_connect = False
        app.scheduler.poll_now(driver.uri)
        await settle(pilot)
        assert app.fleet.host(driver.uri).state is ConnectionState.CONNECTED
        assert len(driver.connects) == 2  # the retry connected again, on a worker
    driver.close()


def test_embedded_hosts_get_no_early_poll():
    """They are polled in the UI thread before the first frame (PollScheduler.start)."""
    embedded = TestDriver("test:///embedded", NODE)
    assert start_first_polls([embedded]) == {}


def test_the_console_starts_first_polls_before_it_imports_textual():
    code = (
        "import sys\n"
        "import virttui.runtime.firstpoll as firstpoll\n"
        "def started(drivers):\n"
        "    print('textual imported:', any(m.split('.')[0] == 'textual' for m in sys.modules))\n"
        "    print('hosts:', [d.uri for d in drivers])\n"
        "    raise SystemExit(0)\n"
        "firstpoll.start_first_polls = started\n"
        "from virttui.cli import main\n"
        "main(['-c', 'qemu:///system'])\n"
    )
    out = run_python(code)
    assert "textual imported: False" in out.stdout
    assert "hosts: ['qemu:///system']" in out.stdout


async def test_a_first_poll_over_before_the_console_started_is_in_its_first_frame():
    """Its outcome is applied on the UI thread as the scheduler starts, before the first frame, as an
    embedded host's poll is, not posted from a worker and painted a frame or two later."""
    driver = RemoteLikeDriver("test:///quick")
    first_polls = start_first_polls([driver])
    first_polls[driver.uri].outcome()  # over, as a local host's often is before Textual is imported
    app = VirtTUI([driver], autopoll=False, first_polls=first_polls)
    shown_as_it_started: list[int] = []
    start = app.scheduler.start

    def start_and_look() -> None:
        start()
        snapshot = app.fleet.snapshot(driver.uri)
        shown_as_it_started.append(len(snapshot.domains) if snapshot is not None else 0)

    app.scheduler.start = start_and_look
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert shown_as_it_started and shown_as_it_started[0] > 0
            assert driver.polls == ["first poll test:///quick"]
    finally:
        driver.close()


async def test_a_first_poll_that_failed_before_the_console_started_is_handled_off_the_ui_thread():
    """Its failure stops the host's event stream, which can wait seconds: a worker takes it, as before."""
    driver = RemoteLikeDriver("test:///down", fail_connect=True)
    first_polls = start_first_polls([driver])
    first_polls[driver.uri]._thread.join()  # over: connect failed  # noqa: SLF001
    app = VirtTUI([driver], autopoll=False, first_polls=first_polls)
    states_as_it_started: list[ConnectionState] = []
    start = app.scheduler.start

    def start_and_look() -> None:
        start()
        states_as_it_started.append(app.fleet.host(driver.uri).state)

    app.scheduler.start = start_and_look
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert states_as_it_started and states_as_it_started[0] is not ConnectionState.ERROR
        assert app.fleet.host(driver.uri).state is ConnectionState.ERROR  # reported, by the worker
    driver.close()
