"""Analysis of TES and SQUID characterisation data: plain numpy and scipy, no I/O.

One concept per module, frozen dataclasses between them:

* :mod:`~daq.analysis.iv` -- I-V curves: TES current and voltage, R, P, R_n,
  parasitic resistance, P_sat, branches and latching.
* :mod:`~daq.analysis.impedance` -- complex impedance (dI/dV) with the
  superconducting / normal calibration and the one-body model fit.
* :mod:`~daq.analysis.transition` -- R(T): T_c and width per sweep direction.
* :mod:`~daq.analysis.squid` -- V-Phi curves: period, amplitude, slope, lock point.
* :mod:`~daq.analysis.noise` -- averaged current-noise spectra with a pulse veto.
* :mod:`~daq.analysis.pulses` -- average pulse, rise and fall times, optimal
  filter and energy resolution.
* :mod:`~daq.analysis.plots` -- one figure per result type (matplotlib, Agg).

Units are SI and carried in field names (``_a``, ``_v``, ``_ohm``, ``_w``,
``_s``, ``_hz``, ``_k``) or stated in docstrings.
"""
