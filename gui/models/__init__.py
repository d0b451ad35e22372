"""The dashboard's view models: every decision a screen makes, without Qt (napari's pattern).

The widgets in :mod:`gui` render these models and send the commands they
build; nothing here imports Qt, so each rule is tested headless:

* :mod:`~gui.models.format`: how a value is written and coloured (quality,
  staleness); :class:`~gui.models.format.Tone` is the colour role;
* :mod:`~gui.models.live`: the newest readings, instrument states and
  publisher liveness;
* :mod:`~gui.models.overview`: what a refrigerator's column shows;
* :mod:`~gui.models.series` and :mod:`~gui.models.chart`: live buffers, min/max
  per pixel column, clip to view, gaps, history backfill, cursors, CSV;
* :mod:`~gui.models.detector`: the TES record, overlays, noise spectrum,
  trigger rate, SQUID lock;
* :mod:`~gui.models.control`: which controls, confirmations, request states,
  read-only connections;
* :mod:`~gui.models.alarms` and :mod:`~gui.models.runs`: alarms (ISA-18.2
  states, banner, ack/shelve commands) and measurement runs;
* :mod:`~gui.models.dashboard`: all of them fed from the bus, and the layout
  the window remembers;
* :mod:`~gui.models.workers`: the I/O threads (bus, control, history) that
  keep every socket off the GUI thread.
"""
