"""The soak run's short form: the console under churn (actions, outside events, a flapping host)."""

from __future__ import annotations

import pytest

from bench.soak import run_soak

pytestmark = pytest.mark.realstack


def test_short_soak_with_a_real_host_leaks_nothing(realstack):
    result = run_soak(25, real_host=realstack.hosts[0], warmup=8)
    assert result.actions > 50 and result.events >= 10 and result.flaps >= 10  # the churn really happened
    assert result.worker_errors == []
    assert result.thread_growth <= 0 and result.fd_growth <= 0
    assert result.rss_growth <= 0.10
