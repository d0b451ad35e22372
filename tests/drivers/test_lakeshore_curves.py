"""Curve upload on both Lake Shore models: pacing, read-back verification, formats (protocol replay)."""

from __future__ import annotations

from typing import Any

import pytest
from pymeasure.test import expected_protocol

from drivers.errors import SettingOutOfRange
from drivers.lakeshore.curves import (
    PACE_S,
    PER_SECOND,
    CurveVerifyError,
    Pacer,
    resolution,
    same_number,
)
from drivers.lakeshore.ls336 import LakeShore336
from drivers.lakeshore.ls372 import LakeShore372
from drivers.lakeshore.ls372_codes import CurveFormat


class FakeTime:
    """A clock that moves only when slept on, recording every sleep."""

    def __init__(self) -> None:
        self.t = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


def no_wait() -> Pacer:
    return Pacer(clock=lambda: 0.0, sleep=lambda s: None, interval_s=0.0, per_second=10**6)


def test_pacer_keeps_50_ms_between_commands_and_20_per_second() -> None:
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep)
    starts = []
    for _ in range(45):
        pacer.wait()
        starts.append(fake.t)
        fake.t += 0.001  # the command itself takes a millisecond
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert min(gaps) >= PACE_S - 1e-9
    for i in range(len(starts) - PER_SECOND):
        assert starts[i + PER_SECOND] - starts[i] >= 1.0 - 1e-9  # never 21 starts in 1 s
    slow = Pacer(interval_s=0.0, per_second=3, clock=fake.clock, sleep=fake.sleep)
    t0 = fake.t
    for _ in range(4):
        slow.wait()
    assert fake.t - t0 == pytest.approx(1.0)  # the fourth waited for the first's second


def test_resolution_and_comparison_follow_the_digits_written() -> None:
    assert resolution("+470.000") == pytest.approx(1e-3)
    assert resolution("+101.910E-03") == pytest.approx(1e-6)
    assert resolution("25000") == 1.0
    assert same_number("0.10191", "+101.910E-03")
    assert same_number("4.87654", "+487.654E-02")
    assert not same_number("4.87654", "+487.655E-02")
    assert same_number("1234.56", "+1234.6")  # a coarser reply is compared at its resolution
    assert not same_number("1234.56", "+1296.3")


POINTS = [(20000.0, 0.01), (1500.0, 4.0), (5000.0, 0.1)]
WRITES = [
    ('CRVHDR 22,"MXC","X1",3,4,1', None),
    ("CRVPT 22,1,1500,4", None),
    ("CRVPT 22,2,5000,0.1", None),
    ("CRVPT 22,3,20000,0.01", None),
    ("CRVPT 22,4,0,0", None),
]
HEADER = ("CRVHDR? 22", "MXC            ,X1        ,3,+004.000,1")


def _reads(points: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(f"CRVPT? 22,{i}", f"{u},{k}") for i, (u, k) in enumerate(points, start=1)]


GOOD = _reads([("+150.000E+01", "+400.000E-02"), ("+500.000E+01", "+100.000E-03"),
               ("+200.000E+02", "+100.000E-04"), ("+000.000E+00", "+000.000E+00")])


def test_upload_writes_paced_then_reads_every_point_back() -> None:
    fake = FakeTime()
    pacer = Pacer(clock=fake.clock, sleep=fake.sleep)
    with expected_protocol(LakeShore372, [*WRITES, HEADER, *GOOD]) as ls:
        header = ls.upload_curve(22, POINTS, name="MXC", serial="X1", pacer=pacer)
    assert header.limit == 4.0
    exchanges = len(WRITES) + 1 + len(GOOD)  # every command and query went through the pacer
    assert len(pacer.starts) == exchanges
    assert sum(fake.sleeps) == pytest.approx((exchanges - 1) * PACE_S)


@pytest.mark.parametrize(
    ("index", "reply", "sent"),
    [
        (2, "+525.000E+01,+100.000E-03", (5000.0, 0.1)),  # a corrupted point
        (3, "+200.000E+02,+100.000E-03", (20000.0, 0.01)),  # a wrong temperature
        (4, "+100.000E+02,+100.000E-04", (0.0, 0.0)),  # an old point where the end should be
    ],
)
def test_a_point_that_does_not_read_back_is_reported(index: int, reply: str, sent: Any) -> None:
    reads = GOOD[: index - 1] + [(f"CRVPT? 22,{index}", reply)]
    with (
        expected_protocol(LakeShore372, [*WRITES, HEADER, *reads]) as ls,
        pytest.raises(CurveVerifyError) as info,
    ):
        ls.upload_curve(22, POINTS, name="MXC", serial="X1", pacer=no_wait())
    err = info.value
    assert (err.curve, err.index, err.sent) == (22, index, sent)
    assert err.read == tuple(float(x) for x in reply.split(","))
    assert f"curve 22 point {index}" in str(err) and err.instrument == "Lake Shore 372"


def test_a_header_that_does_not_read_back_is_reported() -> None:
    with (
        expected_protocol(LakeShore372, [*WRITES, ("CRVHDR? 22", "MXD,X1,3,+004.000,1")]) as ls,
        pytest.raises(CurveVerifyError) as info,
    ):
        ls.upload_curve(22, POINTS, name="MXC", serial="X1", pacer=no_wait())
    assert (info.value.index, info.value.sent, info.value.read) == (0, "MXC", "MXD")


def test_the_336_takes_volt_curves_and_answers_in_its_own_format() -> None:
    diode = [(1.6448, 1.4), (1.0195, 77.35), (0.5596, 300.0)]
    with expected_protocol(
        LakeShore336,
        [
            ('CRVHDR 21,"DT-670","D1",2,300,1', None),
            ("CRVPT 21,1,0.5596,300", None),
            ("CRVPT 21,2,1.0195,77.35", None),
            ("CRVPT 21,3,1.6448,1.4", None),
            ("CRVPT 21,4,0,0", None),
            ("CRVHDR? 21", "DT-670         ,D1        ,2,+300.000,1"),
            ("CRVPT? 21,1", "+0.559600,+300.000"),
            ("CRVPT? 21,2", "+1.01950,+77.3500"),
            ("CRVPT? 21,3", "+1.64480,+1.40000"),
            ("CRVPT? 21,4", "+0.00000,+0.00000"),
        ],
    ) as lc:
        header = lc.upload_curve(21, diode, name="DT-670", serial="D1",
                                 format=CurveFormat.V_PER_K, pacer=no_wait())
    assert header.format == CurveFormat.V_PER_K


@pytest.mark.parametrize(
    ("driver", "fmt"),
    [(LakeShore372, CurveFormat.V_PER_K), (LakeShore372, CurveFormat.MV_PER_K),
     (LakeShore336, CurveFormat.CUBIC_SPLINE)],
)
def test_each_model_refuses_the_formats_it_lacks(driver: type, fmt: CurveFormat) -> None:
    with expected_protocol(driver, []) as inst, pytest.raises(SettingOutOfRange) as info:
        inst.upload_curve(25, [(1.0, 2.0), (2.0, 1.0)], name="x", format=fmt)
    assert info.value.command == "format"


def test_read_curve_is_paced() -> None:
    fake = FakeTime()
    with expected_protocol(
        LakeShore336,
        [("CRVHDR? 2", "DT-670         ,STANDARD  ,2,+500.000,1"), ("CRVPT? 2,1", "+0.09,+500.0"),
         ("CRVPT? 2,2", "+0.00000,+0.00000")],
    ) as lc:
        header, points = lc.read_curve(2, pacer=Pacer(clock=fake.clock, sleep=fake.sleep))
    assert header.serial == "STANDARD" and points == [(0.09, 500.0)]
    assert sum(fake.sleeps) == pytest.approx(2 * PACE_S)
