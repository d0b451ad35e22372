"""A simulated DASTARD: a TES array on DASTARD's ports, in DASTARD's exact formats.

* :class:`~simulators.dastard.server.DastardSim` -- the server (its docstring
  lists the ports, the status messages and the ``SimControl`` methods).
* :class:`~simulators.dastard.config.SimConfig` -- its settings.
* ``python -m simulators.dastard`` -- run it (:mod:`simulators.dastard.__main__`).
"""
