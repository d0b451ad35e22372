"""The Model 336 manual's exchanges (tests/manual/lakeshore336.yaml) against the driver and the simulator.

As for the 372 (:mod:`tests.drivers.test_ls372_manual`): the driver replays
each query byte for byte and parses the manual's reply, or writes the
manual's command; the simulator gets the manual's text over a raw socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drivers.lakeshore.curves import CurveHeader
from drivers.lakeshore.ls336 import (
    HeaterRange,
    InputStatus,
    InputType336,
    InputUnits,
    LakeShore336,
    SensorType,
)
from drivers.lakeshore.ls372_codes import CurveFormat, HeaterStatus, Tempco
from drivers.readings import Quality
from simulators.clock import SimClock
from simulators.physics.fridge import DilutionFridge
from simulators.servers.lakeshore336 import LakeShore336Server
from tests.drivers.lakeshore_manual import (
    RawLine,
    check_driver_command,
    check_driver_query,
    check_simulator,
)
from tests.manual_protocol import ManualExchange, load_manual

MANUAL = load_manual("lakeshore336")
LC = LakeShore336

QUERIES: dict[str, tuple[Callable[[LC], Any], Callable[[Any], bool]]] = {
    "identity": (lambda lc: lc.identity, lambda i: i[:2] == ["LSCI", "MODEL336"]),
    "kelvin_input": (lambda lc: lc.ch_B.kelvin, lambda v: v == 4.215),
    "kelvin_all_inputs": (lambda lc: lc.kelvins,
                          lambda v: v == [77.35, 4.215, 4.2, 0.0]),
    "reading_status": (lambda lc: lc.ch_D.status, lambda s: s == InputStatus.INVALID_READING),
    "all_inputs_and_status_chained": (
        lambda lc: lc.input_readings,
        lambda r: [x.value for x in r] == [77.35, 4.215, 4.2, 0.0]
        and [x.quality for x in r] == [Quality.OK] * 3 + [Quality.INVALID]),
    "kelvin_and_status_chained": (lambda lc: lc.ch_C.kelvin_reading,
                                  lambda r: r.value == 4.2 and r.ok),
    "input_type_query": (lambda lc: lc.ch_C.input_type,
                         lambda t: t == InputType336(SensorType.NTC_RTD, True, 10.0, False,
                                                     InputUnits.KELVIN)),
    "curve_header_query": (lambda lc: lc.curve_header(21),
                           lambda h: h == CurveHeader("DT-470", "00011134", CurveFormat.V_PER_K,
                                                      325.0, Tempco.NEGATIVE)),
    "curve_point_query": (lambda lc: lc.curve_point(21, 2), lambda p: p == (0.10191, 470.0)),
    "heater_status": (lambda lc: lc.output_1.heater_status, lambda s: s == HeaterStatus.OK),
}

COMMANDS: dict[str, Callable[[LC], Any]] = {
    "input_type_ntc": lambda lc: setattr(lc.ch_C, "input_type", InputType336(
        SensorType.NTC_RTD, False, 10e3, True, InputUnits.KELVIN)),
    "input_type_diode": lambda lc: setattr(lc.ch_A, "input_type", InputType336(
        SensorType.DIODE, False, 10.0, False, InputUnits.KELVIN)),
    "curve_header_example": lambda lc: lc.set_curve_header(21, CurveHeader(
        "DT-470", "00011134", CurveFormat.V_PER_K, 325.0, Tempco.NEGATIVE)),
    "curve_point_example": lambda lc: lc.set_curve_point(21, 2, 0.10191, 470.0),
    "curve_delete_example": lambda lc: lc.write("CRVDEL 21"),
    "heater_range_set": lambda lc: setattr(lc.output_1, "heater_range", HeaterRange.HIGH),
}


def test_every_manual_exchange_is_mapped_to_a_driver_call() -> None:
    assert set(QUERIES) | set(COMMANDS) == set(MANUAL.names())
    assert all(MANUAL[name].is_query for name in QUERIES)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_driver_sends_the_manuals_query_and_parses_its_reply(name: str) -> None:
    call, check = QUERIES[name]
    check_driver_query(LC, MANUAL[name], call, check)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_driver_writes_the_manuals_command(name: str) -> None:
    check_driver_command(LC, MANUAL[name], COMMANDS[name])


@pytest.fixture(scope="module")
def simulator() -> Iterator[tuple[RawLine, LakeShore336Server]]:
    fridge = DilutionFridge(clock=SimClock(time_scale=0.0))
    server = LakeShore336Server(fridge).start()
    client = RawLine(server.port)
    try:
        yield client, server
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("exchange", MANUAL.exchanges, ids=lambda e: e.name)
def test_simulator_takes_the_manuals_text_and_answers_in_its_format(
    simulator: tuple[RawLine, LakeShore336Server], exchange: ManualExchange
) -> None:
    client, server = simulator
    check_simulator(client, server, exchange)
