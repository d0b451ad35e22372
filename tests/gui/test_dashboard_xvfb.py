"""A real window: ``qupdaq up`` (not headless) on an X server, photographed from the screen.

The test starts Xvfb itself (``-displayfd``: it says which display once it is
ready), runs ``qupdaq up CONFIG`` with ``DISPLAY`` set so that the dashboard
is one of the children (``up`` waits for its ``dashboard ready`` line), grabs
the X screen once the window shows the lab's numbers, and stops everything
with Ctrl-C. ``.ci/run`` installs Xvfb and the X libraries Qt needs.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gui.conftest import ARTIFACTS, write_config
from tests.procs import ROOT, qupdaq, sim_lab_config

#: Grabs the X screen until the dashboard's numbers are drawn (bright pixels on the dark
#: palette), then saves it: the picture is taken when the window is ready, not after a sleep.
GRAB = """
import sys
from PySide6 import QtCore, QtGui, QtWidgets
app = QtWidgets.QApplication([])
path, deadline = sys.argv[1], QtCore.QDeadlineTimer(60000)
while not deadline.hasExpired():
    image = QtGui.QGuiApplication.primaryScreen().grabWindow(0).toImage()
    bright = sum(1 for y in range(0, image.height(), 4) for x in range(0, image.width(), 4)
                 if QtGui.QColor(image.pixel(x, y)).lightness() > 200)
    if bright > 600:  # the five stage temperatures in large type (labels alone: ~250)
        image.save(path)
        print(f"grabbed {image.width()}x{image.height()} bright={bright}", flush=True)
        sys.exit(0)
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(500, loop.quit)
    loop.exec()
sys.exit(f"the screen never showed the dashboard's numbers (bright={bright})")
"""


@pytest.fixture
def display() -> Iterator[str]:
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (.ci/run installs it)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", "1920x1080x24",
                             "-nolisten", "tcp"], pass_fds=(write_fd,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    try:
        ready, _, _ = select.select([read_fd], [], [], 30)
        number = os.read(read_fd, 64).decode().strip() if ready else ""
        assert number.isdigit(), "Xvfb did not say which display it serves"
        yield f":{number}"
    finally:
        os.close(read_fd)
        proc.terminate()
        proc.wait(10)


def test_qupdaq_up_opens_the_dashboard_in_a_real_window(display: str, tmp_path: Path) -> None:
    path, _, data = sim_lab_config(tmp_path, time_scale=50.0)
    write_config(path, data)  # the overview's stages in the config's order
    env = {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
           "QUPDAQ_DASHBOARD_SETTINGS": str(tmp_path / "dashboard.ini")}
    up = qupdaq("up", str(path), env=env)
    try:
        up.wait_line("qupdaq up: everything is running", timeout_s=150)
        assert "dashboard ready" in up.wait_line("  dashboard ", timeout_s=10)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        target = ARTIFACTS / "xvfb_screen.png"
        grab = subprocess.run([sys.executable, "-c", GRAB, str(target)], cwd=ROOT,
                              env={**os.environ, **env}, capture_output=True, text=True,
                              timeout=120)
        assert grab.returncode == 0, grab.stdout + grab.stderr
        assert target.stat().st_size > 20_000
    finally:
        up.proc.send_signal(signal.SIGINT)
        code = up.proc.wait(timeout=60)
    assert code == 0, "\n".join(up.lines[-30:])
    assert "[dashboard] dashboard stopped" in up.lines
