"""The panes' views (virttui.views): rows and titles computed from a Fleet, no App, no Pilot."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest

from virttui.drivers.model import ConnectionState
from virttui.fleet import Fleet
from virttui.views import (
    DomainsCache,
    LeasesCache,
    disks_view,
    domain_scope,
    domains_view,
    hosts_view,
    leases_view,
)
from virttui.views.common import ALL_HOSTS_KEY, KEY_SEP, domain_key, group_key, split_domain_key
from virttui.views.domains import COLUMNS as DOMAIN_COLUMNS
from virttui.views.domains import next_sort, parse_sort, remembered_columns, remembered_sort
from virttui.views.hosts import COLUMNS as HOST_COLUMNS
from virttui.widgets.cells import sort_value


@pytest.fixture
def fleet(demo) -> Fleet:
    """The demo's three hosts, each polled once: hv1 9 domains (8 active), hv2 and hv3 8 each (6 active)."""
    fleet = Fleet([driver.uri for driver in demo.drivers])
    for driver in demo.drivers:
        driver.connect()
        fleet.apply(driver.poll())
    return fleet


def texts(row) -> list[str]:
    return [cell.text for cell in row[1]]


def names(rows, column: str = "name", shown=tuple(key for key, _, _ in DOMAIN_COLUMNS)) -> list[str]:
    index = list(shown).index(column)
    return [row[1][index].text for row in rows]


def shown_order(rows, column: str, reverse: bool, shown=tuple(key for key, _, _ in DOMAIN_COLUMNS)):
    """The rows in the order the pane shows them: DiffTable sorts by the sort column's cell sort keys."""
    index = list(shown).index(column)
    return sorted(rows, key=lambda row: sort_value(row[1][index]), reverse=reverse)


def domain_named(fleet: Fleet, name: str):
    return next((row.host_uri, row.domain) for row in fleet.domain_rows() if row.domain.name == name)


# -- domains ------------------------------------------------------------------------------------
def test_the_domains_view_filters_a_word_across_hosts_and_sorts_by_state(fleet):
    view = domains_view(fleet, DomainsCache(), filter_text="WEB", sort="state", reverse=False)
    assert sorted(names(view.rows)) == ["web-01", "web-02", "web-03", "web-standby"]  # hv1 and hv2, any case
    assert {split_domain_key(key)[0] for key, _ in view.rows} == set(fleet.uris[:2])
    # running first, then shut off; names break ties
    assert names(shown_order(view.rows, "state", False)) == ["web-01", "web-02", "web-03", "web-standby"]
    assert names(shown_order(view.rows, "name", True)) == ["web-standby", "web-03", "web-02", "web-01"]
    assert view.title == "Domains · all hosts · 4 · filter “WEB” · sort state ▲"


def test_the_domains_view_of_one_host_says_what_its_guests_take(fleet):
    hv2 = fleet.uris[1]
    hosts, scope = domain_scope(fleet, lambda uri: "", hv2)
    assert (hosts, scope) == ({hv2}, "hv2")
    view = domains_view(fleet, DomainsCache(), hosts=hosts, scope=scope, filter_text="web", sort="cpu", reverse=True)
    assert sorted(names(view.rows)) == ["web-03", "web-standby"]
    assert view.title.startswith("Domains · hv2 · 2 · filter “web” · sort CPU% ▼ · in use 22/24 vCPU, ")


def test_the_domains_view_scopes_a_group_and_all(fleet):
    groups = {fleet.uris[0]: "front", fleet.uris[2]: "front"}
    assert domain_scope(fleet, lambda uri: groups.get(uri, ""), group_key("front")) == (
        {fleet.uris[0], fleet.uris[2]}, "group front")
    assert domain_scope(fleet, groups.get, ALL_HOSTS_KEY) == (None, "all hosts")
    assert domain_scope(fleet, groups.get, None) == (None, "all hosts")


def test_a_disk_path_or_uuid_finds_domains_and_a_letter_does_not_match_every_path(fleet):
    cache = DomainsCache()
    assert sorted(names(domains_view(fleet, cache, filter_text="/web-01.qcow2").rows)) == ["web-01", "web-standby"]
    _, web01 = domain_named(fleet, "web-01")
    assert names(domains_view(fleet, cache, filter_text=web01.uuid[:8]).rows) == ["web-01"]
    assert domains_view(fleet, cache, filter_text="qcow2").rows == ()  # paths only for text with a "/"


def test_the_domains_view_shows_marks_pending_actions_and_the_columns_asked_for(fleet):
    uri, web01 = domain_named(fleet, "web-01")
    _, web02 = domain_named(fleet, "web-02")
    view = domains_view(fleet, DomainsCache(), filter_text="web-0", columns=("name", "state"),
                        marked={(uri, web01.uuid)}, pending={(uri, web02.uuid): "rebooting"})
    rows = dict(view.rows)
    assert texts((None, rows[domain_key(uri, web01.uuid)])) == ["● web-01", "running"]
    assert texts((None, rows[domain_key(uri, web02.uuid)])) == ["web-02", "rebooting…"]
    assert view.title == "Domains · all hosts · 3 · 1 marked · filter “web-0”"


def test_a_poll_of_one_host_rebuilds_only_that_hosts_rows(fleet, demo):
    cache = DomainsCache()
    before = domains_view(fleet, cache)
    assert len(before.rows) == 25  # every domain of the three hosts, shut off too
    again = domains_view(fleet, cache)
    assert all(new is old for new, old in zip(again.rows, before.rows, strict=True))
    fleet.apply(demo.drivers[1].poll())  # hv2 polled again: a new snapshot
    after = domains_view(fleet, cache)
    hv2 = fleet.uris[1]
    for new, old in zip(after.rows, before.rows, strict=True):
        assert new[0] == old[0]
        assert (new is old) == (split_domain_key(new[0])[0] != hv2)


def test_the_domains_cache_forgets_a_removed_host(fleet):
    cache = DomainsCache()
    domains_view(fleet, cache)
    gone = fleet.uris[2]
    fleet.remove_host(gone)
    view = domains_view(fleet, cache)
    assert gone not in cache.rows and gone not in cache.cells and gone not in cache.searchable
    assert all(split_domain_key(key)[0] != gone for key, _ in view.rows)


def test_the_sort_cycles_over_the_columns_shown_and_is_remembered_with_its_direction():
    shown = ("name", "host", "state", "cpu")
    assert next_sort(shown, "host") == ("name", False)
    assert next_sort(shown, "state") == ("cpu", True)  # big numbers first
    assert next_sort(shown, "cpu") == ("host", False)
    assert next_sort(shown, None) == ("host", False)
    assert remembered_sort("cpu", True) == "cpu" and remembered_sort("cpu", False) == "-cpu"
    assert parse_sort("-cpu", shown) == ("cpu", False) and parse_sort("mem", shown) is None
    assert remembered_columns(["cpu", "bogus"]) == ("cpu", "name") and remembered_columns(["bogus"]) is None


# -- disks ----------------------------------------------------------------------------------------
def test_the_disks_view_shows_a_held_lease_and_a_disk_held_for_another_domain(fleet):
    view = disks_view(fleet, domain_named(fleet, "web-01"))
    assert view.title == "Disks · web-01"
    ((key, cells),) = view.rows
    assert key == f"0{KEY_SEP}vda"  # its place in the domain, then its target: the pane keeps libvirt's order
    assert [cell.text for cell in cells][:4] == ["vda", "…ges/web-01.qcow2", "rw", "held"]
    assert cells[3].style == "green"

    standby = disks_view(fleet, domain_named(fleet, "web-standby"))  # shut off, web-01's disk
    assert standby.title == "Disks · web-standby · in use by hv1/web-01"
    assert texts(standby.rows[0])[3] == "by other"
    assert texts(standby.rows[0])[6] == texts(view.rows[0])[6]  # the same lease file


def test_the_disks_view_without_a_domain_is_empty(fleet):
    view = disks_view(fleet, None)
    assert (view.rows, view.title) == ((), "Disks")


# -- leases ---------------------------------------------------------------------------------------
def test_the_leases_view_counts_leases_by_state_in_its_title(fleet):
    cache = LeasesCache()
    view = leases_view(fleet, cache, now=0.0)
    assert view.title == "Leases · 22 held, 2 orphan"  # the demo's two stale lease files
    assert len(view.rows) == 24
    orphans = [texts(row) for row in view.rows if texts(row)[0] == "orphan"]
    assert len(orphans) == 2 and all(row[1] == "(no known disk)" for row in orphans)
    assert leases_view(fleet, cache, now=0.0).rows is view.rows  # nothing changed: the same rows, not synced again


def test_the_leases_title_says_how_old_the_lease_files_read_are(fleet):
    oldest = min(snap.leases.as_of for uri in fleet.uris if (snap := fleet.snapshot(uri)) and snap.leases)
    if oldest < 1e9:
        pytest.skip("the lease views carry no wall time here")
    assert "files read" not in leases_view(fleet, LeasesCache(), now=oldest + 9).title
    title = leases_view(fleet, LeasesCache(), now=oldest + 25).title
    assert title == "Leases · 22 held, 2 orphan · files read 20 s ago"


# -- hosts ----------------------------------------------------------------------------------------
def test_the_hosts_view_totals_what_the_domains_pane_lists(fleet):
    view = hosts_view(fleet, lambda uri: "", (), {})
    assert view.title == "Hosts"
    assert "error" not in view.columns  # no host in error: no Last error column
    assert [key for key, _ in view.rows] == [ALL_HOSTS_KEY, *fleet.uris]
    assert texts(view.rows[0])[:3] == ["★ all", "3 hosts", "20/25"]  # active of all, connected hosts
    assert [texts(row)[:3] for row in view.rows[1:]] == [["hv1", "connected", "8/9"], ["hv2", "connected", "6/8"],
                                                         ["hv3", "connected", "6/8"]]
    assert all(len(cells) == len(view.columns) == len(HOST_COLUMNS) - 1 for _, cells in view.rows)
    assert [texts(row)[-1] for row in view.rows[1:]] == ["id 1 live", "id 2 live", "id 3 live"]
    assert set(view.lease_peers[fleet.uris[2]]) == set(fleet.uris[:2])  # the hosts sharing its lease directory


def test_the_hosts_view_puts_a_groups_hosts_on_its_branch_and_folds_it(fleet):
    hv1, hv2, hv3 = fleet.uris
    groups = {hv1: "web", hv3: "web"}
    view = hosts_view(fleet, lambda uri: groups.get(uri, ""), (), {})
    assert [key for key, _ in view.rows] == [ALL_HOSTS_KEY, group_key("web"), hv1, hv3, hv2]
    assert texts(view.rows[1])[:3] == ["▾ web", "2 hosts", "14/17"]
    assert [texts(row)[0] for row in view.rows[2:]] == ["├ hv1", "└ hv3", "hv2"]
    folded = hosts_view(fleet, lambda uri: groups.get(uri, ""), {"web"}, view.lease_peers)
    assert [key for key, _ in folded.rows] == [ALL_HOSTS_KEY, group_key("web"), hv2]
    assert texts(folded.rows[1])[0] == "▸ web"


def test_a_host_in_error_shows_its_error_and_its_peers_say_whether_it_is_live(fleet, demo):
    first = hosts_view(fleet, lambda uri: "", (), {})
    hv3 = fleet.uris[2]
    fleet.set_host(replace(fleet.host(hv3), state=ConnectionState.ERROR, last_error="down"))
    view = hosts_view(fleet, lambda uri: "", (), first.lease_peers)
    assert view.title == "Hosts · 1 in error · hv3: down"
    assert "error" in view.columns and all(len(cells) == len(HOST_COLUMNS) for _, cells in view.rows)
    assert texts(view.rows[0])[2] == "14/17"  # its domains are not listed, nor counted
    hv3_row = texts(view.rows[3])
    assert hv3_row[view.columns.index("error")] == "down"
    assert hv3_row[-1] == "id 3 not live"  # as hv1, its first peer, saw it: polled before hv3 joined the lockspace
    fleet.apply(demo.drivers[0].poll())
    view = hosts_view(fleet, lambda uri: "", (), view.lease_peers)
    assert texts(view.rows[3])[-1] == "id 3 live"  # its guests may still hold their leases
    forgotten = hosts_view(fleet, lambda uri: "", (), {})  # no peers remembered: nobody to ask
    assert texts(forgotten.rows[3])[-1] == "id 3 unknown"


# -- no Textual ----------------------------------------------------------------------------------
def test_the_views_load_without_textual():
    code = ("import sys, virttui.views, virttui.views.common, virttui.views.hosts, virttui.views.domains,"
            " virttui.views.disks, virttui.views.leases\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_the_disks_view_names_a_lockd_hosts_leases_by_sha256_and_keeps_the_domains_disk_order(fleet):
    """A shut-off guest on a lockd host showed the sanlock (md5) name; and the pane, keyed by target
    alone, kept the previous domain's rows in place (vda, vdb, hda, hdc after another domain)."""
    from dataclasses import replace

    from virttui.locks.naming import lockd_lease_name

    uri, dom = domain_named(fleet, "build-runner")
    snap = fleet.snapshot(uri)
    fleet.apply(replace(snap, leases=replace(snap.leases, manager="lockd", files=())))
    ((key, cells),) = disks_view(fleet, (uri, fleet.domain(uri, dom.uuid))).rows
    assert cells[6].text == lockd_lease_name(dom.disks[0].source)
    two = replace(dom, disks=(replace(dom.disks[0], target="vdb"), replace(dom.disks[0], target="hda")))
    assert [k for k, _ in disks_view(fleet, (uri, two)).rows] == [f"0{KEY_SEP}vdb", f"1{KEY_SEP}hda"]
