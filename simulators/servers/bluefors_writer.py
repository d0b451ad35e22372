"""Writes a Bluefors-style log directory from the simulated fridge.

The vendor's control software keeps one folder per day, ``YY-MM-DD/`` (year
first), and appends one line per sample to files such as
``CH6 T YY-MM-DD.log``. Inside the files the date is day first and the time
is the site's local wall-clock time without a zone; every line ends with
CR LF. This writer produces the same, from the fridge model, so that the
log reader can be tested against realistic directories:

=====================================  ===================================================
file                                   line
=====================================  ===================================================
``CHn T``/``CHn R``/``CHn P``          ``03-12-24,00:12:10,7.252130e-01`` (K, ohm, W)
``Flowmeter``                          ``03-12-24,00:12:10,1.382000e-01`` (mmol/s)
``maxigauge``                          ``03-12-24,00:12:10,CH1,        ,1,2.75e-07,0,1,``
                                       ``...,CH6,P6,1, 1.50E-2,0,1,`` (name, enabled,
                                       pressure mbar, status, 1; trailing comma)
``Channels``                           ``03-12-24,00:20:10,0,v1,1,v2,0,...,ext,1``
``Status_``                            ``03-12-24,00:20:10,ctrl_pres_ok,1.000000e+00,...``
``Heaters``                            ``03-12-24,00:20:10,a1_u,6.000000e-01,...``
=====================================  ===================================================

Interface: :class:`BlueforsLogWriter` ``(directory, fridge, pressures=None,
*, timezone="UTC", channels=..., ...)``; ``write_sample(when, *, kinds=None,
hold_back=0) -> list[Path]``, ``flush_pending()``, ``kinds``,
``path_for(kind, when)``. ``kinds`` selects which files get a line (leave
one out for a while and it appears late); ``hold_back`` leaves the last
bytes of every line unwritten until the next call (a reader sees a partial
last line, as when it reads while the vendor's software is mid-write).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from simulators.physics.fridge import DilutionFridge
from simulators.physics.gauges import FridgePressures
from simulators.physics.thermometers import Excitation, stage_sensor

DEFAULT_CHANNELS: dict[int, str] = {1: "50k", 2: "4k", 5: "still", 6: "mxc", 9: "cold_plate"}
DEFAULT_GAUGE_NAMES: tuple[str, ...] = ("", "", "", "", "", "P6")
# excitation the vendor's bridge typically uses per stage (voltage mode)
_EXCITATION_V = {"50k": 2e-3, "4k": 200e-6, "still": 63.2e-6, "cold_plate": 20e-6, "mxc": 20e-6}
_OPEN_VALVES_CIRCULATING = {1, 2, 3, 4, 5, 8, 9, 11, 14, 21}


def _old_style(value: float) -> str:
    """The older firmware's pressure format: `` 3.85E+0``, ``-6.00E+0``."""
    if value == 0 or not math.isfinite(value):
        return " 0.00E+0"
    exponent = math.floor(math.log10(abs(value)))
    mantissa = value / 10.0**exponent
    if round(abs(mantissa), 2) >= 10.0:
        mantissa /= 10.0
        exponent += 1
    return f"{mantissa:5.2f}E{exponent:+d}"


class BlueforsLogWriter:
    """Appends samples of the simulated fridge to a Bluefors-style log directory.

    Args:
        directory: the log root; day folders are created under it.
        fridge: the refrigerator model.
        pressures: the pressure model for the maxigauge file (one on the
            same fridge is made when omitted).
        timezone: the site's zone; aware ``when`` values are converted to
            its local wall-clock time.
        channels: thermometer channel number -> fridge stage.
        gauge_names: the six names in the maxigauge file (blank ones are
            written as eight spaces, as the vendor does).
        old_style_gauges: gauges (1-6) whose pressure uses the older
            `` 3.85E+0`` format.
        disabled_gauges: gauges written as disabled (enabled 0, status 4).
        underrange_gauges: gauges written below their range (negative
            value, status 1).
        gauge_statuses: gauge (1-6) -> a MaxiGauge status (1-6) to write for
            it, as the unit reports it: 1 under range (negative value), 2 over
            range (the range limit, 1000 mbar), 3-6 (sensor error, sensor off,
            no sensor, identification error) with 0. Changeable at any time.
    """

    def __init__(
        self,
        directory: str | Path,
        fridge: DilutionFridge,
        pressures: FridgePressures | None = None,
        *,
        timezone: str = "UTC",
        channels: Mapping[int, str] | None = None,
        gauge_names: tuple[str, ...] = DEFAULT_GAUGE_NAMES,
        old_style_gauges: Collection[int] = (6,),
        disabled_gauges: Collection[int] = (),
        underrange_gauges: Collection[int] = (),
        gauge_statuses: Mapping[int, int] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.fridge = fridge
        self.pressures = pressures or FridgePressures(fridge)
        self.zone = ZoneInfo(timezone)
        self.channels = dict(DEFAULT_CHANNELS if channels is None else channels)
        self.gauge_names = gauge_names
        self.old_style_gauges = set(old_style_gauges)
        self.disabled_gauges = set(disabled_gauges)
        self.underrange_gauges = set(underrange_gauges)
        self.gauge_statuses = dict(gauge_statuses or {})
        for gauge, status in self.gauge_statuses.items():
            if not (1 <= gauge <= 6 and 1 <= status <= 6):
                raise ValueError(f"gauge {gauge} status {status}: gauges 1-6, statuses 1-6")
        self._sensors = {n: stage_sensor(stage, n)[0] for n, stage in self.channels.items()}
        self._pending: dict[Path, bytes] = {}
        self._compressor_hours = 12345.0
        self._last_when: datetime | None = None

    @property
    def kinds(self) -> list[str]:
        """Every file kind this writer produces, e.g. ``"CH6 T"``, ``"maxigauge"``."""
        per_channel = [f"CH{n} {q}" for n in sorted(self.channels) for q in ("T", "R", "P")]
        return [*per_channel, "maxigauge", "Flowmeter", "Channels", "Status", "Heaters"]

    def local_time(self, when: datetime) -> datetime:
        """``when`` as the site's wall-clock time (naive values are taken as already local)."""
        if when.tzinfo is None:
            return when
        return when.astimezone(self.zone).replace(tzinfo=None)

    def path_for(self, kind: str, when: datetime) -> Path:
        """The file a line of ``kind`` at ``when`` goes to."""
        day = self.local_time(when).strftime("%y-%m-%d")
        name = f"Status_{day}.log" if kind == "Status" else f"{kind} {day}.log"
        return self.directory / day / name

    def flush_pending(self) -> None:
        """Write the held-back ends of lines (completes partial last lines)."""
        for path, rest in self._pending.items():
            with path.open("ab") as handle:
                handle.write(rest)
        self._pending.clear()

    def write_sample(
        self,
        when: datetime,
        *,
        kinds: Collection[str] | None = None,
        hold_back: int = 0,
    ) -> list[Path]:
        """Append one line per file kind for the fridge's present state, stamped ``when``.

        Args:
            when: the sample time (aware, or naive local time).
            kinds: which files to write (default all of :attr:`kinds`).
            hold_back: leave this many bytes at the end of each line unwritten
                until the next call or :meth:`flush_pending`.

        Returns:
            The files written to.
        """
        self.flush_pending()
        local = self.local_time(when)
        stamp = local.strftime("%d-%m-%y,%H:%M:%S")
        lines = self._lines(when)
        written = []
        for kind in self.kinds if kinds is None else kinds:
            if kind not in lines:
                raise KeyError(f"unknown Bluefors log kind {kind!r}; known: {', '.join(lines)}")
            data = f"{stamp},{lines[kind]}\r\n".encode("ascii")
            path = self.path_for(kind, when)
            path.parent.mkdir(parents=True, exist_ok=True)
            cut = len(data) - max(0, min(hold_back, len(data)))
            with path.open("ab") as handle:
                handle.write(data[:cut])
            if cut < len(data):
                self._pending[path] = data[cut:]
            written.append(path)
        return written

    # ---- line contents (everything after the date and time) ----------------------------------

    def _lines(self, when: datetime) -> dict[str, str]:
        with self.fridge.lock:
            temps = self.fridge.temperatures
            ndot = self.fridge.circulation_mol_s
            still_w = self.fridge.heater("still")
            mxc_w = self.fridge.heater("mxc")
            circulating = self.fridge.circulating
            pulse_tube = self.fridge.pulse_tube_on
            pressures = self.pressures.pressures_mbar()
        if self._last_when is not None and circulating:
            self._compressor_hours += max(0.0, (when - self._last_when).total_seconds()) / 3600
        self._last_when = when
        lines: dict[str, str] = {}
        for number, stage in sorted(self.channels.items()):
            excitation = Excitation("voltage", _EXCITATION_V.get(stage, 20e-6))
            reading = self._sensors[number].measure(temps[stage], excitation)
            lines[f"CH{number} T"] = f"{temps[stage]:.6e}"
            lines[f"CH{number} R"] = f"{reading.clean:.6e}"
            lines[f"CH{number} P"] = f"{reading.power_w:.6e}"
        lines["Flowmeter"] = f"{ndot * 1e3:.6e}"
        lines["maxigauge"] = self._maxigauge(pressures)
        lines["Channels"] = self._channels(circulating, pulse_tube)
        lines["Status"] = self._status(circulating)
        lines["Heaters"] = self._heaters(still_w, mxc_w)
        return lines

    def _maxigauge(self, pressures: list[float]) -> str:
        groups = []
        for index, pressure in enumerate(pressures):
            gauge = index + 1
            name = self.gauge_names[index] if index < len(self.gauge_names) else ""
            name = name or " " * 8
            enabled, status, value = 1, 0, pressure
            forced = self.gauge_statuses.get(gauge)
            if gauge in self.disabled_gauges:
                enabled, status, value = 0, 4, 0.0
            elif gauge in self.underrange_gauges or forced == 1:
                status, value = 1, -6.0
            elif forced == 2:
                status, value = 2, 1000.0
            elif forced is not None:
                status, value = forced, 0.0
            text = _old_style(value) if gauge in self.old_style_gauges else f"{value:.2e}"
            groups.append(f"CH{gauge},{name},{enabled},{text},{status},1")
        return ",".join(groups) + ","

    def _channels(self, circulating: bool, pulse_tube: bool) -> str:
        pairs = [
            (f"v{n}", int(circulating and n in _OPEN_VALVES_CIRCULATING)) for n in range(1, 24)
        ]
        pairs += [
            ("turbo1", int(circulating)),
            ("turbo2", 0),
            ("scroll1", int(circulating)),
            ("scroll2", 0),
            ("compressor", int(circulating)),
            ("pulsetube", int(pulse_tube)),
            ("hs-still", 0),
            ("hs-mc", 0),
            ("ext", 1),
        ]
        return "0," + ",".join(f"{key},{value}" for key, value in pairs)

    def _status(self, circulating: bool) -> str:
        run = 1.0 if circulating else 0.0
        values = [
            ("ctrl_pres_ok", 1.0),
            ("cpastate", 3.0 if circulating else 0.0),
            ("cparun", run),
            ("cpawarn", -0.0),  # the vendor's files do carry negative zeros
            ("cpaerr", 0.0),
            ("cpatempwi", 18.59667),
            ("cpatempwo", 29.6 if circulating else 19.0),
            ("cpatempo", 41.2 if circulating else 19.5),
            ("cpatemph", 61.5 if circulating else 20.0),
            ("cpalp", 98.2 if circulating else 230.0),
            ("cpalpa", 97.5 if circulating else 230.0),
            ("cpahp", 323.1992 if circulating else 230.0),
            ("cpahpa", 322.4 if circulating else 230.0),
            ("cpadp", 225.0 if circulating else 0.0),
            ("cpacurrent", 28.4 if circulating else 0.0),
            ("cpahours", self._compressor_hours),
            ("tc400actualspd", 820.0 * run),
            ("tc400setspdatt", run),
            ("tc400errorcode", 0.0),
            ("tc400ovtempelec", 0.0),
            ("tc400ovtemppump", 0.0),
            ("tc400heating", 0.0),
            ("tc400pumpaccel", 0.0),
            ("tc400drvpower", 16.0 * run),
        ]
        return ",".join(f"{key},{value:.6e}" for key, value in values)

    def _heaters(self, still_w: float, mxc_w: float) -> str:
        still_ohm = 120.0
        values = [
            ("a1_u", math.sqrt(still_w * still_ohm)),
            ("a1_r_lead", 48.0),
            ("a1_r_htr", still_ohm),
            ("a2_u", 0.0),
            ("a2_r_lead", 48.0),
            ("a2_r_htr", 1000.0),
            ("htr", mxc_w),
            ("htr_range", 0.0 if mxc_w == 0 else 5.0),
        ]
        return ",".join(f"{key},{value:.6e}" for key, value in values)
