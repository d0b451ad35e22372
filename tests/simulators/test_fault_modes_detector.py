"""Faults on demand, as a client of the detector-side simulators sees them."""

from __future__ import annotations

import numpy as np
import pytest

from simulators.servers.base import GARBAGE_REPLY
from simulators.servers.keithley2400 import Keithley2400Server
from simulators.servers.pfl102 import PFL102Server, frame
from simulators.servers.scope import ScopeServer
from simulators.servers.sim900 import SIM900Server
from simulators.servers.sr830 import SR830Server
from tests.simulators.detector_client import RawClient, wait_until


def test_drop_closes_the_connection_and_a_new_one_works():
    with ScopeServer(seed=1) as server:
        client = RawClient(server.port)
        assert client.query("*IDN?\n").startswith(b"KEYSIGHT")
        server.faults.drop = True
        with pytest.raises(ConnectionError):
            client.query("*IDN?\n")
        client.close()
        server.faults.clear()
        again = RawClient(server.port)
        assert again.query("*IDN?\n").startswith(b"KEYSIGHT")
        again.close()


def test_hang_swallows_queries_until_cleared():
    with SIM900Server() as server:
        client = RawClient(server.port)
        server.faults.hang = True
        client.send("*IDN?\n")
        with pytest.raises(TimeoutError):
            client.read_until(b"\r\n", timeout=0.2)
        server.faults.clear()
        assert client.query("*IDN?\n", b"\r\n").startswith(b"Stanford_Research_Systems,SIM900")
        client.close()


def test_garbage_reply_then_recovery():
    with Keithley2400Server() as server:
        client = RawClient(server.port)
        server.faults.garbage = True
        assert client.query(":SYST:ERR?\n") == GARBAGE_REPLY + b"\n"
        server.faults.clear()
        assert client.query(":SYST:ERR?\n") == b'0,"No error"\n'
        client.close()


def test_slow_reply_arrives_late_but_whole():
    with SR830Server(seed=1) as server:
        client = RawClient(server.port)
        server.faults.delay_s = 0.3
        client.send("*IDN?\n")
        with pytest.raises(TimeoutError):
            client.read_until(b"\n", timeout=0.05)
        assert client.read_until(b"\n", timeout=3.0) == (
            b"Stanford_Research_Systems,SR830,s/n12345,ver1.07\n"
        )
        client.close()


def test_sim921_over_range_and_open_sensor():
    with SIM900Server() as server:
        client = RawClient(server.port)
        client.send('SNDT 2,"RANG 2"\nSNDT 2,"RVAL?"\n')
        assert client.query("GETN? 2,64\n", b"\r\n\r\n") == b"#3015+9.900000E+37\r\n\r\n"
        client.send('SNDT 2,"RANG 9"\nSNDT 2,"RVAL?"\n')
        reading = client.query("GETN? 2,64\n", b"\r\n\r\n")
        assert float(reading[5:].strip()) < 1e7
        server.module(2).sensor_open = True  # a broken wire in the fridge
        client.send('SNDT 2,"TVAL?"\n')
        assert client.query("GETN? 2,64\n", b"\r\n\r\n") == b"#3015+9.900000E+37\r\n\r\n"
        client.close()


def test_scope_over_range_is_clipped_data():
    with ScopeServer(seed=2) as server:
        client = RawClient(server.port)
        client.send(":WAV:FORM BYTE;:WAV:UNS 0;:CHAN1:SCAL 0.005;:TRIG:EDGE:LEV 0.01;"
                    ":TRIG:SWE NORM;:DIGitize;:WAV:DATA?\n")
        assert client.read_exact(2) == b"#8"
        payload = client.read_exact(int(client.read_exact(8)) + 1)[:-1]
        codes = np.frombuffer(payload, "i1")
        assert codes.max() == 127
        client.close()


def test_pfl102_survives_binary_junk():
    with PFL102Server() as server:
        client = RawClient(server.port)
        client.send(b"\x00\xff\xfe;;;junk;" + bytes(range(256)) + b";")
        wait_until(lambda: server.malformed >= 3)
        client.send(frame(1, 0x50, 0x0408))
        wait_until(lambda: server.frames == 1)
        assert server.state(1).mode == "locked"
        assert client.nothing_within(0.05)
        client.close()
