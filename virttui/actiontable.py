"""The action registry: every action on a domain is one entry, and everything else is derived from it.

The screens' Footer bindings and check_action (screens/lifecycle.py), the help screen's key rows
(screens/help.py), the command palette (app.py), the ActionRunner's dispatch, confirmation and
state after (actions.py), and drivers/base.py's labels, STATE_AFTER and valid_actions all read
this table. Adding an action is one entry here plus its driver method (docs/architecture.md).

No Textual here: the driver layer reads it too. (drivers/registry.py is another thing: it picks
the driver for a URI.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import Enum

from virttui.drivers.model import Domain, DomainState
from virttui.records import record

ANY_STATE = frozenset(DomainState)
ACTIVE = frozenset(state for state in DomainState if state.is_active)
RUNNING = frozenset({DomainState.RUNNING, DomainState.IDLE})
SCREENS = frozenset({"main", "detail"})  # the screens that act on a current domain (LifecycleActions)


@record
class ActionSpec:
    """One action on a domain: how it is offered, confirmed, run and reported.

    It runs in exactly one way: `method` (the ActionRunner calls the driver method with the UUID),
    `essentials` (an Essentials method with its own dialogs and flow, given the host URI and the
    domain) or `one_of` (one key for several entries: the one the domain can take runs).
    """

    id: str  # the name in bindings (`domain('<id>')`), palette callbacks and ActionFinished
    label: str  # the verb in notices and confirmations: "Force off"
    key: str = ""  # the Textual key; "" for an entry reached only through another's `one_of`
    footer: str = ""  # the Footer's word for the key
    show: bool = True  # in the Footer; else in Help and the palette only
    help: str = ""  # its line in the help screen
    palette: tuple[str, str] | None = None  # (title, description) in the command palette
    states: frozenset[DomainState] = ANY_STATE  # the states libvirt accepts it in
    needs: Callable[[Domain], bool] | None = None  # beyond the state, e.g. a definition to change
    why_not: str = "{label}: {name} is {state}"  # the notice for its key when it can't apply
    # per state it can't apply in, the way out, naming the key that gets there: "{destroy} first" says
    # "f (force off) first" (an id in braces is that entry's key and label)
    ways_out: tuple[tuple[DomainState, str], ...] = ()
    state_after: DomainState | None = None  # what the domain is once the driver call returned success
    pending: str = ""  # the row's label while it runs: "forcing off"
    confirm: str | None = None  # None: runs at once; else the note under the confirmation's question
    takes_leases: bool = False  # it acquires the disks' leases: a failure names where they are in use
    bulk: bool = False  # acts on the marked domains when there are marks
    method: str = ""  # the Driver method the ActionRunner calls with the UUID, on a worker
    essentials: str = ""  # or the Essentials method called with (host uri, domain)
    one_of: tuple[str, ...] = ()  # or the ids this key stands for
    screens: frozenset[str] = SCREENS  # where its key is bound
    # a Driver method saying whether the host can do it at all ("has_console"); "" for every host
    host_needs: str = ""
    why_not_here: str = "{label}: {host} can't"  # the notice for its key on a host that can't

    def __post_init__(self) -> None:
        if sum(map(bool, (self.method, self.essentials, self.one_of))) != 1:
            raise ValueError(f"action {self.id!r}: give exactly one of method, essentials, one_of")

    @property
    def runs_in_runner(self) -> bool:
        """Run by the ActionRunner (pending label, confirmation, bulk), not by essentials."""
        return not self.essentials

    def fits(self, dom: Domain) -> bool:
        """Whether it can apply to the domain now: its key is offered, else shown dimmed."""
        if self.one_of:
            return any(spec(name).fits(dom) for name in self.one_of)
        return dom.state in self.states and (self.needs is None or self.needs(dom))

    def refusal(self, dom: Domain) -> str:
        """The notice for this action on a domain it does not fit: "Start: web-01 is running", and
        where there is one, the way out: "Start: ci-agent is crashed: f (force off) first"."""
        text = self.why_not.format(label=self.label, name=dom.name, state=dom.state.value)
        way = dict(self.ways_out).get(dom.state)
        return f"{text}: {way.format_map(_KeyNames())}" if way else text

    def offered_on(self, driver: object) -> bool:
        """Whether the host's driver can run it at all (an embedded host has no serial console)."""
        return not self.host_needs or bool(getattr(driver, self.host_needs)())

    def refusal_here(self, host: str) -> str:
        """The notice for its key on a host whose driver can't run it (offered_on is False)."""
        return self.why_not_here.format(label=self.label, host=host)

    def choose(self, domains: Sequence[Domain]) -> ActionSpec:
        """The entry that runs for these domains: itself, or of `one_of` the first any of them can take.
        When none can, the first for one domain and the last for several: the runner names it refused."""
        if not self.one_of:
            return self
        options = [spec(name) for name in self.one_of]
        return next((option for option in options if any(option.fits(dom) for dom in domains)),
                    options[0] if len(domains) == 1 else options[-1])


class _KeyNames(dict):
    """An entry's id as a way out names it: "destroy" is "f (force off)"."""

    def __missing__(self, action: str) -> str:
        return key_named(action)


def _persistent(dom: Domain) -> bool:
    return dom.persistent


_TRANSIENT = "{label}: {name} is transient (it has no definition)"

# Table order is the order of the Footer's keys, the help rows and the palette entries.
ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("start", "Start", "s", "Start", help="start the domain",
               palette=("Start domain", "Start the selected domain (s)"),
               # libvirt starts only an inactive domain: a crashed one kept for a dump is still active
               ways_out=((DomainState.CRASHED, "{destroy} first"), (DomainState.PAUSED, "{resume} instead"),
                         (DomainState.PMSUSPENDED, "{pmwakeup} instead"),
                         (DomainState.IN_SHUTDOWN, "wait for it to stop, or {destroy}")),
               states=frozenset({DomainState.SHUT_OFF}), state_after=DomainState.RUNNING, pending="starting",
               takes_leases=True, bulk=True, method="start"),
    # Shutdown and reboot only ask the guest: no state follows from their success.
    ActionSpec("shutdown", "Shut down", "d", "Shutdown", help="shut the domain down (graceful; asks first)",
               palette=("Shut down domain", "Gracefully shut down the selected domain (d)"),
               # only a running guest hears the request (QEMU refuses it otherwise)
               ways_out=((DomainState.PAUSED, "{resume} first, or {destroy}"),
                         (DomainState.PMSUSPENDED, "{pmwakeup} first, or {destroy}"),
                         (DomainState.CRASHED, "{destroy} instead"),
                         (DomainState.IN_SHUTDOWN, "{destroy} if it hangs")),
               states=RUNNING, pending="shutting down",
               confirm="The guest is asked to shut down; its services stop.", bulk=True, method="shutdown"),
    ActionSpec("reboot", "Reboot", "r", "Reboot", help="reboot the domain (asks first)",
               palette=("Reboot domain", "Reboot the selected domain (r)"),
               ways_out=((DomainState.PAUSED, "{resume} first"), (DomainState.PMSUSPENDED, "{pmwakeup} first"),
                         (DomainState.CRASHED, "{destroy}, then {start}"), (DomainState.SHUT_OFF, "{start} instead"),
                         (DomainState.IN_SHUTDOWN, "wait for it to stop, then {start}")),
               states=RUNNING, pending="rebooting",
               confirm="The guest is asked to reboot; its services go down for a while.", bulk=True, method="reboot"),
    ActionSpec("destroy", "Force off", "f", "Force off", help="force off: destroy the domain (asks first)",
               palette=("Force off domain", "Destroy the selected domain (f)"),
               states=ACTIVE, state_after=DomainState.SHUT_OFF, pending="forcing off",
               confirm="Force off pulls the virtual power plug: unsaved data in the guest is lost.",
               bulk=True, method="destroy"),
    ActionSpec("pause", "Pause", "p", "Pause", help="pause a running domain (asks first) / resume a paused one",
               palette=("Pause or resume domain", "Pause a running domain, resume a paused one (p)"),
               bulk=True, one_of=("suspend", "resume")),
    ActionSpec("suspend", "Pause", states=RUNNING, state_after=DomainState.PAUSED, pending="pausing",
               ways_out=((DomainState.PMSUSPENDED, "{pmwakeup} first"),),
               confirm="The guest stops until it is resumed; its clients may time out.", method="suspend"),
    ActionSpec("resume", "Resume", states=frozenset({DomainState.PAUSED}), state_after=DomainState.RUNNING,
               pending="resuming", method="resume"),
    # A guest that suspended itself to RAM (its own power management) wakes as from its power button.
    ActionSpec("pmwakeup", "Wake", "w", "Wake", show=False, help="wake a pmsuspended domain (suspended by its guest)",
               palette=("Wake domain", "Wake the selected pmsuspended domain (w)"),
               states=frozenset({DomainState.PMSUSPENDED}), state_after=DomainState.RUNNING, pending="waking",
               ways_out=((DomainState.SHUT_OFF, "{start} instead"), (DomainState.PAUSED, "{resume} instead")),
               method="pm_wakeup"),
    ActionSpec("console", "Console", "c", "Console", help="serial console of a running domain (Ctrl+] returns)",
               palette=("Serial console", "The serial console of the selected running domain (c; Ctrl+] returns)"),
               ways_out=((DomainState.SHUT_OFF, "{start} first"),),
               host_needs="has_console", why_not_here="{label}: {host} has no serial console to attach to",
               states=ACTIVE, essentials="console"),
    ActionSpec("autostart", "Autostart", "a", "Autostart", show=False, help="autostart on / off",
               palette=("Toggle autostart", "Start the selected domain with its host, or not (a)"),
               needs=_persistent, why_not=_TRANSIENT, essentials="toggle_autostart"),
    ActionSpec("undefine", "Undefine", "U", "Undefine", show=False,
               help="undefine (asks for its name; storage kept unless ticked)",
               palette=("Undefine domain", "Remove the selected domain's definition; its storage only if ticked (U)"),
               needs=_persistent, why_not=_TRANSIENT, essentials="undefine"),
)


def _id(action: str) -> str:
    # drivers/base.py's Action is a str Enum whose hash is its name's: look it up by its value
    return action.value if isinstance(action, Enum) else action


def spec(action: str) -> ActionSpec:
    """The entry of an id (or of a drivers.base.Action); KeyError when there is none."""
    wanted = _id(action)
    for entry in ACTIONS:
        if entry.id == wanted:
            return entry
    raise KeyError(wanted)


def key_named(action: str) -> str:
    """An entry's key and label as a hint names them: "f (force off)"; for an entry reached through
    another's key, that key: "p (resume)"."""
    entry = spec(action)
    key = entry.key or next((other.key for other in ACTIONS if entry.id in other.one_of), "")
    return f"{key} ({entry.label.lower()})" if key else entry.label.lower()


def keyed(screen: str | None = None) -> list[ActionSpec]:
    """The entries with a key (on `screen`, or on any), in table order."""
    return [entry for entry in ACTIONS if entry.key and (screen is None or screen in entry.screens)]


def in_palette(screen: str) -> list[tuple[str, str, str]]:
    """(title, description, id) of the entries the command palette lists on `screen`, in table order:
    every keyed entry, with the palette words it gives or words made from its label and help."""
    return [(*(entry.palette or (f"{entry.label} domain", f"{entry.help[:1].upper()}{entry.help[1:]} ({entry.key})")),
             entry.id) for entry in ACTIONS if entry.key and screen in entry.screens]


def valid_ids(state: DomainState) -> frozenset[str]:
    """The ids of the driver actions (`method`) libvirt accepts in this state."""
    return frozenset(entry.id for entry in ACTIONS if entry.method and state in entry.states)
