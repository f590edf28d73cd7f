"""`virttui status`: poll every host once and print its domains."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from virttui.cli.hosts import open_hosts
from virttui.cli.output import _printable
from virttui.drivers.model import ConnectionState, HostSnapshot
from virttui.runtime.pollonce import poll_once


def status_json(snapshots: Sequence[HostSnapshot]) -> dict:
    hosts = []
    for snap in snapshots:
        connected = snap.host.state is ConnectionState.CONNECTED
        hosts.append({
            "uri": snap.host.shown_uri,
            "hostname": snap.host.hostname,
            "state": "connected" if connected else "error",
            "error": snap.host.last_error,
            "domains": [
                {
                    "uuid": dom.uuid,
                    "name": dom.name,
                    "state": dom.state.value,
                    "reason": dom.reason,
                    "vcpus": dom.vcpus,
                    "memory_kib": dom.memory_kib,
                    "disks": [
                        {"target": d.target, "source": d.source, "format": d.format,
                         "readonly": d.readonly, "shareable": d.shareable}
                        for d in dom.disks
                    ],
                }
                for dom in snap.domains
            ],
        })
    return {"hosts": hosts}


def status_text(snapshots: Sequence[HostSnapshot]) -> str:
    from virttui.format import human_kib, plural

    lines = []
    for snap in snapshots:
        host = snap.host
        if host.state is not ConnectionState.CONNECTED:
            lines.append(f"{_printable(host.shown_uri)}: error")
            continue
        lines.append(f"{_printable(host.label)} ({_printable(host.shown_uri)}): {_printable(host.hypervisor)} "
                     f"{_printable(host.hypervisor_version)}, "
                     f"{plural(host.cpus, 'CPU')}, {human_kib(host.memory_kib)}, "
                     f"{plural(len(snap.domains), 'domain')}")
        width = max([len(d.name) for d in snap.domains] + [4])
        lines.append(f"  {'Id':>4}  {'Name':<{width}}  {'State':<18} {'vCPUs':>5} {'Memory':>10}")
        for dom in snap.domains:
            dom_id = str(dom.id) if dom.id is not None else "-"
            lines.append(f"  {dom_id:>4}  {_printable(dom.name):<{width}}  {dom.state_text:<18} "
                         f"{dom.vcpus:>5} {human_kib(dom.memory_kib):>10}")
    return "\n".join(lines)


def cmd_status(args: argparse.Namespace) -> int:
    with open_hosts(args) as (drivers, _, _):
        snapshots = [poll_once(driver) for driver in drivers]
    if args.json:
        print(json.dumps(status_json(snapshots), indent=2))
    else:
        print(status_text(snapshots))
    for snap in snapshots:
        for warning in snap.host.warnings:
            print(f"virttui: warning: {_printable(snap.host.label)}: {_printable(warning)}", file=sys.stderr)
    failed = [s.host for s in snapshots if s.host.state is not ConnectionState.CONNECTED]
    for host in failed:
        print(f"virttui: {_printable(host.last_error)}", file=sys.stderr)
    return 1 if failed else 0
