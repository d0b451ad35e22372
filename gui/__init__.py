"""The control-room dashboard (PySide6 + pyqtgraph): renders the lab's messages, sends commands.

``qupdaq dashboard [CONFIG]`` (:mod:`gui.app`) opens :class:`gui.window.DashboardWindow`:
the facility overview, strip charts, the TES/SQUID view, alarms, runs and
controls, laid out by the config's ``dashboard:`` section. Every decision a
screen makes lives in the Qt-free :mod:`gui.models` (tested headless); the
widgets in :mod:`gui.widgets` paint those models and send the commands they
build. ``qupdaq bench gui`` (:mod:`gui.bench`) measures frames per second and
publish-to-paint latency.

Imports point down: ``gui -> daq``; nothing here imports ``drivers`` or
``simulators``, and nothing in ``daq`` imports Qt.
"""
