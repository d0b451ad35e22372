"""Alarm events in the archive: the ``events`` query by stream prefix, and each stream's newest
(what the alarm service rebuilds from), in SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from daq import messages
from daq.alarms.config import Severity
from daq.alarms.state import AlarmRecord, AlarmState
from daq.alarms.store import record_from_meta, record_meta
from daq.logger.sink import Batch, Store
from daq.messages import Kind
from tests.logger.conftest import (  # noqa: F401 - the logger's store fixtures, both kinds
    Stamper,
    logger_config,
    open_store,
    postgres_dsn,
    postgres_server,
    store_kind,
)


def _alarm(stamp: Stamper, alarm: str, rec: AlarmRecord, t: int) -> messages.Message:
    msg = messages.event(Kind.ALARM, "alarms_x", alarm)
    msg.meta = {**record_meta(rec), "transition": "raised", "detail": {}}
    msg.t = t
    return stamp(msg)


def test_events_under_a_prefix_and_the_newest_of_each(
        open_store: Callable[..., Store]) -> None:  # noqa: F811 - the imported fixture
    store = open_store()
    stamp = Stamper(pub="alarms_x", epoch=7)
    batch = Batch()
    for i, state in enumerate(["active_unack", "cleared_unack", "normal"]):
        rec = AlarmRecord("mxc_warm", Severity.CRITICAL, occurrence=1)
        rec.state = AlarmState(state)
        batch.messages.append(_alarm(stamp, "mxc_warm", rec, 1000 + i))
    batch.messages.append(_alarm(stamp, "t4k_rising", AlarmRecord("t4k_rising",
                                                                  Severity.WARNING), 1500))
    batch.messages.append(stamp(messages.event(Kind.ALARM, "alarms_xy", "other", x=1)))
    batch.messages.append(stamp(messages.event(Kind.AUDIT, "daemon", "control", op="set")))
    store.write_batch(batch)
    store.commit()
    every = store.events(prefix="alarm/alarms_x/", kind="alarm")
    assert [e["stream"] for e in every] == ["alarm/alarms_x/mxc_warm"] * 3 + [
        "alarm/alarms_x/t4k_rising"]  # the '_' of the prefix is no wildcard: alarms_xy is not
    latest = store.events(prefix="alarm/alarms_x/", kind="alarm", latest=True)
    assert [(e["stream"], e["meta"]["state"]) for e in latest] == [
        ("alarm/alarms_x/mxc_warm", "normal"), ("alarm/alarms_x/t4k_rising", "normal")]
    assert record_from_meta(latest[0]["meta"]).occurrence == 1
    assert store.events(prefix="alarm/alarms_x/", t0=1001, t1=1002) == every[1:3]
    store.close()
