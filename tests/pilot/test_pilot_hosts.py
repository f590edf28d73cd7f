"""The config you can save: hosts added and removed in the console, the Hosts tree of groups,
and the Domains columns and sort remembered in the config file."""

from __future__ import annotations

import asyncio
import threading

from support.app import settle
from support.pilot import visible_names

from virttui.config import Config, load_config, save_config
from virttui.console.app import VirtTUI
from virttui.drivers.model import ConnectionState, DomainState
from virttui.drivers.testdriver import TestDriver
from virttui.format import human_kib
from virttui.screens.columns import ColumnsScreen
from virttui.screens.confirm import ConfirmScreen
from virttui.screens.prompt import PromptScreen
from virttui.widgets.panes import STATE_ORDER, DomainsTable, HostsTable, group_key


def config_for(tmp_path, demo, **groups_of_host_index) -> Config:
    """A config file listing the demo's hosts, with groups by host index ("1": "rack-a")."""
    uris = tuple(driver.uri for driver in demo.drivers)
    groups = tuple((uris[int(index)], group) for index, group in groups_of_host_index.items())
    config = Config(hosts=uris, path=str(tmp_path / "config.toml"), groups=groups)
    save_config(config)
    return load_config(config.path)


def app_with(demo, config: Config | None) -> VirtTUI:
    return VirtTUI(demo.drivers, autopoll=False, config=config)


def host_keys(app) -> list[str]:
    table = app.screen.query_one(HostsTable)
    return [table.coordinate_to_cell_key((i, 0)).row_key.value for i in range(table.row_count)]


def host_labels(app) -> list[str]:
    table = app.screen.query_one(HostsTable)
    return [table.get_row_at(i)[0].text for i in range(table.row_count)]


async def put_hosts_cursor(pilot, key: str) -> None:
    table = pilot.app.screen.query_one(HostsTable)
    table.focus()
    table.follow_key = True
    table.move_to_key(key)
    await pilot.pause()


async def test_plus_adds_a_host_that_is_polled_shown_and_saved(demo, tmp_path, lease_dir):
    config = config_for(tmp_path, demo)
    app = app_with(demo, config)
    new_uri = f"test:///default?lease_dir={lease_dir}&host_id=9"
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("plus")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        await pilot.press(*new_uri, "tab", *"lab", "enter")
        await settle(pilot)
        assert not isinstance(app.screen, PromptScreen)
        assert app.fleet.host(new_uri).state is ConnectionState.CONNECTED
        assert app.scheduler.has(new_uri)
        assert "lab" in host_labels(app)[-2] and host_keys(app)[-1] == new_uri  # its own branch
        names = visible_names(app)
        assert len(names) == 25 + 9  # the demo's 25 and test:///default's hv1.xml again
        saved = load_config(config.path)
    assert saved.hosts == (*config.hosts, new_uri) and saved.group_of(new_uri) == "lab"


async def test_add_refuses_a_bad_uri_and_a_host_already_there(demo, tmp_path):
    config = config_for(tmp_path, demo)
    app = app_with(demo, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("plus")
        await pilot.pause()
        await pilot.press(*"qemu+bogus://x/system", "enter", "enter")
        await pilot.pause()
        assert isinstance(app.screen, PromptScreen)
        error = str(app.screen.query_one("#prompt-error").render())
        assert "libvirt URI" in error and "bogus" in error
        uri_box = app.screen.query_one("#field-uri")
        uri_box.value = demo.drivers[0].uri
        await pilot.press("enter", "enter")
        await pilot.pause()
        assert "already in the console" in str(app.screen.query_one("#prompt-error").render())
        for parses_but_cannot_be_opened, why in [("test://host/x", "take no host"), ("test:///default?host_id=0", "host_id"),
                                                 ("test:///default?host_id=٣", "host_id"), ("qemu+ssh:///system", "needs a host")]:
            uri_box.value = parses_but_cannot_be_opened  # refused in the dialog, not in a toast after it closed
            await pilot.press("enter", "enter")
            await pilot.pause()
            assert isinstance(app.screen, PromptScreen)
            assert why in str(app.screen.query_one("#prompt-error").render())
        uri_box.value = "qemu:///system"
        app.screen.query_one("#field-group").value = "rack\x7f-a"  # pasted with a control character
        app.screen.query_one("#field-uri").focus()
        await pilot.press("enter", "enter")
        await pilot.pause()
        assert "printable" in str(app.screen.query_one("#prompt-error").render())
        await pilot.press("escape")
        await settle(pilot)
        assert app.fleet.uris == [driver.uri for driver in demo.drivers]
    assert load_config(config.path) == config  # nothing written


async def test_minus_removes_the_host_after_a_confirmation_and_saves(demo, tmp_path):
    config = config_for(tmp_path, demo)
    app = app_with(demo, config)
    gone = demo.drivers[1]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await put_hosts_cursor(pilot, gone.uri)
        await pilot.press("minus")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")  # no: nothing changes
        await settle(pilot)
        assert app.scheduler.has(gone.uri)
        await pilot.press("minus")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert not app.scheduler.has(gone.uri) and gone.uri not in app.fleet.uris
        assert gone.uri not in host_keys(app)
        assert len(visible_names(app)) == 25 - 8  # hv2's eight domains left the Domains pane
        assert not any("under the cursor is gone" in n.message for n in app._notifications)  # noqa: SLF001
        app.scheduler.poll_all()  # the remaining hosts go on polling
        await settle(pilot)
    assert gone.uri not in load_config(config.path).hosts
    assert len(load_config(config.path).hosts) == 2


async def test_hosts_named_on_the_command_line_are_never_written_to_the_config(demo, tmp_path, lease_dir):
    """-c hosts override the file for one run: adding a host saves the file's own list plus it."""
    path = tmp_path / "config.toml"
    save_config(Config(hosts=("qemu+ssh://root@hv9/system",), path=str(path)))
    app = app_with(demo, load_config(str(path)))  # the demo's hosts stand for -c hosts
    added = f"test:///default?lease_dir={lease_dir}"
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.roster.add(added)
        await settle(pilot)
        app.roster.remove(demo.drivers[0].uri)  # a -c host: gone from the run, the file untouched by it
        await settle(pilot)
    assert load_config(str(path)).hosts == ("qemu+ssh://root@hv9/system", added)


async def test_without_a_config_hosts_change_for_the_run_only(demo):
    app = app_with(demo, None)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        app.roster.remove(demo.drivers[2].uri)
        await settle(pilot)
        assert app.fleet.uris == [d.uri for d in demo.drivers[:2]]


class BlockingDriver(TestDriver):
    """A host whose next poll waits until the test lets it go, and which counts closes."""

    polls_in_process = False  # it stands for a slow remote host: polled on workers like one

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.closed = 0
        self.block = False

    def poll(self):
        if self.block:
            self.entered.set()
            self.release.wait(10)
        return super().poll()

    def close(self) -> None:
        self.closed += 1
        super().close()


async def test_removing_a_host_mid_poll_closes_it_after_the_poll_and_drops_its_result(demo, lease_dir):
    source = demo.drivers[0]
    slow = BlockingDriver("test:///slow", source.node_path, lease_dir=str(lease_dir))
    app = VirtTUI([*demo.drivers[1:], slow], autopoll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        slow.block = True
        app.scheduler.poll_now(slow.uri)
        assert await asyncio.to_thread(slow.entered.wait, 5)  # the event loop must run to start it
        app.roster.remove(slow.uri)
        await pilot.pause()
        assert slow.closed == 0  # not under the poll's feet
        slow.release.set()
        await settle(pilot)
        assert slow.closed == 1  # the poll thread closed it as it ended
        assert slow.uri not in app.fleet.uris  # its late result did not bring it back
        assert slow.uri not in host_keys(app)


async def test_groups_form_a_tree_that_folds_and_scopes_the_domains(demo, tmp_path):
    config = config_for(tmp_path, demo, **{"1": "rack-a", "2": "rack-a"})
    app = app_with(demo, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        labels = host_labels(app)
        assert labels == ["★ all", "hv1", "▾ rack-a", "├ hv2", "└ hv3"]
        await put_hosts_cursor(pilot, group_key("rack-a"))
        assert len(visible_names(app)) == 16  # hv2's 8 and hv3's 8
        assert "group rack-a" in app.screen.query_one(DomainsTable).border_title
        await pilot.press("enter")  # fold
        await pilot.pause()
        assert host_labels(app) == ["★ all", "hv1", "▸ rack-a"]
        assert len(visible_names(app)) == 16  # still the group's scope
        await pilot.press("enter")  # unfold
        await pilot.pause()
        assert host_labels(app)[-2:] == ["├ hv2", "└ hv3"]
        await pilot.press("plus")  # a host added from a group's row joins that group
        await pilot.pause()
        assert app.screen.query_one("#field-group").value == "rack-a"


async def test_columns_dialog_hides_columns_and_the_choice_is_remembered(demo, tmp_path):
    config = config_for(tmp_path, demo)
    app = app_with(demo, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("C")
        await pilot.pause()
        assert isinstance(app.screen, ColumnsScreen)
        # Name cannot be unticked, so the cursor starts on Host; untick it and UUID
        await pilot.press("space")  # Host
        await pilot.press("down", "down", "down", "down", "down", "space")  # UUID
        await pilot.press("enter")
        await settle(pilot)
        table = app.screen.query_one(DomainsTable)
        assert table.shown_columns == ("name", "state", "vcpus", "mem", "cpu")
        assert table.sort_column == "name"  # it sorted by host, which went
        assert table.row_count == 25 and len(table.get_row_at(0)) == 5
        await pilot.press("o")  # name -> state
        await pilot.pause()
        assert table.sort_column == "state"
    saved = load_config(config.path)
    assert saved.domain_columns == ("name", "state", "vcpus", "mem", "cpu") and saved.domain_sort == "state"

    again = app_with(demo, saved)
    async with again.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = again.screen.query_one(DomainsTable)
        assert table.shown_columns == saved.domain_columns and table.sort_column == "state"
        states = [table.get_row_at(i)[1].text for i in range(table.row_count)]
        order = [STATE_ORDER[DomainState(text)] for text in states]
        assert order == sorted(order) and len(set(order)) > 2  # sorted by state, as remembered


async def test_columns_dialog_escape_changes_nothing(demo, tmp_path):
    config = config_for(tmp_path, demo)
    app = app_with(demo, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("C", "space", "escape")
        await settle(pilot)
        assert app.screen.query_one(DomainsTable).shown_columns == tuple(k for k, _, _ in DomainsTable.COLUMNS)
    assert load_config(config.path) == config


async def test_sort_key_is_remembered(demo, tmp_path):
    config = config_for(tmp_path, demo)
    app = app_with(demo, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("o", "o", "o")  # host -> name -> state -> cpu
        await pilot.pause()
    assert load_config(config.path).domain_sort == "cpu"
    again = app_with(demo, load_config(config.path))
    async with again.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = again.screen.query_one(DomainsTable)
        assert (table.sort_column, table.sort_reverse) == ("cpu", True)


async def test_a_config_that_cannot_be_written_is_one_line_and_the_host_stays(demo, tmp_path, lease_dir):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    config = Config(hosts=tuple(d.uri for d in demo.drivers), path=str(blocker / "config.toml"))
    app = app_with(demo, config)
    added = f"test:///default?lease_dir={lease_dir}"
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        assert app.roster.add(added)
        await settle(pilot)
        messages = [n.message for n in app._notifications]  # noqa: SLF001
        assert any(m.startswith("not saved: ") and "\n" not in m for m in messages)
        assert app.fleet.host(added).state is ConnectionState.CONNECTED  # it is in this run all the same


async def test_an_action_of_a_removed_host_ends_silently_even_when_the_uri_is_added_again(tmp_path, monkeypatch):
    """Its result belongs to a host that is gone: it must neither end the new host's action on the same
    domain (its pending mark) nor report a failure on it."""
    import asyncio
    import threading

    from virttui.drivers.base import Action
    from virttui.drivers.errors import DriverError
    from virttui.drivers.model import DomainState
    from virttui.drivers.registry import open_driver

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    lease_dir = tmp_path / "leases"
    lease_dir.mkdir()
    uri = f"test:///default?lease_dir={lease_dir}"
    old = open_driver(uri)
    app = VirtTUI([old], autopoll=False)
    app.actions.confirm_overrides = {"suspend": False}  # the dialog is not what this test is about
    entered, release = threading.Event(), threading.Event()

    def slow_failure(uuid, action):  # noqa: ANN001, ANN202
        entered.set()
        release.wait(10)
        raise DriverError("the old connection timed out")

    old.perform = slow_failure
    closed = threading.Event()
    close = old.close

    def close_and_tell() -> None:
        try:
            close()
        finally:
            closed.set()

    old.close = close_and_tell
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        dom = next(d for d in app.fleet.snapshot(uri).domains if d.state is DomainState.RUNNING)
        app.actions.request(uri, dom, Action.SUSPEND)
        assert await asyncio.to_thread(entered.wait, 5)
        app.roster.remove(uri)
        # the old connection closes on a worker; until it has, it holds the guests' disk leases, and
        # the new one would find them taken and leave its guests shut off
        assert await asyncio.to_thread(closed.wait, 5)
        assert app.roster.add(uri)
        new = app.scheduler.driver(uri)
        new_entered, new_release = threading.Event(), threading.Event()
        perform = new.perform

        def slow_success(uuid, action):  # noqa: ANN001, ANN202
            new_entered.set()
            new_release.wait(10)
            return perform(uuid, action)

        new.perform = slow_success
        for _ in range(50):
            await pilot.pause()
            if app.fleet.domain(uri, dom.uuid) is not None:
                break
        app.actions.request(uri, app.fleet.domain(uri, dom.uuid), Action.SUSPEND)
        assert await asyncio.to_thread(new_entered.wait, 5)
        release.set()  # the removed host's action ends now, failed
        for _ in range(20):
            await pilot.pause()
        assert (uri, dom.uuid) in app.actions.pending  # the new host's action is still under way
        assert not any("failed" in n.message for n in app._notifications)  # noqa: SLF001
        new_release.set()
        await settle(pilot)
        assert app.fleet.domain(uri, dom.uuid).state is DomainState.PAUSED


async def test_O_inverts_the_sort_and_the_inversion_is_remembered(demo, tmp_path):
    config = config_for(tmp_path, demo)
    app = app_with(demo, config)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("o", "o", "o", "O")  # by CPU, then smallest first
        await pilot.pause()
        table = app.screen.query_one(DomainsTable)
        assert (table.sort_column, table.sort_reverse) == ("cpu", False)
        assert "sort CPU% ▲" in str(table.border_title)
    assert load_config(config.path).domain_sort == "-cpu"
    again = app_with(demo, load_config(config.path))
    async with again.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        table = again.screen.query_one(DomainsTable)
        assert (table.sort_column, table.sort_reverse) == ("cpu", False)
        await pilot.press("C")  # choosing columns keeps the inversion
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
    assert load_config(config.path).domain_sort == "-cpu"
    third = app_with(demo, load_config(config.path))
    async with third.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("O")  # back to the usual way: remembered without the "-"
        await pilot.pause()
    assert load_config(config.path).domain_sort == "cpu"


async def test_ctrl_r_polls_every_host_now(demo):
    polled = []
    for driver in demo.drivers:
        real = driver.poll
        driver.poll = lambda real=real, uri=driver.uri: polled.append(uri) or real()
    app = app_with(demo, None)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        polled.clear()
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert sorted(polled) == sorted(d.uri for d in demo.drivers)


async def test_a_chosen_host_shows_what_its_running_guests_take_of_it(demo):
    """Where a new guest still fits: running vCPUs and memory against the host's CPUs and memory."""
    app = app_with(demo, None)
    hv1 = demo.drivers[0]
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        running = [d for d in hv1.poll().domains if d.state.is_active]
        vcpus, memory = sum(d.vcpus for d in running), sum(d.memory_kib for d in running)
        app.screen.query_one(HostsTable).move_to_key(hv1.uri)
        await settle(pilot)
        title = str(app.screen.query_one(DomainsTable).border_title)
        assert title.endswith(f" · in use {vcpus}/32 vCPU, {human_kib(memory)}/128.0 GiB")


async def test_a_host_whose_uri_has_a_password_keeps_its_group_is_shown_masked_and_can_be_removed(demo, tmp_path):
    """Refused (no passwords in URIs), it stays a host in error under its own URI: the config names
    it so. Only what is shown is masked."""
    from virttui.drivers.registry import open_driver_or_placeholder

    secret = "qemu+ssh://bob:s3cret@/system"  # no host part: the label falls back to the URI
    config = Config(hosts=(*[d.uri for d in demo.drivers], secret), path=str(tmp_path / "config.toml"),
                    groups=((secret, "rack-z"),))
    save_config(config)
    config = load_config(config.path)
    app = VirtTUI([*demo.drivers, open_driver_or_placeholder(secret)], autopoll=False, config=config)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        assert app.roster.group_of(secret) == "rack-z"
        assert app.fleet.host(secret).label == "qemu+ssh://bob:***@/system"
        assert "s3cret" not in "".join(str(cell) for row in app.screen.query_one(HostsTable).rows
                                       for cell in app.screen.query_one(HostsTable).get_row(row))
        app.roster.remove(secret)
        await settle(pilot)
    assert secret not in load_config(config.path).hosts
