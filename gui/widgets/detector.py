"""The TES/SQUID view: the live record scope-style, recent pulses, the noise spectrum.

Renders a :class:`~gui.models.detector.DetectorModel`: the newest record of
the SQUID output in volts against µs from the trigger, the trigger level as
a dashed line, the last records faded behind it; the averaged current-noise
spectrum (log-log, A/√Hz); above them the SQUID lock state, the trigger
rate, the TES bias and the record's flags (a clipped record is drawn, and
said to be clipped).
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from daq.messages import is_bad
from gui import theme
from gui.models.detector import DetectorModel, Record
from gui.models.format import Tone, show_value
from gui.models.live import LiveState
from gui.widgets.common import DecadeAxis, SteadyRange, ValueLabel, cache_axes, opaque

#: Records drawn per curve at most: a longer record is decimated min/max for the screen.
MAX_RECORD_POINTS = 4096


def _minmax(x: np.ndarray, y: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-column min/max of a long record (the scope's peak-detect display)."""
    n = len(y)
    if n <= 2 * columns:
        return x, y
    per = n // columns
    m = per * columns
    blocks = y[:m].reshape(columns, per)
    xs = x[:m].reshape(columns, per)
    out_x = np.repeat(xs[:, 0], 2)
    out_y = np.empty(2 * columns)
    out_y[0::2], out_y[1::2] = blocks.min(axis=1), blocks.max(axis=1)
    return out_x, out_y


class DetectorPanel(QtWidgets.QWidget):
    """One detector (see the module docstring)."""

    def __init__(self, model: DetectorModel, live: LiveState,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = model
        self.live = live
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        facts = QtWidgets.QHBoxLayout()
        self.title = QtWidgets.QLabel(model.name)
        self.title.setStyleSheet("font-size: 24px; font-weight: bold;")
        facts.addWidget(self.title)
        self.lock = self._fact(facts, "SQUID", "no records")
        self.rate = self._fact(facts, "Trigger rate", "000.0 /s")
        self.bias = self._fact(facts, "TES bias", "SENSOR FAULT")
        self.flags = self._fact(facts, "Record", "8192 × 500 ns")
        facts.addStretch(1)
        layout.addLayout(facts)

        plots = QtWidgets.QHBoxLayout()
        self.scope = pg.PlotWidget()
        item = self.scope.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.showGrid(x=True, y=True, alpha=0.2)
        item.setLabel("bottom", "time from trigger", units="µs")
        item.setLabel("left", "SQUID output", units="V")
        item.setTitle(f"Live record  {model.view.record}", color=theme.TEXT, size="13pt")
        # Opaque dim lines for the recent records: blending translucent ones costs a frame.
        self.overlays = [item.plot(pen=pg.mkPen("#2b4a60", width=1))
                         for _ in range((model.overlay.maxlen or 8) - 1)]
        self.trace = item.plot(pen=pg.mkPen("#4fc3f7", width=1))
        item.disableAutoRange(axis="y")
        self._y = SteadyRange(0.08)
        self.trigger = pg.InfiniteLine(pos=model.trigger_level_v, angle=0,
                                       pen=pg.mkPen("#ffb74d", width=1,
                                                    style=QtCore.Qt.PenStyle.DashLine),
                                       label=f"trigger {model.trigger_level_v:g} V",
                                       labelOpts={"color": "#ffb74d", "position": 0.05})
        self._trigger_shown = model.trigger_level_v
        item.addItem(self.trigger, ignoreBounds=True)
        self.t0 = pg.InfiniteLine(pos=0.0, angle=90, pen=pg.mkPen(theme.DIM, width=1))
        item.addItem(self.t0, ignoreBounds=True)
        cache_axes(item)
        opaque(self.scope)
        plots.addWidget(self.scope, 3)

        self.psd = pg.PlotWidget(axisItems={"bottom": DecadeAxis("bottom", "Hz"),
                                            "left": DecadeAxis("left", "A")})
        pitem = self.psd.getPlotItem()
        pitem.setMenuEnabled(False)
        pitem.hideButtons()
        pitem.setLogMode(x=True, y=True)
        pitem.showGrid(x=True, y=True, alpha=0.2)
        pitem.setLabel("bottom", "frequency")
        pitem.setLabel("left", "TES current noise (per √Hz)")
        pitem.setTitle("Noise spectrum", color=theme.TEXT, size="13pt")
        self.psd_curve = pitem.plot(pen=pg.mkPen("#81c784", width=2))
        cache_axes(pitem)
        opaque(self.psd)
        plots.addWidget(self.psd, 2)
        layout.addLayout(plots, 1)
        self.psd_note = QtWidgets.QLabel("")
        self.psd_note.setStyleSheet(f"color: {theme.DIM};")
        # Rewritten every second: its text must never ask the layout for a new size.
        self.psd_note.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored,
                                    QtWidgets.QSizePolicy.Policy.Preferred)
        layout.addWidget(self.psd_note)
        self._shown_version = -1
        self._previous: Record | None = None
        self._next_overlay = 0
        self.frames = 0
        self.painted_t_ns = 0

    def _fact(self, layout: QtWidgets.QHBoxLayout, label: str,
              template: str) -> ValueLabel:
        box = QtWidgets.QVBoxLayout()
        name = QtWidgets.QLabel(label)
        name.setStyleSheet(f"color: {theme.DIM}; font-size: 13px;")
        value = ValueLabel(template, px=20)
        box.addWidget(name)
        box.addWidget(value)
        layout.addSpacing(24)
        layout.addLayout(box)
        return value

    @staticmethod
    def _set(label: ValueLabel, text: str, tone: Tone) -> None:
        label.set(text, tone)

    def refresh(self, now_ns: int, now_mono: float) -> None:
        """Draw a new record when one came; update the facts and (when due) the spectrum."""
        model = self.model
        rec = model.record
        if rec is not None and model.version != self._shown_version:
            self._shown_version = model.version
            columns = max(200, min(MAX_RECORD_POINTS // 2, self.scope.width()))
            x, y = _minmax(rec.t_us, rec.volts, columns)
            self.trace.setData(x, y)
            new = self._y.update(float(np.min(y)), float(np.max(y)))
            if new is not None:
                item = self.scope.getPlotItem()
                item.setYRange(*new, padding=0)
            # The record shown until now joins the overlay: one curve is re-used (the
            # oldest), not all of them redrawn.
            if self._previous is not None and self.overlays:
                curve = self.overlays[self._next_overlay % len(self.overlays)]
                self._next_overlay += 1
                ox, oy = _minmax(self._previous.t_us, self._previous.volts, columns)
                curve.setData(ox, oy)
            self._previous = rec
            self.painted_t_ns = rec.t_ns
            self.frames += 1
        if model.trigger_level_v != self._trigger_shown:  # the scope's own setting came
            self._trigger_shown = model.trigger_level_v
            self.trigger.setValue(model.trigger_level_v)
            self.trigger.label.setFormat(f"trigger {model.trigger_level_v:g} V")
        lock_text, lock_tone = model.lock_state(
            self.live.reading(model.view.lock) if model.view.lock else None)
        self._set(self.lock, lock_text, lock_tone)
        rate = model.trigger_rate(now_mono)
        self._set(self.rate, f"{rate:.1f} /s" if model.records else "no records",
                  Tone.GOOD if model.records else Tone.NONE)
        if model.view.bias:
            reading = self.live.reading(model.view.bias)
            shown = show_value(reading, now_ns, stale_after_s=self.live.stale_after_s(
                model.view.bias), publisher_silent=reading is not None
                and self.live.publisher_silent(reading.publisher))
            self._set(self.bias, f"{shown.text} {shown.unit}".strip(), shown.tone)
        else:
            self._set(self.bias, "not in config", Tone.NONE)
        if rec is not None:
            flagged = is_bad(rec.quality)
            text = rec.note or ("CLIPPED" if flagged else f"{len(rec.volts)} × "
                                f"{rec.dt * 1e9:.4g} ns")
            self._set(self.flags, text, Tone.BAD if flagged else Tone.GOOD)
        spectrum = model.spectrum(now_mono)
        if spectrum is not None and len(spectrum.freqs_hz):
            self.psd_curve.setData(spectrum.freqs_hz, spectrum.asd_a_per_rthz)
            self.psd_note.setText(f"Averaged over {spectrum.label} · readout "
                                  f"{model.view.amps_per_volt:g} A/V")
        elif model.spectrum_error:
            self.psd_note.setText(f"No spectrum: {model.spectrum_error}")


class DetectorView(QtWidgets.QWidget):
    """Every detector of the config (one tab each when there are several)."""

    def __init__(self, detectors: dict[str, DetectorModel], live: LiveState,
                 parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.panels = {name: DetectorPanel(model, live) for name, model in detectors.items()}
        if not self.panels:
            note = QtWidgets.QLabel("The config's dashboard section names no detector "
                                    "(dashboard: detectors: ...).")
            note.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
            layout.addWidget(note)
        elif len(self.panels) == 1:
            layout.addWidget(next(iter(self.panels.values())))
        else:
            self.tabs = QtWidgets.QTabWidget()
            for name, panel in self.panels.items():
                self.tabs.addTab(panel, name)
            layout.addWidget(self.tabs)

    def refresh(self, now_ns: int, now_mono: float) -> None:
        for panel in self.panels.values():
            if panel.isVisible():
                panel.refresh(now_ns, now_mono)
