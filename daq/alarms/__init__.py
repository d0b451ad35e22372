"""The lab's alarm system: rules on the live path, alarm state, notifications, operations.

::

    broker ──(data, status, hb, interlock alarms; snapshot first)──► AlarmService
                                                                       │ AlarmEngine: conditions,
      daemon ControlServer ──alarm_list/ack/shelve/unshelve──► ops     │ state machine, lab states,
        (roles, CURVE, audit; daq.daemon.alarm_ops)            ROUTER  │ system alarms, floods
                                                                       ├─► Publisher: alarm/<name>/<id>
                                                                       ├─► ReliableSender ─► logger
      logger history (events, prefix, latest) ──rebuild at start──────►│   (spool: durable)
                                                                       ├─► Notifier thread ─► Apprise
                                                                       └─► ActionRunner thread ─►
                                                                            daemon control (Lab)

One concept per module: :mod:`~daq.alarms.config` (the ``alarms:`` section),
:mod:`~daq.alarms.conditions` (threshold, rate, stale, quality, status,
all/any), :mod:`~daq.alarms.state` (the ISA-18.2 state model of one alarm),
:mod:`~daq.alarms.engine` (rules, lab states, system alarms, floods, notices,
actions), :mod:`~daq.alarms.notify` (rate limits, digests, delivery),
:mod:`~daq.alarms.store` (records on the wire and the rebuild),
:mod:`~daq.alarms.actions` (automated actions through a daemon),
:mod:`~daq.alarms.ops` (the ops protocol), :mod:`~daq.alarms.service` (threads
and sockets), :mod:`~daq.alarms.cli` (``qupdaq alarms``). Everything but the
service, the delivery and the action threads is plain logic, tested with
made-up times.
"""
