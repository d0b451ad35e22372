"""A bridge from NIST's DASTARD (TES array acquisition) onto the qupdaq bus.

* :class:`DastardConfig` (:mod:`daq.dastard.config`) -- the ``dastard:`` section.
* :class:`DastardBridge` (:mod:`daq.dastard.bridge`) -- the source the daemon runs.
* :mod:`daq.dastard.wire` -- DASTARD's binary record and summary headers and ports.
* :mod:`daq.dastard.status` -- its status-port messages as typed values.
* :mod:`daq.dastard.rpc` -- its JSON-RPC control port.
* :mod:`daq.dastard.losses` -- how lost records are counted.
"""

from daq.dastard.bridge import BridgeStats, DastardBridge
from daq.dastard.config import DastardConfig

__all__ = ["BridgeStats", "DastardBridge", "DastardConfig"]
