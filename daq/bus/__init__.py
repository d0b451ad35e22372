"""The live bus: broker, publisher and subscriber (see each module for the details).

::

    Publisher (XPUB) --> Broker XSUB | XPUB --> Subscriber (SUB)
                                      \\-> last-value cache <-- snapshot (REQ/ROUTER)

Every stream carries a per-publisher-session sequence number
(:class:`GapTracker`), and every publisher a heartbeat, so loss and death
are always seen.
"""

from daq.bus.batching import ScalarBatcher
from daq.bus.broker import Broker, BrokerEndpoints
from daq.bus.gaps import Gap, GapTracker
from daq.bus.publisher import Publisher
from daq.bus.subscriber import PublisherState, Subscriber

__all__ = [
    "Broker",
    "BrokerEndpoints",
    "Gap",
    "GapTracker",
    "Publisher",
    "PublisherState",
    "ScalarBatcher",
    "Subscriber",
]
