"""Electrothermal model of a voltage-biased transition-edge sensor (Irwin & Hilton 2005).

Circuit: the bias current ``I_bias`` flows through a shunt ``R_sh`` in parallel
with the TES branch (parasitic ``R_par``, inductance ``L``, TES ``R(T, I)``).
Thevenin equivalent: ``V = I_bias R_sh``, load ``R_L = R_sh + R_par``::

    L dI/dt = V - I (R_L + R(T, I))
    C dT/dt = I^2 R(T, I) - K (T^n - T_bath^n) + P_signal
    R(T, I) = (R_n / 2) [1 + tanh((T - T_c + (|I| / A)^(2/3)) / (2 ln2 T_w))]

Interface:

* :class:`TESParams` -- one device; :meth:`TESParams.from_design` builds it from
  the quantities a paper quotes (G, alpha, beta at the operating point),
  solving for the transition width ``T_w`` and current scale ``A``.
  :data:`SET_A` and :data:`SET_B` are the two published designs of
  ``docs/simulators.md``.
* :func:`steady_states` -- every equilibrium at a bias, with its stability;
  :func:`operating_point` -- the one the device relaxes into from a starting
  temperature (so history matters: latching and hysteresis);
  :func:`iv_sweep` -- an I-V curve swept in the given order.
* :class:`TES` -- a stateful device for the simulated lab: ``set_bias()``
  moves it along its branch (bath temperature from a callable).
* :func:`small_signal` -> :class:`SmallSignal` (alpha, beta, G, loop gain,
  tau, tau_I, tau_el, tau_+, tau_-); :func:`small_signal_pulse` -- the
  analytic pulse; :func:`simulate_pulse` -- the same pulse by time-domain
  integration of both equations (implicit trapezoidal rule, A-stable).
* :class:`NoiseModel` / :func:`noise_psd` -- one-sided current noise at the
  TES: Johnson (TES and load), phonon ``4 k_B T^2 G F`` and SQUID
  (white + 1/f); :func:`noise_trace` -- a time series with that PSD.
* :func:`tes_impedance` -- Z_TES(omega); :func:`bias_current_response` --
  dI_TES/dI_bias; :func:`periodic_response` and :func:`simulate_bias_modulation`
  -- the TES current under a bias modulation, linear and by time integration.

The implementation lives in four modules (device and steady state:
:mod:`~simulators.physics.tes_device`; small signal and pulses:
:mod:`~simulators.physics.tes_response`; noise:
:mod:`~simulators.physics.tes_noise`; bias modulation:
:mod:`~simulators.physics.tes_modulation`); import everything from here.

Units: SI throughout (K, Ohm, A, W, J, s, H, A^2/Hz).
"""

from simulators.physics.tes_device import (
    EV,
    K_B,
    SET_A,
    SET_A_30NH,
    SET_B,
    TES,
    Branch,
    IVCurve,
    OperatingPoint,
    TESParams,
    bias_for_resistance,
    iv_sweep,
    operating_point,
    resistance,
    resistance_partials,
    steady_states,
)
from simulators.physics.tes_modulation import (
    bias_current_response,
    periodic_response,
    simulate_bias_modulation,
    tes_impedance,
)
from simulators.physics.tes_noise import (
    NoiseModel,
    NoisePSD,
    noise_psd,
    noise_trace,
    phonon_factor,
)
from simulators.physics.tes_response import (
    SmallSignal,
    simulate_pulse,
    small_signal,
    small_signal_pulse,
)

__all__ = [
    "EV",
    "K_B",
    "SET_A",
    "SET_A_30NH",
    "SET_B",
    "TES",
    "Branch",
    "IVCurve",
    "NoiseModel",
    "NoisePSD",
    "OperatingPoint",
    "SmallSignal",
    "TESParams",
    "bias_current_response",
    "bias_for_resistance",
    "iv_sweep",
    "noise_psd",
    "noise_trace",
    "operating_point",
    "periodic_response",
    "phonon_factor",
    "resistance",
    "resistance_partials",
    "simulate_bias_modulation",
    "simulate_pulse",
    "small_signal",
    "small_signal_pulse",
    "steady_states",
    "tes_impedance",
]
