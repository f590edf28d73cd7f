"""Which hosts' views of a lease path are one shared directory, and one view made of several.

Hosts name the same path (libvirt's default) whether or not they share it; sanlock's own evidence
tells: the lockspace's identity, and each other's host_ids live in it.
"""

from __future__ import annotations

import os
from dataclasses import replace

from virttui.locks.model import LeaseDirSnapshot, LeaseFile


def same_lease_dir(one: LeaseDirSnapshot, other: LeaseDirSnapshot) -> bool:
    """Whether two hosts' views of one path are one shared directory.

    sanlock's evidence first: a lockspace file whose first delta lease names another owner is
    another file; hosts sharing a lockspace see each other's host_ids live, and two live hosts
    can't share a host_id there (host_ids alone can't tell clusters apart: each numbers its hosts
    from 1). Without it (a daemon down, a lockspace still being joined, virtlockd's lockspaces,
    which have no host_ids), the same set of lease files. (Host 1's daemon restarting between two
    hosts' polls, under a new random name, splits one directory for that poll: harmless, as
    cleanup keeps sanlock's rule whatever directory a file is shown in; merging two clusters'
    files would hide some and mislabel others until they parted.)
    """
    if one.lockspace_identity and other.lockspace_identity and one.lockspace_identity != other.lockspace_identity:
        return False
    if one.manager == other.manager == "sanlock" and not one.error and not other.error:
        if one.host_id != other.host_id and (other.host_id in one.live_host_ids or one.host_id in other.live_host_ids):
            return True
        if one.host_id in one.live_host_ids and other.host_id in other.live_host_ids:
            return False  # both joined and live, yet neither sees the other (or they share a host_id)
    return {f.name for f in one.files} == {f.name for f in other.files}


def sharing_groups(views: list[tuple[str, LeaseDirSnapshot]]) -> list[list[tuple[str, LeaseDirSnapshot]]]:
    """Views of one path, grouped by the directory they show (sharing is transitive), in host order."""
    group_of = list(range(len(views)))

    def root(index: int) -> int:
        while group_of[index] != index:
            index = group_of[index]
        return index

    for i, (_, one) in enumerate(views):
        for j in range(i + 1, len(views)):
            if root(i) != root(j) and same_lease_dir(one, views[j][1]):
                group_of[root(j)] = root(i)
    groups: dict[int, list[tuple[str, LeaseDirSnapshot]]] = {}
    for index, view in enumerate(views):
        groups.setdefault(root(index), []).append(view)
    return list(groups.values())


def merge_views(views: list[LeaseDirSnapshot]) -> LeaseDirSnapshot:
    """One directory seen by several hosts. A lease a connected host's daemon holds is held (by that
    host, whatever the leader record last read says); one whose owner is a connected host with an
    answering daemon is held only if that daemon says so; any other lease is as the freshest pass
    over the files found it (or, with no pass times known, held if any host's view says so). A
    host_id is live if any host sees it live."""
    first = views[0]
    if len(views) == 1:
        return first
    claimed: dict[str, int] = {}
    answering: set[int] = set()  # host_ids whose daemon said what they hold
    for view in views:
        if view.daemon_held is not None and view.manager == "sanlock" and view.host_id:
            answering.add(view.host_id)
            for name in view.daemon_held:
                claimed.setdefault(name, view.host_id)
    readable = next((view for view in views if not view.error and view.complete),
                    next((view for view in views if not view.error), first))
    passes = [view for view in views if not view.error and view.complete and view.as_of]
    if passes:  # a release by a host this console doesn't reach shows with the first pass that saw it
        freshest = max(passes, key=lambda view: view.as_of)
        held = {f.name for f in freshest.files if f.held}
    else:
        held = {f.name for view in views for f in view.files if f.held}
    live = tuple(sorted({h for view in views for h in view.live_host_ids}))
    failing = tuple(sorted({h for view in views for h in view.failing_host_ids} - {
        h for view in views for h in view.live_host_ids if h not in view.failing_host_ids}))
    files = []
    for lease in readable.files:
        if lease.name in claimed:
            is_held, owner = True, claimed[lease.name]
        elif lease.leader is not None and lease.leader.owner_id in answering:
            is_held, owner = False, 0
        else:
            is_held, owner = lease.name in held, lease.daemon_owner
        # the file itself when nothing changes: merging 4000 files made a copy of each
        files.append(lease if (lease.held, lease.daemon_owner) == (is_held, owner)
                     else replace(lease, held=is_held, daemon_owner=owner))
    present = {lease.name for lease in readable.files}
    files.extend(LeaseFile(name=name, path=os.path.join(readable.directory, name), held=True, daemon_owner=owner)
                 for name, owner in sorted(claimed.items()) if name not in present)
    return replace(readable, files=tuple(files), live_host_ids=live, failing_host_ids=failing)
