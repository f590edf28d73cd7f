"""Cleanup can never delete a held lease: randomised mixes on the real sanlock stack.

Each round builds a random mix of free, held-by-host-1, held-by-host-2, corrupt and
vanishing lease files, takes the preview (dry run) as the console does, lets host 2
acquire one of the previewed candidates before the operator confirms, then cleans up
the previewed names. Every lease held at cleanup time must survive.
"""

from __future__ import annotations

import os
import random
import threading
import uuid as uuidlib

import pytest

from virttui.drivers.registry import open_driver
from virttui.locks.naming import sanlock_lease_name

pytestmark = pytest.mark.realstack
KINDS = ("free", "host1", "host2", "corrupt", "vanishing")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_held_lease_is_ever_removed(sanlock_stack, seed):
    rng = random.Random(seed)
    h1, h2 = sanlock_stack.hosts
    plan = {sanlock_lease_name(f"/mix/{seed}/{uuidlib.uuid4()}"): rng.choice(KINDS) for _ in range(10)}
    plan[sanlock_lease_name(f"/mix/{seed}/late")] = "free"  # at least one free file for host 2 to take late
    holds = []
    path = {name: os.path.join(sanlock_stack.lease_dir, name) for name in plan}
    try:
        for name, kind in plan.items():
            if kind in ("free", "vanishing"):
                sanlock_stack.make_stale_lease(name)
            elif kind == "corrupt":
                with open(path[name], "wb") as handle:
                    handle.write(os.urandom(rng.choice([0, 100, 512, 4096])))
            else:
                holds.append((h1 if kind == "host1" else h2).hold_lease(name))
        driver = open_driver(h1.ssh_uri)
        driver.connect()
        try:
            manager = driver.lease_manager()
            preview = [o.name for o in manager.cleanup(list(plan), dry_run=True).outcomes if o.removed]
            assert set(preview) == {n for n, k in plan.items() if k in ("free", "vanishing")}
            late = rng.choice(sorted(n for n in preview if plan[n] == "free"))
            holds.append(h2.hold_lease(late))  # acquired between the preview and the confirmation
            vanish = [n for n in preview if plan[n] == "vanishing"]
            remover = threading.Thread(target=lambda: [os.path.exists(path[n]) and os.unlink(path[n])
                                                       for n in vanish])
            remover.start()
            report = manager.cleanup(preview)
            remover.join()
        finally:
            driver.close()
        left = set(os.listdir(sanlock_stack.lease_dir))
        held_now = {n for n, k in plan.items() if k in ("host1", "host2")} | {late}
        assert held_now <= left, f"held leases removed: {held_now - left}"
        assert {n for n, k in plan.items() if k == "corrupt"} <= left
        removed = {o.name for o in report.removed}
        assert removed <= {n for n, k in plan.items() if k in ("free", "vanishing")} - {late}
        assert not removed & held_now
        assert {n for n, k in plan.items() if k == "free"} - {late} <= removed  # the rest did go
    finally:
        for hold in holds:
            hold.release()
        for name in plan:
            if os.path.lexists(path[name]):
                os.unlink(path[name])
