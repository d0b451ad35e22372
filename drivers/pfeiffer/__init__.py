"""Pfeiffer Vacuum drivers: the TPG 366 MaxiGauge six-channel gauge controller.

``TPG366`` (:mod:`drivers.pfeiffer.tpg366`) speaks the ACK / ENQ protocol and
offers the daemon's ``poll_specs`` / ``control_specs`` / ``action_specs``; the
gauge status codes and their quality flags are in :mod:`drivers.pfeiffer.codes`.
"""

from drivers.pfeiffer.tpg366 import TPG366

__all__ = ["TPG366"]
