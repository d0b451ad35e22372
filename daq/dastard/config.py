"""The ``dastard:`` section of the lab config: where DASTARD runs and what the bridge takes.

::

    dastard:
      host: 127.0.0.1          # where DASTARD runs
      base_port: 5500          # DASTARD's base port: control +0, status +1,
                               # primary records +2, secondary records +3, summaries +4
      source: tes_array        # topic source: wave/tes_array/chan3, data/tes_array/chan3_peak
      primary: true            # primary triggered records -> wave/<source>/<chan>
      secondary: false         # group-trigger records -> wave/<source>/<chan>_secondary
      summaries: false         # pulse summaries -> data/<source>/<chan>_peak, _pretrig_mean, ...
      summaries_only: false    # DASTARD writes its own LJH/OFF files: take no records at
                               # all, only summaries, rates and losses
      stale_after_s: 6.0       # ALIVE silence (DASTARD sends one every 2 s) that marks the
                               # source stale
      rcv_hwm: 100000          # receive high-water mark of each record socket, messages
                               # (100000 x 2 kB records = 200 MB, ~4 s at 51 MB/s)
      summary_batch_s: 0.5     # summaries are sent as batches of rows this often
      rpc_timeout_s: 2.0       # control-port calls (SourceControl.SendAllStatus)

Every stream the bridge publishes, by kind:

* ``wave/<source>/<chan>``: one primary record (raw counts; ``scale`` is
  DASTARD's volts per count; ``meta.frame`` the trigger frame index).
* ``wave/<source>/<chan>_secondary``: one secondary record.
* ``data/<source>/<chan>_<quantity>``: summaries (``pretrig_mean``,
  ``peak``, ``pulse_rms``, ``pulse_average``, ``residual_std``, and
  ``coef<i>`` when DASTARD has projectors), in counts.
* ``data/<source>/<chan>_trigger_rate`` (Hz) and ``array_trigger_rate``:
  DASTARD's own trigger counts (TRIGGERRATE) per second.
* ``data/<source>/<chan>_lost`` and ``array_lost``: records DASTARD
  triggered that never reached the bridge, cumulative (see
  :mod:`daq.dastard.losses`).
* ``data/<source>/data_drops``: DASTARD's count of data drops at its source.
* ``status/<source>/dastard``: connected / stale / disconnected, with the
  loss and receive totals in ``meta``.
"""

from __future__ import annotations

from dataclasses import dataclass

from daq.dastard.wire import DEFAULT_BASE_PORT
from daq.messages import check_name


@dataclass(frozen=True)
class DastardConfig:
    """The ``dastard:`` section (one DASTARD server).

    Attributes:
        host: DASTARD's host name or address.
        base_port: DASTARD's base port (control); the others follow it.
        source: the topic source of everything the bridge publishes.
        primary: take primary triggered records (base+2).
        secondary: take secondary (group-trigger) records (base+3).
        summaries: take pulse summaries (base+4).
        summaries_only: take summaries only, whatever ``primary`` and
            ``secondary`` say (DASTARD keeps the records in its own files).
        stale_after_s: ALIVE silence after which the source is stale.
        rcv_hwm: receive high-water mark of each record/summary socket, messages.
        summary_batch_s: how long summaries are collected into one batch per stream.
        rpc_timeout_s: timeout of each control-port call.
    """

    host: str = "127.0.0.1"
    base_port: int = DEFAULT_BASE_PORT
    source: str = "tes_array"
    primary: bool = True
    secondary: bool = False
    summaries: bool = False
    summaries_only: bool = False
    stale_after_s: float = 6.0
    rcv_hwm: int = 100_000
    summary_batch_s: float = 0.5
    rpc_timeout_s: float = 2.0

    def __post_init__(self) -> None:
        check_name(self.source, "source")
        if not 1 <= self.base_port <= 65535 - 4:
            raise ValueError(f"base_port must leave room for 5 ports below 65536, "
                             f"got {self.base_port}")
        if not self.takes_primary and not self.takes_summaries:
            raise ValueError("the bridge needs primary records or summaries (or both): "
                             "loss counting runs on one of them")
        for name in ("stale_after_s", "summary_batch_s", "rpc_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)!r}")
        if self.rcv_hwm < 0:
            raise ValueError(f"rcv_hwm must be >= 0 (0: no limit), got {self.rcv_hwm}")

    @property
    def takes_primary(self) -> bool:
        """Primary records are taken (and lost records are counted on them)."""
        return self.primary and not self.summaries_only

    @property
    def takes_secondary(self) -> bool:
        """Secondary records are taken."""
        return self.secondary and not self.summaries_only

    @property
    def takes_summaries(self) -> bool:
        """Summaries are taken (and, without primary records, losses counted on them)."""
        return self.summaries or self.summaries_only

    def url(self, offset: int) -> str:
        """The ``tcp://`` endpoint of the port at ``offset`` from the base port."""
        return f"tcp://{self.host}:{self.base_port + offset}"
