"""A few domains of libvirt's test corpus (../shared/corpus beside the checkout, read in place) on an
embedded host: the Disks pane and the detail screen show their disks as virsh names them.
tests/unit/test_corpus.py compares the whole corpus with virsh; what virsh shows of these is written here.
"""

from __future__ import annotations

import uuid as uuidlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from lxml import etree
from support.app import settle
from support.paths import shared_corpus
from support.pilot import open_detail

from virttui.console.app import VirtTUI
from virttui.drivers.testdriver import TestDriver
from virttui.drivers.xmlparse import parse_xml
from virttui.screens.detail import DomainDetailScreen
from virttui.views.disks import short_path
from virttui.widgets.panes import DisksTable

CORPUS = shared_corpus() / "libvirt-xml"

# `virsh domblklist` of each domain loaded by libvirt's test driver: (target, source).
# A volume is pool/volume in virttui, on purpose (tests/unit/test_corpus.py says why).
VIRSH_SHOWS = {
    "disk-nvme": [("vda", "nvme://0000:01:00.0/1"), ("vdb", "nvme://0000:01:00.0/2"),
                  ("vdc", "nvme://0000:02:00.0/1"), ("vdd", "nvme://0001:02:00.0/2")],
    "disk-vhostuser": [("vda", "/tmp/vhost1.sock"), ("vdb", "/tmp/vhost1.sock")],
    "disk-network-iscsi": [("vda", "iqn.1992-01.com.example/0"), ("vdb", "iqn.1992-01.com.example/1"),
                           ("vdc", "iqn.1992-01.com.example:storage/1"), ("vdd", "iqn.1992-01.com.example:storage/2"),
                           ("sda", "iqn.1992-01.com.example/0"), ("sdb", "iqn.1992-01.com.example:server/0"),
                           ("sdc", "iqn.1992-01.com.example:server/0")],
    "disk-order": [("hda", "/dev/HostVG/QEMUGuest1"), ("hdc", "/dev/HostVG/QEMUGuest2"), ("vda", "/tmp/data.img"),
                   ("vdb", "/tmp/logs.img")],
    "disk-source-pool-mode": [("hda", "pool-iscsi-auth/unit:0:0:1"), ("hdb", "pool-iscsi/unit:0:0:2"),
                              ("hdc", "/tmp/idedisk.img"), ("hdd", "pool-iscsi/unit:0:0:3")],
}


def corpus_node(tmp_path: Path) -> Path:
    """One node file holding these corpus domains, each renamed after its file."""
    domains = []
    for name in VIRSH_SHOWS:
        source = CORPUS / f"{name}.xml"
        if not source.is_file():
            pytest.fail(f"libvirt's XML corpus is missing: expected {source.resolve()} beside the checkout",
                        pytrace=False)
        root = parse_xml(source.read_bytes(), str(source))
        root.find("name").text = name
        root.find("uuid").text = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, name))
        domains.append(etree.tostring(root, encoding="unicode"))
    node = tmp_path / "corpus.xml"
    node.write_text(f"<node>{''.join(domains)}</node>")
    return node


async def test_corpus_disks_are_named_as_virsh_names_them_in_the_disks_pane_and_the_detail_screen(tmp_path, clock):
    node = corpus_node(tmp_path)
    driver = TestDriver(f"test://{node}", str(node), lease_dir=str(tmp_path / "leases"), clock=clock)
    host = SimpleNamespace(drivers=[driver])  # what support.pilot reads of a demo
    app = VirtTUI([driver], poll_interval=2.0, autopoll=False)
    async with app.run_test(size=(160, 50)) as pilot:
        await settle(pilot)
        for name, disks in VIRSH_SHOWS.items():
            screen = await open_detail(pilot, host, name)
            assert isinstance(screen, DomainDetailScreen)
            assert f"{name} on " in screen.query_one("#detail-head").content.plain
            xml = parse_xml(screen.query_one("#xml").content.code, name)
            assert sorted(disk.get("dev") for disk in xml.iterfind("devices/disk/target")) == sorted(dict(disks))
            await pilot.press("escape")
            await settle(pilot)
            table = pilot.app.screen.query_one(DisksTable)
            # by target: the pane keeps a row in place when the next domain has a disk of that name
            shown = {cells[0].text: cells[1].text for cells in map(table.get_row_at, range(table.row_count))}
            assert shown == {target: short_path(source, 17) for target, source in disks}, name
