"""SCPI digitizer: command forms, preamble, binary blocks, edge trigger, and the TES pulses."""

from __future__ import annotations

import numpy as np
import pytest
import pyvisa

from simulators.physics.readout import NoiseSource, TESReadout
from simulators.physics.tes import small_signal
from simulators.servers.scope import ScopeServer
from tests.simulators.detector_client import RawClient


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
    source = TESReadout(noise=None, rate=0.0, seed=1)
    server = ScopeServer({1: source}, seed=3).start()
    client = RawClient(server.port)
    yield server, client, source
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
        (":WAV:UNS 1", ":WAV:UNS?", b"1\n"),
        (":WAV:POIN 2000", ":WAV:POIN?", b"2000\n"),
        (":WAV:POIN 10000000", ":WAV:POIN?", b"62500\n"),
        (":WAV:POIN:MODE RAW", ":WAV:POIN:MODE?", b"RAW\n"),
        (":TRIGger:EDGE:SOURce CHAN2", ":TRIG:EDGE:SOUR?", b"CHAN2\n"),
        (":TRIG:EDGE:LEV 0.125", ":TRIGger:EDGE:LEVel?", b"+1.2500000000E-01\n"),
        (":TRIG:EDGE:SLOP NEG", ":TRIG:EDGE:SLOP?", b"NEG\n"),
        (":TRIG:EDGE:SLOPe POSitive", ":TRIG:EDGE:SLOP?", b"POS\n"),
        (":TRIG:SWE NORM", ":TRIG:SWEep?", b"NORM\n"),
        (":TIMebase:SCALe 2e-4", ":TIM:SCAL?", b"+2.0000000000E-04\n"),
        (":TIM:REF LEFT", ":TIMebase:REFerence?", b"LEFT\n"),
        (":CHANnel2:SCALe 0.05", ":CHAN2:SCAL?", b"+5.0000000000E-02\n"),
        (":CHAN1:OFFSet -0.3", ":CHANnel1:OFFS?", b"-3.0000000000E-01\n"),
    ],
)
def test_settings_round_trip_in_every_spelling(scope, command, query, reply):
    _server, client = scope
    client.send(command + "\n")
    assert client.query(query + "\n") == reply


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
    assert f[9] == "+0"
    client.send(":WAV:FORM BYTE;:WAV:UNS 1;:TIM:REF LEFT\n")
    f = preamble(client)
    assert f[0] == "+0" and f[9] == "+128"
    assert float(f[7]) == pytest.approx(8 * 0.5 / 256)
    assert float(f[5]) == pytest.approx(-100 * float(f[4]))
    assert client.query(":WAV:XINC?\n").decode().strip() == f[4]
    assert client.query(":WAV:YREF?\n") == b"+128\n"


def test_data_block_lengths_and_byte_order(scope):
    _server, client = scope
    client.send(":WAV:FORM WORD;:WAV:POIN 500;:SINGle\n")
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
    assert len(read_block(client)) == 500


def test_ascii_data_matches_the_binary_record(scope):
    _server, client = scope
    client.send(":WAV:FORM WORD;:WAV:BYT LSBF;:WAV:POIN 200;:SINGle;:WAV:DATA?\n")
    codes = np.frombuffer(read_block(client), "<i2")
    f = preamble(client)
    volts = (codes - float(f[9])) * float(f[7]) + float(f[8])
    client.send(":WAV:FORM ASCii;:WAV:DATA?\n")
    ascii_volts = np.array([float(x) for x in read_block(client).split(b",")])
    assert np.allclose(ascii_volts, volts, rtol=0, atol=float(f[7]))


def test_single_triggers_on_the_edge_at_the_reference_point(scope):
    _server, client = scope
    client.send(":WAV:FORM WORD;:WAV:BYT LSBF;:WAV:POIN 1000;:TRIG:EDGE:LEV 0.25;:SINGle\n")
    assert client.query(":TER?\n") == b"+1\n"
    assert client.query(":TER?\n") == b"+0\n"  # reading clears it
    client.send(":WAV:DATA?\n")
    codes = np.frombuffer(read_block(client), "<i2")
    f = preamble(client)
    volts = (codes - float(f[9])) * float(f[7]) + float(f[8])
    k = round(-float(f[5]) / float(f[4]))
    assert volts[k - 1] < 0.25 <= volts[k]
    assert volts.max() > 0.5  # the photon pulse itself


def test_negative_slope_triggers_on_a_falling_edge(scope):
    _server, client = scope
    client.send(":WAV:FORM WORD;:WAV:BYT LSBF;:TRIG:EDGE:SLOP NEG;:TRIG:EDGE:LEV 0.4;:SINGle\n")
    assert client.query(":TER?\n") == b"+1\n"
    client.send(":WAV:DATA?\n")
    codes = np.frombuffer(read_block(client), "<i2")
    f = preamble(client)
    volts = (codes - float(f[9])) * float(f[7]) + float(f[8])
    k = round(-float(f[5]) / float(f[4]))
    assert volts[k - 1] > 0.4 >= volts[k]


def test_normal_sweep_without_a_trigger_keeps_waiting(scope):
    server, client = scope
    client.send(":TRIG:SWE NORM;:TRIG:EDGE:LEV 1.9;:SINGle\n")  # above every pulse
    assert client.query(":TER?\n") == b"+0\n"
    assert server.acquisitions == 0
    client.send(":TRIG:SWE AUTO;:SINGle\n")
    assert client.query(":TER?\n") == b"+0\n"  # auto sweep: a record, but no trigger event
    assert client.query("*OPC?\n") == b"1\n"
    assert server.acquisitions == 1


def test_run_gives_fresh_records_and_stop_freezes(scope):
    _server, client = scope
    client.send(":WAV:FORM WORD;:WAV:POIN 300;:RUN\n")
    client.send(":WAV:DATA?\n")
    first = read_block(client)
    client.send(":WAV:DATA?\n")
    second = read_block(client)
    assert first != second
    client.send(":STOP\n")
    client.send(":WAV:DATA?\n")
    third = read_block(client)
    client.send(":WAV:DATA?\n")
    assert read_block(client) == third


def test_over_range_clips_at_the_extreme_codes(scope):
    _server, client = scope
    client.send(":WAV:FORM WORD;:WAV:BYT LSBF;:CHAN1:SCAL 0.01;:TRIG:EDGE:LEV 0.02;:SINGle\n")
    client.send(":WAV:DATA?\n")
    codes = np.frombuffer(read_block(client), "<i2")
    assert codes.max() == 32767  # the pulse is far beyond the screen


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
    client.send(":WAV:POIN 5000;:TIM:SCAL 1e-3;:NOPE\n*RST\n")
    assert client.query(":WAV:POIN?;:TIM:SCAL?\n") == b"1000;+5.0000000000E-05\n"
    client.send("*CLS\n")
    assert client.query(":SYST:ERR?\n") == b'+0,"No error"\n'


def test_pulse_shape_matches_the_tes_and_loop(quiet_scope):
    _server, client, source = quiet_scope
    client.send(":WAV:FORM WORD;:WAV:BYT LSBF;:WAV:POIN 4000;:TIM:SCAL 2e-5;:SINGle\n")
    client.send(":WAV:DATA?\n")
    codes = np.frombuffer(read_block(client), "<i2")
    f = preamble(client)
    volts = (codes - float(f[9])) * float(f[7]) + float(f[8])
    dt = float(f[4])
    expected_peak = source.fll.gain * source.template(dt).min()
    assert volts.max() == pytest.approx(expected_peak, rel=0.05)
    ss = small_signal(source.tes.params, source.tes.state)
    peak = int(np.argmax(volts))
    t = np.arange(volts.size) * dt
    tail = (t > t[peak] + 3 * ss.tau_plus) & (t < t[peak] + 4 * ss.tau_minus)
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
        inst.write(":WAVeform:POINts 1000;:SINGle")
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
        client.send(":WAV:FORM WORD;:WAV:BYT LSBF;:WAV:SOUR CHAN3;:CHAN3:SCAL 0.001;:SINGle\n")
        client.send(":WAV:DATA?\n")
        codes = np.frombuffer(read_block(client), "<i2")
        yinc = float(preamble(client)[7])
        assert np.std(codes * yinc) == pytest.approx(1e-3, rel=0.2)
    finally:
        client.close()
        server.stop()
