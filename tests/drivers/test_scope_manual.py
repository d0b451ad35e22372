"""The InfiniiVision exchanges transcribed from the programmer's guide, on both sides.

Driver side: the driver call named by each exchange sends exactly the
guide's command and parses the guide's example reply (``expected_protocol``).
Simulator side: the same command over a raw socket gets a reply in the
guide's format (the exchange's pattern), and a command without reply leaves
the error queue empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pymeasure.test import expected_protocol

from drivers.keysight.infiniivision import (
    AcquisitionMode,
    AcquisitionType,
    ByteOrder,
    Coupling,
    Impedance,
    InfiniiVision,
    PointsMode,
    TriggerSlope,
    TriggerSweep,
    WaveformFormat,
)
from drivers.keysight.waveform import PreambleFormat, RecordType
from simulators.servers.scope import ScopeServer
from tests.manual_protocol import load_manual
from tests.simulators.detector_client import RawClient

MANUAL = load_manual("infiniivision")


def _get(name: str) -> Callable[[InfiniiVision], Any]:
    return lambda scope: getattr(scope, name)


def _set(name: str, value: Any) -> Callable[[InfiniiVision], Any]:
    return lambda scope: setattr(scope, name, value)


#: Exchange name -> (driver call, what a query's example reply parses to).
QUERIES: dict[str, tuple[Callable[[InfiniiVision], Any], Any]] = {
    "identity": (_get("id"), MANUAL["identity"].reply),
    "operation_complete": (lambda s: s.complete, "1"),
    "options": (_get("options"), "0"),
    "status_byte": (_get("status"), "+1"),
    "operation_condition": (_get("operation_condition"), 8),
    "trigger_event": (_get("trigger_event"), True),
    "acquire_type": (_get("acquisition_type"), AcquisitionType.NORMAL),
    "acquire_count": (_get("acquisition_count"), 8),
    "channel_coupling": (lambda s: s.ch_1.coupling, Coupling.DC),
    "channel_impedance": (lambda s: s.ch_1.impedance, Impedance.ONE_MEGOHM),
    "channel_display": (lambda s: s.ch_1.display, True),
    "channel_scale": (lambda s: s.ch_1.scale, 0.5),
    "channel_offset": (lambda s: s.ch_1.offset, 0.0),
    "timebase_scale": (_get("timebase_scale"), 100e-6),
    "timebase_position": (_get("timebase_position"), 0.0),
    "trigger_source": (_get("trigger_source"), "CHAN1"),
    "trigger_level": (_get("trigger_level"), 0.25),
    "trigger_slope": (_get("trigger_slope"), TriggerSlope.POSITIVE),
    "trigger_sweep": (_get("trigger_sweep"), TriggerSweep.AUTO),
    "waveform_source": (_get("waveform_source"), "CHAN1"),
    "waveform_format": (_get("waveform_format"), WaveformFormat.BYTE),
    "waveform_byteorder": (_get("waveform_byte_order"), ByteOrder.MSB_FIRST),
    "waveform_unsigned": (_get("waveform_unsigned"), True),
    "waveform_points": (_get("waveform_points"), 1000),
    "waveform_points_mode": (_get("waveform_points_mode"), PointsMode.NORMAL),
    "acquire_mode": (_get("acquisition_mode"), AcquisitionMode.REAL_TIME),
    "acquire_segmented_count": (_get("segment_count"), 25),
    "acquire_segmented_index": (_get("segment_index"), 3),
    "waveform_segmented_all": (_get("waveform_all_segments"), False),
    "waveform_segmented_count": (_get("segments_acquired"), 10),
    "waveform_segmented_ttag": (_get("segment_time_tag"), 1.25e-3),
}

COMMANDS: dict[str, Callable[[InfiniiVision], Any]] = {
    "single": lambda s: s.write(":SINGle"),  # single() sends it, then polls (tested apart)
    "run": lambda s: s.run(),
    "stop": lambda s: s.stop(),
    "acquire_type_average": _set("acquisition_type", AcquisitionType.AVERAGE),
    "acquire_count_16": _set("acquisition_count", 16),
    "channel_coupling_ac": lambda s: setattr(s.ch_1, "coupling", "AC"),
    "channel_impedance_fifty": lambda s: setattr(s.ch_1, "impedance", Impedance.FIFTY_OHM),
    "timebase_position_pretrigger": _set("timebase_position", -2e-4),
    "waveform_format_word": _set("waveform_format", WaveformFormat.WORD),
    "waveform_byteorder_lsbf": _set("waveform_byte_order", ByteOrder.LSB_FIRST),
    "waveform_unsigned_off": _set("waveform_unsigned", False),
    "waveform_points_1000": _set("waveform_points", 1000),
    "waveform_points_mode_raw": _set("waveform_points_mode", "RAW"),
    "acquire_mode_segmented": _set("acquisition_mode", AcquisitionMode.SEGMENTED),
    "acquire_segmented_count_100": _set("segment_count", 100),
    "acquire_segmented_index_2": _set("segment_index", 2),
    "waveform_segmented_all_on": _set("waveform_all_segments", True),
}


def test_every_exchange_is_covered() -> None:
    assert set(QUERIES) | set(COMMANDS) | {"waveform_preamble", "waveform_segmented_xlist"} \
        == set(MANUAL.names())
    assert not set(QUERIES) & set(COMMANDS)


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_driver_queries_parse_the_manual_replies(name: str) -> None:
    exchange = MANUAL[name]
    call, expected = QUERIES[name]
    with expected_protocol(InfiniiVision, [(exchange.send, exchange.reply)]) as scope:
        value = call(scope)
    assert value == (pytest.approx(expected) if isinstance(expected, float) else expected)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_driver_commands_are_the_manual_commands(name: str) -> None:
    with expected_protocol(InfiniiVision, [(MANUAL[name].send, None)]) as scope:
        COMMANDS[name](scope)


def test_driver_parses_the_manual_preamble() -> None:
    exchange = MANUAL["waveform_preamble"]
    with expected_protocol(InfiniiVision, [(exchange.send, exchange.reply)]) as scope:
        pre = scope.preamble
    assert pre.format is PreambleFormat.BYTE and pre.type is RecordType.NORMAL
    assert (pre.points, pre.count, pre.y_reference) == (1000, 1, 128)
    assert pre.x_origin == pytest.approx(-5e-4)
    assert pre.post_trigger_s == pytest.approx(5e-4)


def test_driver_parses_the_manual_time_tag_list() -> None:
    exchange = MANUAL["waveform_segmented_xlist"]
    assert exchange.reply is not None
    # The block is read by length, then its line feed (the message terminator).
    with expected_protocol(InfiniiVision,
                           [(exchange.send, exchange.reply.encode() + b"\n")]) as scope:
        assert scope.segment_time_tags() == pytest.approx([0.0, 1.25e-3])


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[ScopeServer, RawClient]]:
    server = ScopeServer(seed=5).start()
    client = RawClient(server.port)
    try:
        yield server, client
    finally:
        client.close()
        server.stop()


@pytest.mark.parametrize("name", [e.name for e in MANUAL.exchanges if e.is_query])
def test_simulator_answers_in_the_manual_format(sim: tuple[ScopeServer, RawClient],
                                                name: str) -> None:
    _server, client = sim
    exchange = MANUAL[name]
    answer = client.query(exchange.send + MANUAL.terminator).decode("ascii").rstrip("\n")
    assert exchange.matches(answer), f"{exchange.send} -> {answer!r}"


@pytest.mark.parametrize("name", [e.name for e in MANUAL.exchanges if not e.is_query])
def test_simulator_takes_the_manual_commands(sim: tuple[ScopeServer, RawClient],
                                             name: str) -> None:
    _server, client = sim
    client.send(MANUAL[name].send + MANUAL.terminator)
    assert client.query(":SYSTem:ERRor?\n") == b'+0,"No error"\n'
    client.send("*RST\n")
