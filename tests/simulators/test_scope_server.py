"""SCPI digitizer: command forms, preamble, binary blocks, triggers on real pulses, the 8-bit ADC."""

from __future__ import annotations

import time

import numpy as np
import pytest
import pyvisa

from simulators.physics.readout import NoiseSource, TESReadout
from simulators.physics.tes import small_signal
from simulators.servers.base import RECEIVED_KEPT
from simulators.servers.scope import ScopeServer
from simulators.servers.scope_acquisition import AUTO_TRIGGER_S
from tests.simulators.detector_client import RawClient, wait_until


class ManualClock:
    """A clock the test moves by hand (s)."""

    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def scope():
    """Default scope (TES readout on channel 1) and a raw client."""
    server = ScopeServer(seed=7).start()
    client = RawClient(server.port)
    yield server, client
    client.close()
    server.stop()


@pytest.fixture
def quiet_scope():
    """Scope whose channel 1 is a noise-free TES readout (deterministic pulses)."""
    source = TESReadout(noise=None, seed=1)
    server = ScopeServer({1: source}, seed=3).start()
    client = RawClient(server.port)
    yield server, client, source
    client.close()
    server.stop()


@pytest.fixture
def timed_scope():
    """A noise-free TES readout on a clock the test moves: triggers happen when told."""
    clock = ManualClock()
    source = TESReadout(noise=None, seed=2)
    server = ScopeServer({1: source}, seed=2, clock=clock).start()
    client = RawClient(server.port)
    yield server, client, source, clock
    client.close()
    server.stop()


def read_block(client: RawClient) -> bytes:
    """One IEEE 488.2 ``#8`` block and its newline; returns the payload."""
    head = client.read_exact(2)
    assert head == b"#8"
    length = int(client.read_exact(8))
    payload = client.read_exact(length)
    assert client.read_exact(1) == b"\n"
    return payload


def preamble(client: RawClient) -> list[str]:
    """The ten preamble fields."""
    fields = client.query(":WAVeform:PREamble?\n").decode().strip().split(",")
    assert len(fields) == 10
    return fields


def condition(client: RawClient) -> int:
    return int(client.query(":OPERegister:CONDition?\n"))


def wait_complete(client: RawClient) -> None:
    """Poll the Run bit until the acquisition is complete (the guide's polling method)."""
    for _ in range(5000):
        if not condition(client) & 8:
            return
    raise AssertionError("the acquisition never completed")


def volts_of(client: RawClient) -> np.ndarray:
    """The held record of the present source, as signed WORD, in volts."""
    client.send(":WAV:FORM WORD;:WAV:UNS 0;:WAV:BYT LSBF;:WAV:DATA?\n")
    codes = np.frombuffer(read_block(client), "<i2")
    f = preamble(client)
    return (codes - float(f[9])) * float(f[7]) + float(f[8])


def test_idn_and_opc(scope):
    _server, client = scope
    assert (
        client.query("*IDN?\n") == b"KEYSIGHT TECHNOLOGIES,DSOX3024T,MY00000001,07.50.2021102830\n"
    )
    assert client.query("*OPC?\n") == b"1\n"


@pytest.mark.parametrize(
    ("command", "query", "reply"),
    [
        (":WAVeform:SOURce CHAN2", ":WAV:SOUR?", b"CHAN2\n"),
        (":wav:sour channel3", ":waveform:source?", b"CHAN3\n"),
        (":WAV:FORM WORD", ":WAV:FORM?", b"WORD\n"),
        (":WAVeform:FORMat byte", ":WAV:FORM?", b"BYTE\n"),
        (":WAV:FORM ASC", ":WAV:FORM?", b"ASC\n"),
        (":WAV:BYT LSBFirst", ":WAVeform:BYTeorder?", b"LSBF\n"),
        (":WAV:BYT MSBF", ":WAV:BYT?", b"MSBF\n"),
        (":WAV:UNS 0", ":WAV:UNS?", b"0\n"),
        (":WAV:POIN 2000", ":WAV:POIN?", b"+2000\n"),
        (":WAV:POIN 10000000", ":WAV:POIN?", b"+62500\n"),
        (":WAV:POIN:MODE RAW", ":WAV:POIN:MODE?", b"RAW\n"),
        (":TRIGger:EDGE:SOURce CHAN2", ":TRIG:EDGE:SOUR?", b"CHAN2\n"),
        (":TRIG:EDGE:LEV 0.125", ":TRIGger:EDGE:LEVel?", b"+1.2500000000E-01\n"),
        (":TRIG:EDGE:SLOP NEG", ":TRIG:EDGE:SLOP?", b"NEG\n"),
        (":TRIG:EDGE:SLOPe POSitive", ":TRIG:EDGE:SLOP?", b"POS\n"),
        (":TRIG:EDGE:SLOPe EITHer", ":TRIG:EDGE:SLOP?", b"EITH\n"),
        (":TRIG:SLOP ALT", ":TRIG:EDGE:SLOP?", b"ALT\n"),
        (":TRIG:SWE NORM", ":TRIG:SWEep?", b"NORM\n"),
        (":TIMebase:SCALe 2e-4", ":TIM:SCAL?", b"+2.0000000000E-04\n"),
        (":TIMebase:POSition -2e-4", ":TIM:POS?", b"-2.0000000000E-04\n"),
        (":TIM:MAIN:POS 1.5", ":TIMebase:POSition?", b"+1.5000000000E+00\n"),
        (":TIM:REF LEFT", ":TIMebase:REFerence?", b"LEFT\n"),
        (":ACQuire:TYPE AVERage", ":ACQ:TYPE?", b"AVER\n"),
        (":ACQ:TYPE HRES", ":ACQuire:TYPE?", b"HRES\n"),
        (":ACQ:TYPE PEAK", ":ACQ:TYPE?", b"PEAK\n"),
        (":ACQuire:COUNt 64", ":ACQ:COUN?", b"+64\n"),
        (":CHANnel2:SCALe 0.05", ":CHAN2:SCAL?", b"+5.0000000000E-02\n"),
        (":CHAN1:OFFSet -0.3", ":CHANnel1:OFFS?", b"-3.0000000000E-01\n"),
        (":CHANnel3:COUPling AC", ":CHAN3:COUP?", b"AC\n"),
        (":CHAN2:IMPedance FIFTy", ":CHANnel2:IMP?", b"FIFT\n"),
        (":CHAN2:IMP ONEMeg", ":CHAN2:IMP?", b"ONEM\n"),
        (":CHANnel4:DISPlay ON", ":CHAN4:DISP?", b"1\n"),
    ],
)
def test_settings_round_trip_in_every_spelling(scope, command, query, reply):
    _server, client = scope
    client.send(command + "\n")
    assert client.query(query + "\n") == reply
    assert client.query(":SYST:ERR?\n") == b'+0,"No error"\n'


@pytest.mark.parametrize(
    "command",
    [":ACQ:COUN 1", ":ACQ:COUN 70000", ":TIM:POS 600", ":ACQ:TYPE SMOOTH", ":CHAN1:COUP GND",
     ":CHAN1:IMP 75", ":TRIG:EDGE:LEV 41"],
)
def test_values_the_scope_refuses_queue_an_error(scope, command):
    _server, client = scope
    client.send(command + "\n")
    assert client.query(":SYST:ERR?\n").startswith((b"-222,", b"-224,"))


def test_fifty_ohm_limits_the_scale(scope):
    _server, client = scope
    client.send(":CHAN1:SCAL 2;:CHAN1:IMP FIFT\n")
    assert client.query(":CHAN1:SCAL?\n") == b"+1.0000000000E+00\n"
    client.send(":CHAN1:SCAL 5\n")
    assert client.query(":CHAN1:SCAL?\n") == b"+1.0000000000E+00\n"


def test_chained_commands_and_queries(scope):
    _server, client = scope
    client.send(":WAV:SOUR CHAN1;FORM WORD;:TRIG:EDGE:LEV 0.3\n")
    assert client.query(":WAV:SOUR?;:WAV:FORM?;:TRIG:EDGE:LEV?\n") == (
        b"CHAN1;WORD;+3.0000000000E-01\n"
    )


def test_preamble_describes_the_record(scope):
    _server, client = scope
    client.send(":WAV:FORM WORD;:WAV:POIN 1000;:TIM:SCAL 5e-5;:CHAN1:SCAL 0.5;:CHAN1:OFFS 0.1\n")
    f = preamble(client)
    assert f[:4] == ["+1", "+0", "+1000", "+1"]
    assert float(f[4]) == pytest.approx(10 * 5e-5 / 1000)
    assert float(f[5]) == pytest.approx(-500 * float(f[4]))  # trigger at the centre
    assert f[6] == "+0"
    assert float(f[7]) == pytest.approx(8 * 0.5 / 65536)
    assert float(f[8]) == pytest.approx(0.1)
    assert f[9] == "+32768"  # unsigned after power-on, as the manual's defaults say
    client.send(":WAV:FORM BYTE;:WAV:UNS 0;:TIM:REF LEFT\n")
    f = preamble(client)
    assert f[0] == "+0" and f[9] == "+0"
    assert float(f[7]) == pytest.approx(8 * 0.5 / 256)
    assert float(f[5]) == pytest.approx(-100 * float(f[4]))
    client.send(":TIM:POS 1e-4\n")  # the reference point 100 us after the trigger
    assert float(preamble(client)[5]) == pytest.approx(1e-4 - 50e-6)
    assert client.query(":WAV:XINC?\n").decode().strip() == f[4]
    client.send(":WAV:UNS 1\n")
    assert client.query(":WAV:YREF?\n") == b"+128\n"


def test_data_block_lengths_and_byte_order(scope):
    _server, client = scope
    client.send(":WAV:FORM WORD;:WAV:UNS 0;:WAV:POIN 500;:TRIG:SWE NORM;:DIGitize\n")
    client.send(":WAV:BYT MSBF;:WAV:DATA?\n")
    msb = read_block(client)
    client.send(":WAV:BYT LSBF;:WAV:DATA?\n")
    lsb = read_block(client)
    assert len(msb) == len(lsb) == 1000
    big = np.frombuffer(msb, ">i2")
    little = np.frombuffer(lsb, "<i2")
    assert np.array_equal(big, little)  # stopped: the same record, only the order differs
    assert big.std() > 0
    client.send(":WAV:FORM BYTE;:WAV:DATA?\n")
    assert np.array_equal(np.frombuffer(read_block(client), "i1"), big >> 8)


def test_word_data_is_the_eight_bit_adc_left_aligned(scope):
    _server, client = scope
    client.send(":WAV:FORM WORD;:WAV:UNS 1;:WAV:BYT LSBF;:TRIG:SWE NORM;:DIGitize;:WAV:DATA?\n")
    codes = np.frombuffer(read_block(client), "<u2")
    assert np.all(codes % 256 == 0)
    client.send(":ACQ:TYPE HRES;:DIGitize;:WAV:DATA?\n")
    codes = np.frombuffer(read_block(client), "<u2")
    assert np.all(codes % 16 == 0) and codes.max() <= 65280
    assert preamble(client)[1] == "+3"


def test_ascii_data_matches_the_binary_record(scope):
    _server, client = scope
    client.send(":WAV:FORM WORD;:WAV:UNS 0;:WAV:BYT LSBF;:WAV:POIN 200;:TRIG:SWE NORM;"
                ":DIGitize;:WAV:DATA?\n")
    codes = np.frombuffer(read_block(client), "<i2")
    f = preamble(client)
    volts = (codes - float(f[9])) * float(f[7]) + float(f[8])
    client.send(":WAV:FORM ASCii;:WAV:DATA?\n")
    ascii_volts = np.array([float(x) for x in read_block(client).split(b",")])
    assert np.allclose(ascii_volts, volts, rtol=0, atol=float(f[7]))


def test_single_triggers_on_the_edge_at_the_reference_point(scope):
    _server, client = scope
    client.send(":WAV:POIN 1000;:TRIG:EDGE:LEV 0.25;:SINGle\n")
    wait_complete(client)
    assert client.query(":TER?\n") == b"+1\n"
    assert client.query(":TER?\n") == b"+0\n"  # reading clears it
    volts = volts_of(client)
    f = preamble(client)
    k = round(-float(f[5]) / float(f[4]))
    assert volts[k - 1] < 0.25 <= volts[k]
    assert volts.max() > 0.5  # the photon pulse itself


def test_negative_slope_triggers_on_a_falling_edge(scope):
    _server, client = scope
    client.send(":TRIG:EDGE:SLOP NEG;:TRIG:EDGE:LEV 0.4;:SINGle\n")
    wait_complete(client)
    assert client.query(":TER?\n") == b"+1\n"
    volts = volts_of(client)
    f = preamble(client)
    k = round(-float(f[5]) / float(f[4]))
    assert volts[k - 1] > 0.4 >= volts[k]


def test_a_trigger_waits_for_the_next_photon_and_completes_after_the_record(timed_scope):
    server, client, source, clock = timed_scope
    client.send(":WAV:POIN 1000;:TIM:SCAL 5e-5;:SINGle\n")
    assert client.query(":TRIG:SWE?\n") == b"NORM\n"  # :SINGle waits for a real trigger
    photon = source.next_event(clock.t)
    assert photon is not None and photon > clock.t
    clock.t = photon - 1e-6
    assert condition(client) == 8 + 32  # running, waiting for the trigger
    assert client.query(":TER?\n") == b"+0\n"
    clock.t = photon + 1e-6  # the photon has come: triggered, recording the post-trigger half
    assert condition(client) == 8
    assert client.query(":TER?\n") == b"+1\n"
    held_before = server.engine.record
    clock.t = photon + 250e-6 + 5e-6  # the record ends 250 us after the trigger
    assert condition(client) == 0
    record = server.engine.record
    assert record is not None and record is not held_before and record.triggered
    assert photon < record.trigger_time < photon + 5e-6  # the pulse's rise through the level
    assert record.completed_at == pytest.approx(record.trigger_time + 250e-6)


def test_a_photon_below_the_level_triggers_nothing(timed_scope):
    server, client, source, clock = timed_scope
    client.send(":TRIG:EDGE:LEV 3.5;:CHAN1:SCAL 1;:SINGle\n")  # above every pulse
    client.query("*OPC?\n")  # the scope has taken it before the clock moves
    for _ in range(5):
        clock.t += 1.0
        assert condition(client) == 8 + 32
    assert server.acquisitions == 0
    taken = server.commands
    client.send(":TRIG:SWE AUTO;:DIGitize\n")  # :DIGitize keeps AUTO: an untriggered record
    wait_until(lambda: server.commands > taken)  # armed (it now blocks this connection) ...
    time.sleep(0.05)
    clock.t += 2 * AUTO_TRIGGER_S + 0.001  # ... so the clock moves after the arming
    assert condition(client) == 0
    assert client.query(":TER?\n") == b"+0\n"
    assert server.engine.record is not None and not server.engine.record.triggered


def test_average_waits_for_count_triggers(timed_scope):
    server, client, source, clock = timed_scope
    client.send(":ACQ:TYPE AVER;:ACQ:COUN 3;:SINGle\n")
    client.query("*OPC?\n")
    seen = 0
    for _ in range(200):
        clock.t += 0.02
        if not condition(client) & 8:
            break
        seen = server.acquisitions
    assert seen == 2 and server.acquisitions == 3  # running until the third trigger
    f = preamble(client)
    assert f[1] == "+2" and f[3] == "+3"


def test_peak_detect_sends_min_max_pairs(scope):
    _server, client = scope
    client.send(":ACQ:TYPE PEAK;:WAV:FORM BYTE;:WAV:UNS 1;:DIGitize;:WAV:DATA?\n")
    codes = np.frombuffer(read_block(client), "u1").reshape(-1, 2)
    assert np.all(codes[:, 0] <= codes[:, 1])
    assert preamble(client)[1] == "+1"


def test_running_only_the_measurement_record_is_available(scope):
    server, client = scope
    client.send(":WAV:FORM BYTE;:WAV:POIN 5000;:RUN\n")
    for _ in range(5000):
        if server.acquisitions:
            break
        client.query("*OPC?\n")
    client.send(":WAV:DATA?\n")
    assert len(read_block(client)) == 1000
    client.send(":STOP;:WAV:DATA?\n")
    held = read_block(client)
    assert len(held) == 5000
    client.send(":WAV:DATA?\n")
    assert read_block(client) == held  # stopped: the record stays


def test_no_record_yet_is_an_empty_block_and_an_error(timed_scope):
    _server, client, _source, _clock = timed_scope
    client.send(":STOP;:WAV:DATA?\n")
    assert read_block(client) == b""
    assert client.query(":SYST:ERR?\n") == b'-230,"Data corrupt or stale"\n'


def test_over_range_clips_at_the_adc_rails(scope):
    _server, client = scope
    client.send(":WAV:FORM WORD;:WAV:UNS 0;:WAV:BYT LSBF;:CHAN1:SCAL 0.01;:TRIG:EDGE:LEV 0.02;"
                ":TRIG:SWE NORM;:DIGitize;:WAV:DATA?\n")
    codes = np.frombuffer(read_block(client), "<i2")
    assert codes.max() == 127 << 8  # the pulse is far beyond the screen: the top ADC level


def test_ac_coupling_removes_the_level(scope):
    server, client = scope
    server.sources[2] = NoiseSource(rms=0.01, level=0.3, seed=3)
    server.engine.sources[2] = server.sources[2]
    client.send(":CHAN2:COUP AC;:CHAN2:SCAL 0.1;:WAV:SOUR CHAN2;:DIGitize\n")
    assert abs(volts_of(client).mean()) < 0.005
    client.send(":CHAN2:COUP DC;:DIGitize\n")
    assert volts_of(client).mean() == pytest.approx(0.3, abs=0.005)


def test_errors_are_queued_and_the_server_keeps_answering(scope):
    _server, client = scope
    client.send(":BOGus:COMMand 1\n:WAV:SOUR CHAN9\n:TIM:SCAL banana\n:WAV:POIN?x\n")
    assert client.query(":SYSTem:ERRor?\n") == b'-113,"Undefined header"\n'
    assert client.query(":SYST:ERR?\n") == b'-224,"Illegal parameter value"\n'
    assert client.query(":SYST:ERR?\n") == b'-224,"Illegal parameter value"\n'
    assert client.query(":SYST:ERR?\n") == b'-113,"Undefined header"\n'
    assert client.query(":SYST:ERR?\n") == b'+0,"No error"\n'
    assert client.query(":WAV:SOUR?\n") == b"CHAN1\n"


def test_rst_restores_defaults_and_cls_clears_errors(scope):
    _server, client = scope
    client.send(":WAV:POIN 5000;:TIM:SCAL 1e-3;:ACQ:TYPE AVER;:NOPE\n*RST\n")
    assert client.query(":WAV:POIN?;:TIM:SCAL?;:ACQ:TYPE?;:WAV:UNS?\n") == (
        b"+1000;+5.0000000000E-05;NORM;1\n")
    assert condition(client) & 8  # a reset scope runs
    client.send("*CLS\n")
    assert client.query(":SYST:ERR?\n") == b'+0,"No error"\n'


def test_the_list_of_received_commands_is_bounded(scope):
    server, client = scope
    for _ in range(RECEIVED_KEPT + 10):
        client.send("*CLS\n")
    client.query("*OPC?\n")
    assert len(server.received) == RECEIVED_KEPT
    assert server.commands == RECEIVED_KEPT + 11
    assert server.received[-1] == "*OPC?"


def test_pulse_shape_matches_the_tes_and_loop(quiet_scope):
    _server, client, source = quiet_scope
    client.send(":ACQ:TYPE HRES;:WAV:POIN 4000;:TIM:SCAL 2e-5;:TRIG:SWE NORM;:DIGitize\n")
    volts = volts_of(client)
    dt = float(preamble(client)[4])
    expected_peak = source.fll.gain * source.template(dt).min()
    assert volts.max() == pytest.approx(expected_peak, rel=0.05)
    ss = small_signal(source.tes.params, source.tes.state)
    peak = int(np.argmax(volts))
    t = np.arange(volts.size) * dt
    tail = (t > t[peak] + 3 * ss.tau_plus) & (t < t[peak] + 2.5 * ss.tau_minus)
    slope = np.polyfit(t[tail], np.log(volts[tail]), 1)[0]
    assert -1 / slope == pytest.approx(ss.tau_minus, rel=0.1)


def test_pyvisa_reads_the_waveform_as_a_driver_would(scope):
    server, _client = scope
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(
        server.resource, read_termination="\n", write_termination="\n", timeout=5000
    )
    try:
        inst.write(":WAVeform:SOURce CHAN1;:WAVeform:FORMat WORD;:WAVeform:BYTeorder LSBFirst")
        inst.query(":TER?")  # clear a trigger latched while the scope was running
        inst.write(":WAVeform:UNSigned 0;:WAVeform:POINts 1000;:TRIGger:SWEep NORMal;:DIGitize")
        assert int(inst.query(":TER?")) == 1
        pre = [float(x) for x in inst.query(":WAVeform:PREamble?").split(",")]
        data = inst.query_binary_values(
            ":WAVeform:DATA?", datatype="h", is_big_endian=False, container=np.array
        )
        assert data.size == int(pre[2]) == 1000
        volts = (data - pre[9]) * pre[7] + pre[8]
        assert volts.max() > 0.25
        assert inst.query("*IDN?").startswith("KEYSIGHT")  # the stream stays in step
    finally:
        inst.close()
        rm.close()


def test_missing_channels_carry_noise():
    server = ScopeServer({1: NoiseSource(rms=0.01, seed=1)}, seed=1).start()
    client = RawClient(server.port)
    try:
        # Nothing on channel 1 ever crosses the trigger level: AUTO gives a record anyway.
        client.send(":WAV:FORM WORD;:WAV:UNS 0;:WAV:BYT LSBF;:WAV:SOUR CHAN3;:CHAN3:SCAL 0.001;"
                    ":DIGitize\n")
        client.send(":WAV:DATA?\n")
        codes = np.frombuffer(read_block(client), "<i2")
        yinc = float(preamble(client)[7])
        assert np.std(codes * yinc) == pytest.approx(1e-3, rel=0.2)
    finally:
        client.close()
        server.stop()
