"""Rates from snapshot deltas."""

from virttui.drivers.model import ConnectionState, Domain, DomainState, Host, HostSnapshot
from virttui.fleet import Fleet, cpu_percent


def dom(cpu_ns, state=DomainState.RUNNING):
    return Domain(uuid="u", name="n", state=state, vcpus=2, memory_kib=1, max_memory_kib=1, cpu_time_ns=cpu_ns)


def test_cpu_percent_uses_interval_and_host_cpus_and_clamps():
    assert cpu_percent(dom(0), dom(2_000_000_000), 2.0, 4) == 25.0
    assert cpu_percent(dom(0), dom(10**12), 1.0, 1) == 100.0
    assert cpu_percent(dom(5), dom(0), 1.0, 1) == 0.0  # counter reset after a restart
    assert cpu_percent(dom(0), dom(0, DomainState.SHUT_OFF), 1.0, 1) is None
    assert cpu_percent(dom(0), dom(1), 0.0, 1) is None


def test_fleet_rates_and_history():
    fleet = Fleet(["test:///a"])
    host = Host(uri="test:///a", cpus=2, state=ConnectionState.CONNECTED)
    fleet.apply(HostSnapshot(host, (dom(0),), taken_at=10.0))
    assert fleet.domain_rows()[0].cpu_percent is None
    fleet.apply(HostSnapshot(host, (dom(1_000_000_000),), taken_at=11.0))
    assert fleet.domain_rows()[0].cpu_percent == 50.0
    assert fleet.history("test:///a", "u")[0] == [50.0]
    fleet.set_host(Host(uri="test:///a", state=ConnectionState.ERROR, last_error="down"))
    assert fleet.domain_rows() == []  # a host in error shows no stale domains
