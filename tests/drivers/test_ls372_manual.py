"""The Model 372 manual's exchanges (tests/manual/lakeshore372.yaml) against the driver and the simulator.

Every exchange is checked twice: the driver sends the manual's query byte for
byte (``expected_protocol``) and makes sense of the manual's reply, or writes
the manual's command (same instruction; see
:func:`tests.drivers.lakeshore_manual.same_command`); the simulator gets the
manual's text over a raw socket and must answer in the manual's format, or
accept the command. A mistake shared by the driver and the simulator cannot
pass both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from drivers.lakeshore.curves import CurveHeader
from drivers.lakeshore.ls372 import LakeShore372
from drivers.lakeshore.ls372_codes import (
    CurveFormat,
    HeaterDisplay,
    HeaterStatus,
    ReadingStatus,
    SensorUnits,
    Tempco,
)
from drivers.lakeshore.ls372_heater import SampleHeaterSetup, SampleZone, WarmupHeaterSetup
from drivers.lakeshore.ls372_inputs import FilterSettings
from drivers.lakeshore.ls372_intype import ControlInputType
from drivers.readings import Quality
from simulators.clock import SimClock
from simulators.physics.fridge import DilutionFridge
from simulators.servers.lakeshore372 import LakeShore372Server
from tests.drivers.lakeshore_manual import (
    RawLine,
    check_driver_command,
    check_driver_query,
    check_simulator,
)
from tests.manual_protocol import ManualExchange, load_manual

MANUAL = load_manual("lakeshore372")
LS = LakeShore372
OPEN = Quality.SENSOR_ERROR | Quality.OVERRANGE

#: Query name -> (driver call, check of what it made of the manual's reply).
QUERIES: dict[str, tuple[Callable[[LS], Any], Callable[[Any], bool]]] = {
    "identity": (lambda ls: ls.identity, lambda i: i[:2] == ["LSCI", "MODEL372"]),
    "kelvin_control_input": (lambda ls: ls.ch_A.kelvin, lambda v: v == 0.012345),
    "resistance_channel": (lambda ls: ls.ch_6.resistance, lambda v: v == 75123.0),
    "excitation_power": (lambda ls: ls.ch_6.excitation_power, lambda v: v == 1.234e-15),
    "reading_status_open": (lambda ls: ls.ch_A.status,
                            lambda s: s == ReadingStatus.CS_OVL | ReadingStatus.R_OVER),
    "kelvin_and_status_chained": (lambda ls: ls.ch_6.kelvin_reading,
                                  lambda r: r.value == 0.012345 and r.ok),
    "resistance_and_status_chained": (lambda ls: ls.ch_A.resistance_reading,
                                      lambda r: r.quality == OPEN
                                      and r.note == "RDGST 017: CS OVL, R.OVER"),
    "scan_query": (lambda ls: ls.scanner, lambda s: (s.channel, s.autoscan) == (6, False)),
    "input_setup_control": (lambda ls: ls.ch_A.input_type,
                            lambda t: t == ControlInputType(1e-9, True, False,
                                                            SensorUnits.KELVIN)),
    "input_setup_channel": (lambda ls: ls.ch_1.input_type,
                            lambda t: t.excitation == 2e-3 and t.resistance_range == 63.2),
    "filter_query": (lambda ls: ls.ch_5.filter, lambda f: f == FilterSettings(True, 10, 2)),
    "frequency_measurement_input": (lambda ls: ls.measurement_frequency, lambda f: f == 9.8),
    "sample_heater_setup": (lambda ls: ls.sample_heater.heater_setup,
                            lambda h: h == SampleHeaterSetup(120.0, HeaterDisplay.CURRENT)),
    "warmup_heater_setup": (lambda ls: ls.warmup_heater.heater_setup,
                            lambda h: h == WarmupHeaterSetup(50.0, 0.63, 0.0,
                                                             HeaterDisplay.CURRENT)),
    "heater_status": (lambda ls: ls.sample_heater.heater_status,
                      lambda s: s == HeaterStatus.OPEN_LOAD),
    "heater_output": (lambda ls: ls.sample_heater.heater_output, lambda v: v == 12.5),
    "zone_query": (lambda ls: ls.sample_heater.zone(1),
                   lambda z: z == SampleZone(0.25, 10, 20, 0, 0, 100e-6, 1.2, False, False)),
    "curve_header_query": (lambda ls: ls.curve_header(21),
                           lambda h: h == CurveHeader("RX-102B", "00011134",
                                                      CurveFormat.LOG_OHM_PER_K, 1.5,
                                                      Tempco.NEGATIVE)),
    "curve_point_query": (lambda ls: ls.curve_point(21, 2), lambda p: p == (0.10191, 470.0)),
}

#: Command name -> (driver call, optional trailing fields the manual's example fills).
COMMANDS: dict[str, tuple[Callable[[LS], Any], int]] = {
    "scan_select": (lambda ls: ls.select_channel(6, autoscan=False), 0),
    "input_setup_control_set": (lambda ls: setattr(ls.ch_A, "input_type", ControlInputType(
        10e-9, False, False, SensorUnits.KELVIN)), 0),
    "filter_example": (lambda ls: setattr(ls.ch_5, "filter", FilterSettings(True, 10, 2)), 0),
    "frequency_control_input": (lambda ls: setattr(ls.ch_A, "excitation_frequency", 13.7), 0),
    "temperature_limit": (lambda ls: setattr(ls.ch_A, "temperature_limit", 0.8), 0),
    "sample_heater_setup_set": (lambda ls: setattr(ls.sample_heater, "heater_setup",
                                                   SampleHeaterSetup(120, HeaterDisplay.POWER)), 0),
    "warmup_heater_setup_set": (lambda ls: setattr(ls.warmup_heater, "heater_setup",
                                                   WarmupHeaterSetup(25, 0, 0.3,
                                                                     HeaterDisplay.CURRENT)), 0),
    "zone_example": (lambda ls: ls.sample_heater.set_zone(
        1, SampleZone(0.25, 10, 20, 0, 0, 100e-6, 1.2, False, False)), 0),
    "curve_header_example": (lambda ls: ls.set_curve_header(21, CurveHeader(
        "RX-102B", "00011134", CurveFormat.LOG_OHM_PER_K, 1.5, Tempco.NEGATIVE)), 0),
    "curve_point_example": (lambda ls: ls.set_curve_point(21, 2, 0.10191, 470.0), 1),
    "curve_delete_example": (lambda ls: ls.write("CRVDEL 21"), 0),
}

def test_every_manual_exchange_is_mapped_to_a_driver_call() -> None:
    assert set(QUERIES) | set(COMMANDS) == set(MANUAL.names())
    assert all(MANUAL[name].is_query for name in QUERIES)
    assert not any(MANUAL[name].is_query for name in COMMANDS)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_driver_sends_the_manuals_query_and_parses_its_reply(name: str) -> None:
    call, check = QUERIES[name]
    check_driver_query(LS, MANUAL[name], call, check)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_driver_writes_the_manuals_command(name: str) -> None:
    call, optional_tail = COMMANDS[name]
    check_driver_command(LS, MANUAL[name], call, optional_tail=optional_tail)


@pytest.fixture(scope="module")
def simulator() -> Iterator[tuple[RawLine, LakeShore372Server]]:
    fridge = DilutionFridge(clock=SimClock(time_scale=0.0))
    server = LakeShore372Server(fridge, seed=3).start()
    client = RawLine(server.port)
    try:
        yield client, server
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("exchange", MANUAL.exchanges, ids=MANUAL.names())
def test_simulator_takes_the_manuals_text_and_answers_in_its_format(
    simulator: tuple[RawLine, LakeShore372Server], exchange: ManualExchange
) -> None:
    client, server = simulator
    check_simulator(client, server, exchange)
