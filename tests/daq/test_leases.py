"""Exclusive control: a run's lease refuses others' changes with its name; reads still work."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from daq.daemon.config import ControlEndpointConfig, LimitConfig
from daq.daemon.leases import LeaseTable
from daq.errors import ControlError, NotPermitted
from tests.daq.test_worker_control import ControlRig


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_lease_holds_until_released_or_expired_and_renewal_extends_it() -> None:
    clock = Clock()
    table = LeaseTable(clock)
    lease = table.grant("run 'iv-0042' by alice", ["tes1/bias_voltage"], ttl_s=10)
    table.check("tes1/bias_voltage", lease.token)  # the holder may
    table.check("fridge1/mxc_setpoint", None)  # not leased: anyone may
    with pytest.raises(NotPermitted, match="tes1/bias_voltage is held by run 'iv-0042' by alice"):
        table.check("tes1/bias_voltage", None)
    with pytest.raises(NotPermitted, match="already held by run 'iv-0042'"):
        table.grant("someone else", ["tes1/bias_voltage", "tes1/squid_bias"], ttl_s=10)
    clock.t = 8.0
    table.renew(lease.token)
    clock.t = 17.0  # 9 s after the renewal: still held
    with pytest.raises(NotPermitted):
        table.check("tes1/bias_voltage", None)
    clock.t = 18.5  # a crashed run stops renewing: the lease lapses
    table.check("tes1/bias_voltage", None)
    with pytest.raises(NotPermitted, match="expired or was released"):
        table.renew(lease.token)
    second = table.grant("run 'rt-7'", ["tes1/bias_voltage"], ttl_s=5)
    assert table.release(second.token) is not None
    table.check("tes1/bias_voltage", None)
    with pytest.raises(NotPermitted, match="ttl_s"):
        table.grant("x", ["a/b"], ttl_s=0.1)


@pytest.fixture
def control() -> Iterator[ControlRig]:
    rig = ControlRig(ControlEndpointConfig(bind="tcp://127.0.0.1:0"),
                     {"fridge1/mxc_setpoint": LimitConfig(min=0, max=0.8, unit="K")})
    yield rig
    rig.close()


def test_sets_on_a_leased_target_are_refused_with_the_runs_name(control: ControlRig) -> None:
    with control.client() as run, control.client() as other:
        with run.lease(["fridge1/mxc_setpoint"], holder="run 'rt-sweep-3' (alice)",
                       ttl_s=30) as lease:
            assert run.set("fridge1/mxc_setpoint", 0.1) == 0.1  # carries its lease
            with pytest.raises(ControlError, match="fridge1/mxc_setpoint is held by run "
                                                   "'rt-sweep-3' \\(alice\\)"):
                other.set("fridge1/mxc_setpoint", 0.5)
            assert other.get("fridge1/mxc_setpoint") == 0.1  # reads work
            assert other.set("fridge1/heater_range", 1) == 1  # other targets are free
            leases = other.request("list")["leases"]
            assert leases[0]["holder"] == "run 'rt-sweep-3' (alice)"
            assert "token" not in leases[0] and lease.token not in str(leases)
            lease.renew()
        assert other.set("fridge1/mxc_setpoint", 0.5) == 0.5  # released
    assert ("setpoint", 0.5) in control.instrument.sets
    audits = control.audits()
    assert any(a.meta["op"] == "lease" and a.meta["outcome"] == "ok" for a in audits)
    assert all(lease.token not in str(a.meta) for a in audits)  # the token stays secret
