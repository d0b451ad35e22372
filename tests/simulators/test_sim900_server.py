"""SIM900 mainframe with SIM928 and SIM921, byte for byte over a raw socket."""

from __future__ import annotations

import pytest

from simulators.servers.base import RECEIVED_KEPT
from simulators.servers.sim900 import SIM921, SIM928, SIM900Server
from tests.simulators.detector_client import RawClient, wait_until

CRLF = b"\r\n"


@pytest.fixture
def lab():
    """A mainframe with a SIM928 (port 1) and a SIM921 (port 3) on a settable temperature."""
    bias_log: list[float] = []
    temperature = {"t": 0.020}
    source = SIM928(r_bias=10e3, on_bias_change=bias_log.append)
    bridge = SIM921(temperature=lambda: temperature["t"], seed=1)
    server = SIM900Server({1: source, 3: bridge}).start()
    client = RawClient(server.port)
    yield server, client, source, bridge, bias_log, temperature
    client.close()
    server.stop()


def module_query(client: RawClient, port: int, text: str) -> bytes:
    """SNDT a query, then GETN? its answer; returns the block's payload."""
    client.send(f'SNDT {port},"{text}"\n')
    reply = client.query(f"GETN? {port},128\n", terminator=CRLF + CRLF)
    assert reply.startswith(b"#3")
    length = int(reply[2:5])
    payload = reply[5 : 5 + length]
    assert reply[5 + length :] == CRLF  # the mainframe's own terminator after the block
    return payload


def test_mainframe_idn(lab):
    _server, client, *_ = lab
    assert client.query("*IDN?\n", CRLF) == b"Stanford_Research_Systems,SIM900,s/n152417,ver3.6\r\n"


def test_getn_block_is_byte_exact(lab):
    _server, client, *_ = lab
    client.send('SNDT 1,"*IDN?"\n')
    idn = b"Stanford_Research_Systems,SIM928,s/n012345,ver2.2\r\n"
    expected = b"#3" + f"{len(idn):03d}".encode() + idn + CRLF
    assert client.query("GETN? 1,128\n", CRLF + CRLF) == expected


def test_getn_empty_and_partial_reads(lab):
    _server, client, *_ = lab
    assert client.query("GETN? 1,128\n", CRLF) == b"#3000\r\n"
    client.send('SNDT 1,"BATS?"\n')
    assert client.query("NINP? 1\n", CRLF) == b"7\r\n"  # "1,3,0\r\n"
    assert client.query("GETN? 1,3\n", CRLF) == b"#3003" + b"1,3" + CRLF
    assert client.query("GETN? 1,10\n", CRLF + CRLF) == b"#3004,0\r\n\r\n"


def test_flsh_clears_port_queues(lab):
    _server, client, *_ = lab
    client.send('SNDT 1,"VOLT?"\nSNDT 3,"RANG?"\n')
    assert client.query("NINP? 3\n", CRLF) == b"3\r\n"
    client.send("FLSH 1\n")
    assert client.query("NINP? 1\n", CRLF) == b"0\r\n"
    assert client.query("NINP? 3\n", CRLF) == b"3\r\n"
    client.send("FLSH\n")
    assert client.query("NINP? 3\n", CRLF) == b"0\r\n"


def test_sim928_voltage_output_and_bias_current(lab):
    _server, client, source, _bridge, bias_log, _t = lab
    assert module_query(client, 1, "VOLT?") == b"+0.000\r\n"
    client.send('SNDT 1,"VOLT 2.5"\n')
    assert module_query(client, 1, "VOLT?") == b"+2.500\r\n"
    assert module_query(client, 1, "EXON?") == b"0\r\n"
    assert source.bias_current() == 0.0
    client.send('SNDT 1,"OPON"\n')
    assert module_query(client, 1, "EXON?") == b"1\r\n"
    assert source.bias_current() == pytest.approx(2.5 / 10e3)
    assert bias_log[-1] == pytest.approx(2.5e-4)
    client.send('SNDT 1,"VOLT -1.23456"\n')
    assert module_query(client, 1, "VOLT?") == b"-1.235\r\n"  # 1 mV resolution
    client.send('SNDT 1,"OPOF"\n')
    assert module_query(client, 1, "EXON?") == b"0\r\n"
    assert bias_log[-1] == 0.0


def test_sim928_refuses_out_of_range_and_reports_it(lab):
    _server, client, source, *_ = lab
    client.send('SNDT 1,"VOLT 1.0"\n')
    client.send('SNDT 1,"VOLT 25"\n')
    assert module_query(client, 1, "VOLT?") == b"+1.000\r\n"
    assert module_query(client, 1, "LEXE?") == b"1\r\n"
    assert module_query(client, 1, "LEXE?") == b"0\r\n"
    assert source.voltage == 1.0


def test_sim928_battery_and_idn(lab):
    _server, client, *_ = lab
    assert module_query(client, 1, "BATS?") == b"1,3,0\r\n"
    assert module_query(client, 1, "*IDN?").startswith(b"Stanford_Research_Systems,SIM928,")


def test_sim928_several_commands_in_one_sndt(lab):
    _server, client, source, *_ = lab
    assert module_query(client, 1, "VOLT 0.75;OPON;VOLT?;EXON?") == b"+0.750\r\n1\r\n"
    assert source.output_on


def test_module_command_errors_are_silent_and_recorded(lab):
    _server, client, *_ = lab
    client.send('SNDT 1,"FOO 3"\n')
    assert client.query("NINP? 1\n", CRLF) == b"0\r\n"
    assert module_query(client, 1, "LCME?") == b"2\r\n"
    client.send('SNDT 1,"VOLT abc"\n')
    assert module_query(client, 1, "LCME?") == b"9\r\n"
    client.send('SNDT 1,"EXON"\n')  # query-only command used as a set
    assert module_query(client, 1, "LCME?") == b"4\r\n"


def test_sim921_reads_the_thermometer(lab):
    _server, client, _source, bridge, _log, temperature = lab
    client.send('SNDT 3,"EXCI 0"\n')  # 3 uV: negligible self-heating
    r = float(module_query(client, 3, "RVAL?"))
    t = float(module_query(client, 3, "TVAL?"))
    assert r == pytest.approx(bridge.resistance_at(0.020), rel=0.01)
    assert t == pytest.approx(0.020, rel=0.01)
    temperature["t"] = 0.050
    assert float(module_query(client, 3, "TVAL?")) == pytest.approx(0.050, rel=0.01)
    reply = module_query(client, 3, "RVAL?")
    assert reply.startswith((b"+", b"-")) and b"E" in reply and reply.endswith(CRLF)


def test_sim921_self_heating_reads_warm_at_high_excitation(lab):
    _server, client, *_ = lab
    client.send('SNDT 3,"EXCI 0"\n')
    cold = float(module_query(client, 3, "TVAL?"))
    client.send('SNDT 3,"EXCI 3"\n')  # 100 uV on ~31 kOhm at 20 mK
    warm = float(module_query(client, 3, "TVAL?"))
    assert warm > 1.2 * cold


@pytest.mark.parametrize(
    ("command", "query", "reply"),
    [
        ("RANG 6", "RANG?", b"6\r\n"),
        ("EXCI 4", "EXCI?", b"4\r\n"),
        ("EXON 0", "EXON?", b"0\r\n"),
        ("EXON ON", "EXON?", b"1\r\n"),
        ("FREQ 27.5", "FREQ?", b"+2.750000E+01\r\n"),
        ("TCON -1", "TCON?", b"-1\r\n"),
        ("TCON 5", "TCON?", b"5\r\n"),
    ],
)
def test_sim921_settings_round_trip(lab, command, query, reply):
    _server, client, *_ = lab
    client.send(f'SNDT 3,"{command}"\n')
    assert module_query(client, 3, query) == reply


def test_sim921_refuses_illegal_settings(lab):
    _server, client, _source, bridge, *_ = lab
    for bad in ("RANG 10", "EXCI 9", "FREQ 100", "TCON 7"):
        client.send(f'SNDT 3,"{bad}"\n')
        assert module_query(client, 3, "LEXE?") == b"1\r\n"
    assert (bridge.range_index, bridge.excitation_index, bridge.time_constant_index) == (7, 2, 2)
    assert bridge.frequency == 15.0


def test_sim921_over_range_reads_overflow(lab):
    _server, client, _source, bridge, *_ = lab
    client.send('SNDT 3,"RANG 3"\n')  # 20 Ohm full scale for a ~31 kOhm sensor
    assert module_query(client, 3, "RVAL?") == b"+9.900000E+37\r\n"
    assert module_query(client, 3, "TVAL?") == b"+9.900000E+37\r\n"
    client.send('SNDT 3,"RANG 8"\n')
    assert float(module_query(client, 3, "RVAL?")) < 1e6
    bridge.sensor_open = True
    assert module_query(client, 3, "RVAL?") == b"+9.900000E+37\r\n"


def test_conn_is_transparent_until_the_escape_string(lab):
    _server, client, *_ = lab
    client.send('CONN 1,"xyz"\n')
    assert client.query("VOLT 1.5;VOLT?\n", CRLF) == b"+1.500\r\n"
    assert client.query("*IDN?\n", CRLF).startswith(b"Stanford_Research_Systems,SIM928")
    # The escape needs no terminator; what follows is for the mainframe again.
    assert client.query("xyz*IDN?\n", CRLF).startswith(b"Stanford_Research_Systems,SIM900")
    client.send('CONN 3,"ESC"\nRANG?\nESC')
    assert client.read_until(CRLF) == b"7\r\n"
    assert client.query("\n*IDN?\n", CRLF).startswith(b"Stanford_Research_Systems,SIM900")


def test_malformed_mainframe_commands_are_ignored_and_the_server_keeps_answering(lab):
    server, client, *_ = lab
    client.send(b'SNDT 9,"VOLT?"\nGETN? x\nWHAT\n\xff\xfe\nSNDT 1,VOLT?\nCONN 7,"q"\n')
    wait_until(lambda: server.ignored >= 5)
    assert client.nothing_within(0.05)
    assert client.query("*IDN?\n", CRLF).startswith(b"Stanford_Research_Systems,SIM900")


def test_split_packets_and_crlf_from_the_client(lab):
    _server, client, *_ = lab
    client.send(b'SNDT 1,"VO')
    client.send(b'LT 3.25"\r\n')
    assert module_query(client, 1, "VOLT?") == b"+3.250\r\n"


def test_each_connection_is_a_host_with_its_own_port_queues(lab):
    server, client, source, *_ = lab
    other = RawClient(server.port)
    try:
        client.send('SNDT 1,"VOLT?"\n')
        assert client.query("NINP? 1\n", CRLF) == b"8\r\n"  # "+0.000\r\n" waits for client
        assert other.query("NINP? 1\n", CRLF) == b"0\r\n"  # ... and not for the other host
        assert other.query("GETN? 1,128\n", CRLF) == b"#3000\r\n"
        other.send('SNDT 1,"VOLT 2.5"\n')  # the module itself is shared
        assert module_query(other, 1, "VOLT?") == b"+2.500\r\n"
        assert source.voltage == 2.5
        # its own, older answer is still waiting for it
        assert client.query("GETN? 1,128\n", CRLF + CRLF) == b"#3008+0.000\r\n\r\n"
        assert module_query(client, 1, "VOLT?") == b"+2.500\r\n"
    finally:
        other.close()


def test_a_slow_module_answers_into_its_queue_later(lab):
    _server, client, _source, bridge, *_ = lab
    bridge.reply_delay_s = 0.2
    client.send('SNDT 3,"RANG?"\n')
    assert client.query("NINP? 3\n", CRLF) == b"0\r\n"  # not yet
    wait_until(lambda: client.query("NINP? 3\n", CRLF) == b"3\r\n")
    assert client.query("GETN? 3,128\n", CRLF + CRLF) == b"#30037\r\n\r\n"


def test_received_commands_are_bounded(lab):
    server, client, *_ = lab
    client.send("FLSH 1\n" * (RECEIVED_KEPT + 200))
    assert client.query("*IDN?\n", CRLF).startswith(b"Stanford_Research_Systems,SIM900")
    assert len(server.received) == RECEIVED_KEPT
    assert server.received[-1] == "*IDN?"
