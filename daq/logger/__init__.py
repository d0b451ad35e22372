"""The logging service: lossless storage of the reliable path, history queries, export.

::

    daemon ReliableSender (DEALER) ──► LoggerService ROUTER ──► Writer ──► Hdf5Sink   (records)
      (spool on disk)    ◄── ACK (highest contiguous durable seq per stream) │──► SqlStore (SQLite
                         ◄── ERROR (store failing: data stays spooled;       │    or PostgreSQL)
                              refused: the sender parks it; identity; hello)
    dashboard HistoryClient (DEALER) ──► HistoryServer ROUTER ──► SqlStore (own read connection)
    LoggerService status thread ──► live bus: status/<logger name>/logger

Modules: :mod:`~daq.logger.config` (the ``logger:`` section),
:mod:`~daq.logger.service` (threads and sockets), :mod:`~daq.logger.writer`
(the write cycle), :mod:`~daq.logger.intake` (what a cycle does with each
frame set), :mod:`~daq.logger.sessions` (who may speak for a publisher
name), :mod:`~daq.logger.isolate` (a batch the store fails on),
:mod:`~daq.logger.replies` (ACK and ERROR frames of a cycle),
:mod:`~daq.logger.ledger` (deduplication, acks, gaps), :mod:`~daq.logger.stats`
and :mod:`~daq.logger.status` (counters; the status on the bus),
:mod:`~daq.logger.sink` (the sink interface), :mod:`~daq.logger.schema`
(the SQL schema), :mod:`~daq.logger.sqlstore` with
:mod:`~daq.logger.sqlite_store` and :mod:`~daq.logger.postgres_store`,
:mod:`~daq.logger.hdf5_sink` (the HDF5 layout), :mod:`~daq.logger.history`
(query protocol and client), :mod:`~daq.logger.decimate`,
:mod:`~daq.logger.export`, :mod:`~daq.logger.cli`.
"""

from daq.logger.config import LoggerConfig, RetentionRule, load_logger_config
from daq.logger.history import HistoryClient, HistoryError

__all__ = [
    "HistoryClient",
    "HistoryError",
    "LoggerConfig",
    "RetentionRule",
    "load_logger_config",
]
