"""What the procedures share: the digitizer's records, the DC level, the SQUID loop,
the trigger, operating points, overbias and waiting for a stable temperature.

**Records.** The daemon polls the digitizer (``tes1/squid_out``) and publishes
every record; a procedure subscribes (:class:`RecordReader`) and uses only
records acquired after its last change: a record counts when its first
sample (``meta.t0``, less the trigger time's uncertainty) is later than the
moment the daemon confirmed the change.

**Triggers.** The generator's second output (wired to the scope's channel 2)
is the trigger for everything that is not a pulse: a fast square wave for
DC levels and V-Phi (a record at once), a frequency unrelated to the photons
for noise (records at random times), and the modulation's own frequency and
phase for dI/dV (every record starts at the same phase of the drive, so
records average in phase and the drive needs no separate recording).

**Flux-locked loop.** The loop locks wherever it is reset; a change of more
than half a flux quantum in one go makes it slip to a neighbouring lock
point. DC measurements therefore step slowly and never reset; AC
measurements reset after each change of operating point.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from daq.analysis.iv import IVResult
from daq.bus import Subscriber
from daq.messages import Message, Quality, now_ns
from daq.runs.engine import Run
from daq.runs.params import OperatingPoint, RecordSetup, Stability
from daq.runs.recipe import TargetUse

log = logging.getLogger(__name__)

#: The trigger generator's square wave for DC records: a period shorter than the shortest
#: stretch the scope searches for a trigger, so every acquisition triggers at once.
DC_TRIGGER_HZ = 50e3
#: Generator output 2 as a trigger: a square wave of this many volts peak to peak.
TRIGGER_VPP = 1.0
#: A thermal overbias tests whether the TES went normal every time the bath warmed this much.
THERMAL_STEP_K = 5e-3


class RecordReader:
    """Fresh records of one digitizer stream, from the live path (a socket of this thread).

    Args:
        run: the run (its lab config and checkpoints).
        stream: ``source/channel`` of the records.
    """

    def __init__(self, run: Run, stream: str) -> None:
        self.run = run
        self.stream = stream
        bus = run.config.bus
        self._sub = Subscriber(bus.subscribe_url, [f"wave/{stream}"],
                               curve=run.config.keys_for("bus"))
        self.period_s = _poll_period(run, stream)
        self.after_ns = now_ns()
        run.record_readers.append(self)

    def close(self) -> None:
        """Close the socket."""
        self._sub.close()

    def mark(self) -> None:
        """From now on only records acquired after this moment count."""
        self.after_ns = now_ns()

    def take(self, count: int, *, timeout_s: float | None = None) -> list[Message]:
        """``count`` records acquired after the last :meth:`mark`.

        Raises:
            TimeoutError: they did not come within ``timeout_s`` (default: generous,
                from the digitizer's poll period).
        """
        wait = timeout_s if timeout_s is not None else max(15.0, 30 * self.period_s * count)
        end = time.monotonic() + wait
        out: list[Message] = []
        while len(out) < count:
            self.run.checkpoint()
            left = end - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{len(out)} of {count} fresh records of {self.stream} "
                                   f"within {wait:.0f} s (is the digitizer triggering?)")
            msg = self._sub.recv(min(left, 0.25))
            if msg is None or msg.data is None:
                continue
            t0 = int(msg.meta.get("t0", msg.t))
            if t0 - int(msg.meta.get("t_uncertainty_ns", 0)) > self.after_ns:
                out.append(msg)
        return out


def _poll_period(run: Run, stream: str) -> float:
    for inst in run.config.instruments.values():
        for poll in inst.poll or []:
            if f"{inst.source}/{poll.channel or poll.spec}" == stream:
                return float(poll.period_s or 1.0)
    return 1.0


@dataclass(frozen=True)
class Level:
    """The DC level of fresh records.

    Attributes:
        mean_v: the mean of the records' means, V.
        std_v: the standard deviation within the records, V (averaged).
        clipped: a record sat at the digitizer's rails.
        lsb_v: the digitizer's step in these records, V (the smallest difference
            between two sample values; the raw count's scale when all were equal).
    """

    mean_v: float
    std_v: float
    clipped: bool
    lsb_v: float


def dc_level(reader: RecordReader, count: int = 1) -> Level:
    """The DC level of the next ``count`` fresh records."""
    records = reader.take(count)
    means = [float(r.volts().mean()) for r in records]
    stds = [float(r.volts().std()) for r in records]
    clipped = any(r.quality & Quality.CLIPPED for r in records)
    return Level(float(np.mean(means)), float(np.mean(stds)), bool(clipped),
                 min(_lsb(r) for r in records))


def _lsb(record: Message) -> float:
    values = np.unique(record.volts())
    if values.size > 1:
        return float(np.min(np.diff(values)))
    return abs(float(record.meta.get("scale", 0.0)))


# ---- settings ---------------------------------------------------------------------------------


def scope_uses(run_wiring_prefix: str, key: str) -> list[TargetUse]:
    """The scope targets every record-taking procedure sets."""
    return [TargetUse(f"{run_wiring_prefix}/{name}", key) for name in (
        "trigger_source", "trigger_level", "trigger_slope", "waveform_points",
        "timebase_scale", "timebase_position", "acquisition_type")]


def setup_scope(run: Run, record: RecordSetup, *, source: str = "CHAN2", level_v: float = 0.0,
                slope: str = "POS", pretrigger_fraction: float = 0.5) -> None:
    """Set the digitizer's record (length, interval, resolution) and trigger."""
    w = run.detector.wiring
    span = record.points * record.sample_interval_s
    run.set(w.scope("acquisition_type"), "HRES" if record.high_resolution else "NORM")
    run.set(w.scope("waveform_points"), record.points)
    run.set(w.scope("timebase_scale"), span / 10.0)
    # The reference is the screen centre: the position puts the trigger at the fraction wanted.
    run.set(w.scope("timebase_position"), span * (0.5 - pretrigger_fraction))
    run.set(w.scope("trigger_source"), source)
    run.set(w.scope("trigger_slope"), slope)
    run.set(w.scope("trigger_level"), level_v)


def trigger_gen_uses(prefix: str, key: str) -> list[TargetUse]:
    """The trigger generator's targets."""
    return [TargetUse(f"{prefix}_configure", key, kind="action"),
            TargetUse(f"{prefix}_output", key)]


def random_trigger_hz(requested_hz: float, record: RecordSetup) -> float:
    """A trigger frequency for records at random times: the one asked for, or a whole
    multiple of it with at least eight edges per record (a digitizer that finds an edge
    at once wastes no acquisitions; any frequency has nothing to do with the photons)."""
    wanted = 8.0 / record.span_s
    return requested_hz * max(1, math.ceil(wanted / requested_hz))


def start_trigger(run: Run, frequency_hz: float) -> None:
    """Generator output 2: a square wave at ``frequency_hz`` (phase 0), output on."""
    w = run.detector.wiring
    run.call(w.trigger_gen("configure"), function="SQU", frequency=frequency_hz,
             amplitude=TRIGGER_VPP, offset=0.0, duty_cycle=50.0, phase=0.0)
    run.set(w.trigger_gen("output"), True)


def squid_uses(prefix_wiring: object, key: str) -> list[TargetUse]:
    """The SQUID loop's targets for a locked measurement."""
    from daq.runs.params import Wiring

    assert isinstance(prefix_wiring, Wiring)
    w = prefix_wiring
    return [TargetUse(w.squid_feedback, key), TargetUse(w.squid_mode, key),
            TargetUse(w.squid_reset, key, kind="action")]


def lock_loop(run: Run, feedback_ohm: float, *, reset: bool = True) -> None:
    """Close the loop with feedback resistor ``feedback_ohm``; reset it (lock here)."""
    w = run.detector.wiring
    run.set(w.squid_mode, "lock")
    run.set(w.squid_feedback, feedback_ohm)
    if reset:
        run.call(w.squid_reset)


def reset_loop(run: Run) -> None:
    """Relock at the present flux (output back to about 0 V)."""
    run.call(run.detector.wiring.squid_reset)


# ---- bias and operating points ---------------------------------------------------------------


def set_bias(run: Run, volts: float) -> None:
    """Set the TES bias voltage."""
    run.set(run.detector.wiring.bias, float(volts))


def bias_for_fraction(iv: IVResult, r_fraction: float, r_bias_ohm: float) -> float:
    """The bias voltage where R = ``r_fraction`` R_n on the I-V's way down (interpolated).

    Raises:
        ValueError: the I-V's transition does not reach that resistance.
    """
    points = iv.transition_points()
    if points.size < 3:
        raise ValueError("the I-V has fewer than 3 points on the transition")
    frac = iv.r_tes_ohm[points] / iv.r_n_ohm
    bias = iv.i_bias_a[points] * r_bias_ohm
    order = np.argsort(frac)
    if not frac[order][0] <= r_fraction <= frac[order][-1]:
        raise ValueError(f"R = {r_fraction:.2f} R_n is not on the I-V's transition "
                         f"({frac.min():.2f} to {frac.max():.2f} R_n)")
    return float(np.interp(r_fraction, frac[order], bias[order]))


def r0_at_bias(iv: IVResult, bias_v: float, r_bias_ohm: float) -> float:
    """The TES resistance at ``bias_v`` on the I-V's way down (interpolated), Ohm."""
    points = iv.transition_points()
    bias = iv.i_bias_a[points] * r_bias_ohm
    order = np.argsort(bias)
    return float(np.interp(bias_v, bias[order], iv.r_tes_ohm[points][order]))


def resolve_bias(point: OperatingPoint, iv: IVResult | None, r_bias_ohm: float) -> float:
    """The bias voltage of an operating point (an I-V is needed for an ``r_fraction``)."""
    if point.bias_v is not None:
        return float(point.bias_v)
    assert point.r_fraction is not None
    if iv is None:
        raise ValueError(f"operating point {point.label()} needs an I-V")
    return bias_for_fraction(iv, point.r_fraction, r_bias_ohm)


def superconducting(run: Run, reader: RecordReader, bias_v: float, feedback_ohm: float) -> bool:
    """Whether the TES is superconducting at ``bias_v`` (measured, not assumed).

    Two nearby biases (2 uA of bias current apart, small enough for the loop
    to follow) give the slope dV_out/dI_bias: on the superconducting branch it
    is about the loop's gain (R_sh / (R_sh + R_par) of the bias goes through
    the TES), anywhere else a few per cent of it at most.
    """
    det = run.detector
    step_v = math.copysign(2e-6 * det.bias_resistor_ohm, bias_v)
    for attempt in range(3):
        levels = []
        for v in (bias_v, bias_v - step_v):
            set_bias(run, v)
            reader.mark()
            levels.append(dc_level(reader, 1))
        set_bias(run, bias_v)
        if not any(level.clipped for level in levels):
            break
        if attempt == 2:
            raise RuntimeError("the loop output stays at the digitizer's rails: the "
                               "superconducting test cannot tell")
        reset_loop(run)  # off the screen: relock here and look again
    slope = (levels[0].mean_v - levels[1].mean_v) / (step_v / det.bias_resistor_ohm)
    gain = det.gain_v_per_a(feedback_ohm)
    log.info("superconducting test at %.3f V: dV/dI_bias = %.4g V/A (loop gain %.4g V/A)",
             bias_v, slope, gain)
    return abs(slope) > 0.35 * abs(gain)


def overbias(run: Run, reader: RecordReader, top_v: float, hold_s: float, feedback_ohm: float,
             *, thermal: Stability | None, bath_k: float) -> None:
    """Drive the TES normal: the top bias, and if it stays superconducting, warm the bath.

    In a device whose critical current the bias cannot reach, only a bath
    above T_c makes it normal; with the bias held, it stays normal when the
    bath cools back (Joule heating keeps it there).

    Raises:
        RuntimeError: still superconducting and no thermal overbias configured.
    """
    set_bias(run, top_v)
    run.wait(hold_s)
    if not superconducting(run, reader, top_v, feedback_ohm):
        return
    if thermal is None:
        raise RuntimeError(f"the TES is superconducting at the overbias {top_v:g} V; give "
                           "iv.thermal_overbias to warm the bath above T_c")
    w = run.detector.wiring
    setpoint = float(run.get(w.mxc_setpoint))  # type: ignore[arg-type]
    heater = float(run.get(w.heater_range))  # type: ignore[arg-type]
    bath_before = latest(run, w.mxc)
    log.info("TES superconducting at %.3f V: warming the bath to %.3f K", top_v, bath_k)
    # The bath leaves its range on purpose: conditions on its thermometers wait meanwhile.
    with run.exempt(w.mxc, w.bath):
        run.set(w.heater_mode, 5)
        run.set(w.heater_range, 0.00316)
        # A setpoint well above: the loop heats at full tilt. The bias lowers the TES's T_c,
        # so it goes normal below bath_k: test every few mK and stop heating once it has.
        run.set(w.mxc_setpoint, min(3.0 * bath_k, 0.3))
        for step_k in np.append(np.arange(bath_before + THERMAL_STEP_K, bath_k,
                                          THERMAL_STEP_K), bath_k):
            wait_for_temperature(run, w.mxc, lambda t=step_k: t, Stability(
                thermal.band_k, 0.0, thermal.timeout_s), above_ok=True)
            if not superconducting(run, reader, top_v, feedback_ohm):
                break
        run.set(w.mxc_setpoint, setpoint)
        run.set(w.heater_range, heater)
        # Back to where the bath was (a setpoint of 0 means: as cold as it gets).
        target = setpoint if setpoint > 0 and heater > 0 else bath_before
        wait_for_temperature(run, w.mxc, lambda: target, thermal, below_ok=True)
    reset_loop(run)
    if superconducting(run, reader, top_v, feedback_ohm):
        raise RuntimeError("the TES is still superconducting after warming the bath")


def latest(run: Run, stream: str, timeout_s: float = 10.0) -> float:
    """The newest good value of a scalar stream (the broker's snapshot, else the next one)."""
    bus = run.config.bus
    sub = Subscriber(bus.subscribe_url, [f"data/{stream}"], snapshot_url=bus.snapshot_url,
                     curve=run.config.keys_for("bus"))
    try:
        for cached in sub.snapshot(f"data/{stream}", timeout_s=2.0):
            if cached.stream == f"data/{stream}" and not cached.quality:
                return cached.value
        end = time.monotonic() + timeout_s
        while (left := end - time.monotonic()) > 0:
            run.checkpoint()
            msg = sub.recv(min(left, 0.25))
            if msg is not None and not msg.quality:
                return msg.value
        raise TimeoutError(f"no value of {stream} within {timeout_s:g} s")
    finally:
        sub.close()


class Commanded:
    """The setpoint a controller commands now, read back (during a ramp it moves).

    Args:
        run: the run.
        target: the setpoint's control target (``fridge1/mxc_setpoint``).
        every_s: read it back at most this often.
    """

    def __init__(self, run: Run, target: str, every_s: float = 0.5) -> None:
        self.run = run
        self.target = target
        self.every_s = every_s
        self._value = math.nan
        self._at = -math.inf

    def __call__(self) -> float:
        now = time.monotonic()
        if now - self._at >= self.every_s:
            self._value = float(self.run.get(self.target))  # type: ignore[arg-type]
            self._at = now
        return self._value


def wait_for_temperature(run: Run, stream: str, target: object, stable: Stability, *,
                         above_ok: bool = False, below_ok: bool = False,
                         until: object = None) -> float:
    """Wait until ``stream`` has been within ``stable.band_k`` of ``target()`` for
    ``stable.hold_s`` (``above_ok``/``below_ok``: beyond the band on that side counts too).

    ``target`` is a callable giving the target now (during a ramp: the setpoint
    commanded at that moment, :class:`Commanded`), so a thermometer following a
    ramp is stable; ``until`` (a callable) must also be true for the time to count
    (e.g. the ramp has arrived).

    Returns:
        The last reading, K.

    Raises:
        TimeoutError: not stable within ``stable.timeout_s``.
    """
    assert callable(target)
    bus = run.config.bus
    sub = Subscriber(bus.subscribe_url, [f"data/{stream}"], snapshot_url=bus.snapshot_url,
                     curve=run.config.keys_for("bus"))
    try:
        start = time.monotonic()
        since: float | None = None
        last = math.nan
        while True:
            run.checkpoint()
            now = time.monotonic()
            if now - start > stable.timeout_s:
                raise TimeoutError(f"{stream} = {last:.5g} K not within {stable.band_k:g} K of "
                                   f"{float(target()):.5g} K for {stable.hold_s:g} s within "
                                   f"{stable.timeout_s:g} s")
            msg = sub.recv(0.25)
            if msg is None or msg.quality:
                continue
            last = msg.value
            error = last - float(target())
            inside = abs(error) <= stable.band_k or (above_ok and error > 0) or (
                below_ok and error < 0)
            if until is not None:
                assert callable(until)
                inside = inside and bool(until())
            if not inside:
                since = None
                continue
            since = since if since is not None else now
            if now - since >= stable.hold_s:
                return last
    finally:
        sub.close()


def go_to_operating_point(run: Run, reader: RecordReader, bias_v: float, top_v: float,
                          hold_s: float, feedback_ohm: float, *,
                          thermal: Stability | None, bath_k: float, settle_s: float) -> None:
    """Overbias, step down to ``bias_v`` (onto the transition from above) and relock there."""
    overbias(run, reader, top_v, hold_s, feedback_ohm, thermal=thermal, bath_k=bath_k)
    set_bias(run, bias_v)
    run.wait(settle_s)
    reset_loop(run)
    reader.mark()
