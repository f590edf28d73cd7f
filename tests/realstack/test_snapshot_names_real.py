"""Snapshot names a host reports never run a command, on real libvirt.

Interactive virsh reads its input through readline, even from a pipe: a carriage return ends a line
and DEL deletes the previous character. A snapshot named `s<CR>desc UUID --new-desc PWNED<CR>`
(libvirt accepts it) once ran that `desc` when the detail screen listed the snapshots.
"""

from __future__ import annotations

import time
import uuid as uuidlib

import pytest
from support.app import settle
from support.realhosts import select_domain

from virttui.console.app import VirtTUI
from virttui.drivers.registry import open_driver
from virttui.screens.confirm import ConfirmScreen
from virttui.screens.detail import DomainDetailScreen

pytestmark = pytest.mark.realstack


def _xml_text(text: str) -> str:
    """text for an XML element, every character that is not plain ASCII printable as a character reference."""
    plain = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
    return "".join(plain.get(ch, ch) if " " <= ch < "\x7f" else f"&#{ord(ch)};" for ch in text)


def hostile_names(victim: str, bystander: str) -> list[str]:
    return [
        f"s\rdesc {victim} --config --new-desc PWNED\r",
        f"t\rstart {bystander}\r",
        f"d\x7f\x7f\rdesc {bystander} --config --new-desc PWNED-DEL\r",
        f"x\x7f; desc {victim} --config --new-desc PWNED-DEL2",
        f"n\ndesc {victim} --config --new-desc PWNED-NL\n",
    ]


@pytest.fixture
def victims(realstack):
    host = realstack.hosts[0]
    tag = uuidlib.uuid4().hex[:6]
    names = (f"vttest-v{tag}", f"vttest-b{tag}")
    uuids = [host.define_guest(name) for name in names]
    created = []
    for snapshot in hostile_names(*uuids):
        xml = f"<domainsnapshot><name>{_xml_text(snapshot)}</name></domainsnapshot>"
        host.virsh("snapshot-create", uuids[0], "--xmlfile", "/dev/stdin", input=xml)
        created.append(snapshot)
    yield host, uuids, created
    for name in names:
        host.undefine_guest(name)


def _untouched(host, uuids: list[str]) -> None:  # noqa: ANN001
    for uuid in uuids:
        assert "PWNED" not in host.virsh("dumpxml", uuid)
        assert host.virsh("domstate", uuid).strip() == "shut off"
        assert host.virsh("desc", uuid).startswith("No description for domain")


@pytest.mark.parametrize("kind", ["local", "ssh"])
def test_hostile_snapshot_names_are_listed_escaped_and_never_acted_on(victims, kind):
    host, uuids, created = victims
    assert len(host.virsh("snapshot-list", uuids[0], "--name").strip("\n").split("\n")) >= len(created)
    driver = open_driver(host.local_uri if kind == "local" else host.ssh_uri)
    driver.connect()
    try:
        snaps = driver.snapshots(uuids[0])
        _untouched(host, uuids)
        assert snaps and not any(snap.usable for snap in snaps)
        listed = {snap.name for snap in snaps}
        assert {name for name in created if "\n" not in name} <= listed
        assert any(name.split("\n")[0] in listed or name.strip("\n") in listed for name in created if "\n" in name)
        for snap in snaps:  # the driver itself refuses, whatever the screen would do
            for act in (driver.revert_snapshot, driver.delete_snapshot):
                with pytest.raises(Exception, match="printable"):
                    act(uuids[0], snap.name)
        _untouched(host, uuids)
    finally:
        driver.close()


async def test_the_detail_screen_and_every_snapshot_key_leave_the_guests_untouched(victims):
    host, uuids, created = victims
    driver = open_driver(host.local_uri)  # the persistent interactive virsh, where readline reads the names
    app = VirtTUI([driver], poll_interval=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        deadline = time.monotonic() + 30
        while app.fleet.domain(driver.uri, uuids[0]) is None and time.monotonic() < deadline:
            await pilot.pause(0.1)
        await select_domain(pilot, driver.uri, uuids[0])
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DomainDetailScreen)
        table = screen.query_one("#snapshots")
        while table.row_count == 0 and time.monotonic() < deadline:
            await pilot.pause(0.1)
        assert table.row_count >= len(created) - 1
        shown = [str(table.get_row_at(row)[0]) for row in range(table.row_count)]
        assert all("unusable name" in cell for cell in shown)
        assert any("\\r" in cell for cell in shown) and any("\\x7f" in cell for cell in shown)
        assert not any("\r" in cell or "\x7f" in cell for cell in shown)  # escaped, never raw
        table.focus()
        for row in range(table.row_count):
            table.move_cursor(row=row)
            for key in ("v", "delete"):
                await pilot.press(key)
                await settle(pilot)
                if isinstance(app.screen, ConfirmScreen):
                    await pilot.press("y")
                    await settle(pilot)
                assert app.screen is screen, "a snapshot action with an unusable name opened a dialog"
        await pilot.pause(1.0)
    _untouched(host, uuids)
    assert len(host.virsh("snapshot-list", uuids[0], "--name").strip("\n").split("\n")) >= len(created)
