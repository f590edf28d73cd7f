"""The hosts a command works on: named with -c, from the config file, or the demo."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from virttui.cli.output import UsageError
from virttui.config import Config, ConfigError, load_config
from virttui.drivers.base import Driver

if TYPE_CHECKING:
    import argparse

log = logging.getLogger("virttui")


@contextmanager
def open_hosts(args: argparse.Namespace) -> Iterator[tuple[list[Driver], float, Config]]:
    """Drivers for the hosts the user named (or the demo), the poll interval, and the config file
    read (which the console saves hosts and choices to); drivers are closed on exit."""
    from virttui.drivers.registry import open_driver_or_placeholder

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        raise UsageError(str(exc)) from None
    from virttui.drivers.sshclients import choose_ssh_clients

    choose_ssh_clients(config.ssh_client, dict(config.ssh_clients))  # checked by load_config
    interval = getattr(args, "poll_interval", None)
    if interval is None:
        interval = config.poll_interval
    elif not 0.2 <= interval <= 3600:  # also refuses nan and inf, as the config file's check does
        raise UsageError("--poll-interval must be a number of seconds from 0.2 to 3600")
    from virttui.locks.readers import ELECTION

    policy = (ELECTION.slow_interval, ELECTION.full_interval, ELECTION.read_budget, ELECTION.read_rate,
              ELECTION.watched_hosts)
    ELECTION.slow_interval, ELECTION.full_interval = config.lease_slow_interval, config.lease_full_interval
    if getattr(args, "command", None) in ("status", "leases"):  # one poll, which must show every file now
        ELECTION.read_budget, ELECTION.read_rate = 0, 0.0
    uris = list(dict.fromkeys(args.connect or []))  # a host named twice is one host
    demo = None
    if getattr(args, "demo", False) or not uris:
        if not uris and not args.demo:
            uris = list(config.hosts) or ([os.environ["LIBVIRT_DEFAULT_URI"]]
                                          if os.environ.get("LIBVIRT_DEFAULT_URI") else [])
        if args.demo or not uris:
            from virttui.demo import Demo

            demo = Demo()
    drivers: list[Driver] = list(demo.drivers) if demo else []
    drivers.extend(open_driver_or_placeholder(uri) for uri in uris if not demo or args.connect)
    ELECTION.watched_hosts = len(drivers)
    try:
        yield drivers, interval, config
    finally:
        for driver in drivers:
            try:
                driver.close()
            except Exception:
                log.exception("closing %s", driver.uri)
        if demo is not None:
            demo.close()
        (ELECTION.slow_interval, ELECTION.full_interval, ELECTION.read_budget, ELECTION.read_rate,
         ELECTION.watched_hosts) = policy
