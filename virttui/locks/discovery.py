"""Which lock manager a host's libvirt uses, read through that host's transport.

qemu.conf's `lock_manager` names it (sanlock or lockd), and that manager's own file says where its
leases are. The files are read in one command on the host; each is parsed as libvirt's virconf.c
parses it (locks/libvirtconf.py).
"""

from __future__ import annotations

from virttui.drivers.transport import Transport
from virttui.drivers.virshparse import new_marker, split_sections
from virttui.locks.libvirtconf import LOCKD_CONF, QEMU_CONF, SANLOCK_CONF, LibvirtConfError, lock_config
from virttui.locks.manager import LeaseManager
from virttui.locks.model import LockConfig
from virttui.records import record

MISSING = "@@virttui-missing@@"
UNREADABLE = "@@virttui-unreadable@@"


@record
class Discovered:
    """A host's lock configuration (None: none could be read), its lease manager (None: no disk
    leases to show) and a warning for the Hosts pane ("" when all is well)."""

    config: LockConfig | None
    manager: LeaseManager | None
    warning: str = ""


def discover(transport: Transport, *, in_process: bool) -> Discovered:
    """The host's lock manager. in_process: the host is this machine, and its lease agent runs here."""
    files = (QEMU_CONF, SANLOCK_CONF, LOCKD_CONF)
    # a file that can't be read is not a file that isn't there: qemu.conf is often 0600, and a
    # non-root login reading it as missing would show "no lock manager" where sanlock runs
    marker = new_marker()
    shell = (f'for f; do echo {marker}; if [ ! -e "$f" ]; then printf %s {MISSING}; '
             f'else cat -- "$f" 2>/dev/null || printf %s {UNREADABLE}; fi; done')
    result = transport.run(["sh", "-c", shell, "sh", *files])
    texts = [None if part == MISSING else part for part in split_sections(result.stdout, 4, marker)[1:]]
    if len(texts) != len(files):
        return Discovered(None, None, "cannot read the libvirt lock configuration")
    unreadable = {path for path, text in zip(files, texts, strict=True) if text and text.endswith(UNREADABLE)}
    texts = [None if path in unreadable else text for path, text in zip(files, texts, strict=True)]
    try:
        config = None if QEMU_CONF in unreadable else lock_config(*texts)
    except LibvirtConfError as exc:
        return Discovered(None, None, f"lock configuration: {exc}")
    # only the files that matter: qemu.conf, and the chosen lock manager's own
    needed = QEMU_CONF if config is None else {"sanlock": SANLOCK_CONF, "lockd": LOCKD_CONF}.get(config.manager)
    if needed in unreadable:
        return Discovered(config, None, f"lock configuration: cannot read {needed} (a login that may not read "
                                        f"it?); no disk leases shown for this host")
    assert config is not None  # an unreadable qemu.conf returned just above
    if config.manager not in ("sanlock", "lockd") or (config.manager == "lockd" and not config.file_lockspace_dir):
        return Discovered(config, None)
    from virttui.locks.agentrunner import AgentRunner
    from virttui.locks.hostleases import HostLeaseManager

    runner = AgentRunner() if in_process else AgentRunner(transport)
    return Discovered(config, HostLeaseManager(config, runner))
