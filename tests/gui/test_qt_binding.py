"""The installed Qt binding keeps Python's reference counts (PySide6 6.12.0 on Python 3.11
does not: signal connections and pyqtgraph's setData under-count None/True/False, and the
interpreter aborts with "deallocating None" within seconds of a dashboard's life)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import os, sys
os.environ["QT_QPA_PLATFORM"] = "offscreen"
import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets
app = QtWidgets.QApplication([])

class Source(QtCore.QObject):
    plain = QtCore.Signal()
    carrying = QtCore.Signal(object)

source = Source()
source.plain.connect(lambda: None)
source.carrying.connect(lambda value: None)
plot = pg.PlotWidget()
curve = plot.plot()
before = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
for k in range(3000):
    source.plain.emit()
    source.carrying.emit(None)
    if k % 10 == 0:
        curve.setData(np.arange(50.0), np.random.rand(50))
        app.processEvents()
after = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
lost = [b - a for b, a in zip(before, after)]
print("lost", lost)
sys.exit(1 if max(lost) > 100 else 0)
"""


def test_signals_and_plots_keep_the_reference_counts_of_none_true_and_false() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, (
        "the Qt binding loses references to None/True/False (PySide6 6.12.0 on Python 3.11 "
        "does; pyproject.toml pins PySide6-Essentials<6.12):\n" + result.stdout
        + result.stderr[-2000:])
