"""Sessions and identities at the writer: resuming, closing, gaps from senders, refused claims."""

from __future__ import annotations

from daq import messages, reliable
from daq.logger.writer import Writer
from tests.logger.conftest import Stamper
from tests.logger.cycles import (
    acks,
    beat,
    close,
    fake_clock,
    gap,
    hello,
    peer_of,
    reopen,
    run,
    scalars,
    values,
)

OTHER = "fedcba9876543210fedcba9876543210"
MXC = "data/fridge1/mxc"


def _gaps(w: Writer) -> list[tuple[int, int, int, str]]:
    assert w.store is not None
    return [(g["epoch"], g["first"], g["last"], g["reason"]) for g in w.store.gaps()]


def test_a_restarted_daemon_resumes_its_old_session_and_closes_it_with_the_lost_tail(
        writer: Writer) -> None:
    old, new = Stamper("d1", epoch=100), Stamper("d1", epoch=200)
    msgs = scalars(old, 9)
    run(writer, hello("d1", 100), *msgs[:6], beat("d1", 100, {MXC: 12}))
    # The daemon died; it comes back with seqs 6..8 still in its spool (9..12 were stamped and
    # announced, never spooled). Its old session stays open while it resends.
    replies = run(writer, hello("d1", 200, resume=(100,)))
    assert {(r["epoch"], tuple(r["streams"].items())) for r in replies} == {
        (100, ((MXC, 5),)), (200, ())}
    assert _gaps(writer) == []
    replies = run(writer, *msgs[6:], *scalars(new, 2))
    assert {r["epoch"]: r["streams"] for r in replies} == {100: {MXC: 8}, 200: {MXC: 1}}
    replies = run(writer, close("d1", 100, {MXC: 8}))
    assert replies == [{"verb": "ACK", "epoch": 100, "streams": {MXC: 12}, "closed": True}]
    assert _gaps(writer) == [(100, 9, 12, reliable.LOST_BEFORE_SPOOLING)]
    assert sorted(values(writer, MXC)) == sorted([float(i) for i in range(9)] + [0.0, 1.0])
    late = old(scalars(Stamper("x"), 1)[0])
    replies = run(writer, late)
    assert replies[0]["code"] == "refused" and replies[0]["items"][0]["epoch"] == 100


def test_a_hello_without_resume_supersedes_every_other_open_session(writer: Writer) -> None:
    a, b = Stamper("d1", epoch=100), Stamper("d1", epoch=150)
    run(writer, hello("d1", 100), *scalars(a, 3), beat("d1", 100, {MXC: 5}))
    run(writer, hello("d1", 150, resume=(100,)), *scalars(b, 2), beat("d1", 150, {MXC: 3}))
    assert _gaps(writer) == []
    run(writer, hello("d1", 300, resume=(150,)))  # 100 is no longer held by anyone
    assert _gaps(writer) == [(100, 3, 5, "superseded")]
    run(writer, hello("d1", 400))
    assert _gaps(writer) == [(100, 3, 5, "superseded"), (150, 2, 3, "superseded")]


def test_a_second_instance_is_refused_while_the_owner_lives_and_takes_over_after_silence(
        writer: Writer) -> None:
    clock = fake_clock(writer)
    owner = Stamper("d1", epoch=100)
    run(writer, hello("d1", 100), *scalars(owner, 3))
    intruder = b"intruder"
    for frames in (hello("d1", 999), beat("d1", 999, {MXC: 10**6})):
        replies = writer.process([(intruder, _with_instance(frames, OTHER))])
        assert [reliable.parse(f).verb for _, f in replies] == [reliable.ERROR]  # type: ignore[union-attr]
        body = reliable.parse(replies[0][1]).body  # type: ignore[union-attr]
        assert body["code"] == "identity" and "another live instance" in body["why"]
    forged = Stamper("d1", epoch=100)
    forged.seqs[MXC] = 2  # the owner's very next seq, with forged content
    msg = forged(messages.scalar("fridge1", "mxc", 666.0))
    replies = writer.process([(intruder, msg)])
    assert reliable.parse(replies[0][1]).body["code"] == "hello"  # type: ignore[union-attr]
    assert writer.stats.refused_sessions == 2
    status = writer.stats.as_dict()["sessions"]
    assert status["refused_total"] == 2 and status["refusals"][0]["pub"] == "d1"
    # The owner is unaffected: its next message lands, the forged one did not.
    run(writer, *scalars(owner, 1))
    assert sorted(values(writer, MXC)) == [0.0, 0.0, 1.0, 2.0]
    # The owner falls silent (a replaced PC): after takeover_after_s the other instance may.
    clock.now += writer.config.takeover_after_s
    replies = writer.process([(intruder, _with_instance(hello("d1", 999), OTHER))])
    assert [reliable.parse(f).verb for _, f in replies] == [reliable.ACK]  # type: ignore[union-attr]
    replies = writer.process([(peer_of("d1"), beat("d1", 100, {MXC: 3}))])
    assert reliable.parse(replies[0][1]).body["code"] == "identity"  # type: ignore[union-attr]


def _with_instance(item: reliable.Control, instance: str) -> reliable.Control:
    return reliable.Control(item.verb, {**item.body, "instance": instance})


def test_the_owner_is_kept_in_the_store_so_a_restarted_logger_still_refuses_strangers(
        writer: Writer) -> None:
    run(writer, hello("d1", 100), *scalars(Stamper("d1", epoch=100), 2))
    writer = reopen(writer)
    try:
        replies = writer.process([(b"intruder", _with_instance(hello("d1", 999), OTHER))])
        assert reliable.parse(replies[0][1]).body["code"] == "identity"  # type: ignore[union-attr]
        assert acks(run(writer, beat("d1", 100, {MXC: 1}))) == {MXC: 1}  # the owner: fine
    finally:
        writer.close()


def test_a_curve_key_is_the_identity_when_the_connection_has_one(writer: Writer) -> None:
    a, b = b"conn-a", b"conn-b"
    writer.process([(a, hello("d1", 100))], keys={a: "K" * 40})
    # Same claimed instance id, different key: refused. The instance id no longer counts.
    replies = writer.process([(b, hello("d1", 200))], keys={b: "L" * 40})
    assert reliable.parse(replies[0][1]).body["code"] == "identity"  # type: ignore[union-attr]
    replies = writer.process([(b, _with_instance(hello("d1", 200), OTHER))], keys={b: "K" * 40})
    assert reliable.parse(replies[0][1]).verb == reliable.ACK  # type: ignore[union-attr]


def test_a_sender_s_gap_is_recorded_with_its_reason_and_acknowledged(writer: Writer) -> None:
    stamp = Stamper("d1")
    msgs = scalars(stamp, 40)
    run(writer, *msgs[:5])
    assert acks(run(writer, gap("d1", stamp.epoch, MXC, 5, 9))) == {MXC: 9}
    # A gap ahead of what arrived (say the logger lost its store): kept, and contig jumps it.
    assert acks(run(writer, gap("d1", stamp.epoch, MXC, 20, 29, "refused by the logger"),
                    *msgs[10:15])) == {MXC: 14}
    writer = reopen(writer)  # the span ahead is known from the store's gaps
    try:
        run(writer, hello("d1", stamp.epoch))
        assert acks(run(writer, *msgs[15:20], msgs[30])) == {MXC: 30}
        assert _gaps(writer) == [(stamp.epoch, 5, 9, "spool overflow"),
                                 (stamp.epoch, 20, 29, "refused by the logger")]
        # A gap over stored messages records only what is missing.
        run(writer, *msgs[32:34], gap("d1", stamp.epoch, MXC, 31, 35))
        assert _gaps(writer)[-2:] == [(stamp.epoch, 31, 31, "spool overflow"),
                                      (stamp.epoch, 34, 35, "spool overflow")]
        assert values(writer, MXC) == [float(i) for i in (*range(5), *range(10, 20), 30, 32,
                                                          33)]
    finally:
        writer.close()


def test_with_an_allow_list_a_key_may_only_speak_for_its_own_name(writer: Writer) -> None:
    writer.key_names = {"K" * 40: "d1", "L" * 40: "d2"}
    a, b = b"conn-a", b"conn-b"
    replies = writer.process([(a, hello("d1", 100))], keys={a: "K" * 40})
    assert reliable.parse(replies[0][1]).verb == reliable.ACK  # type: ignore[union-attr]
    replies = writer.process([(b, hello("d1", 200))], keys={b: "L" * 40})
    body = reliable.parse(replies[0][1]).body  # type: ignore[union-attr]
    assert body["code"] == "identity" and "may not archive as 'd1'" in body["why"]
    assert writer.stats.refused_sessions == 1


def test_a_clean_stop_of_a_daemon_with_a_persistent_id_keeps_its_name(writer: Writer) -> None:
    run(writer, hello("d1", 100), *scalars(Stamper("d1", epoch=100), 2))
    assert run(writer, close("d1", 100, {MXC: 1}))[0]["closed"] is True
    replies = writer.process([(b"stranger", _with_instance(hello("d1", 200), OTHER))])
    assert reliable.parse(replies[0][1]).body["code"] == "identity"  # type: ignore[union-attr]
    assert acks(run(writer, hello("d1", 300), *scalars(Stamper("d1", epoch=300), 1))) == {
        MXC: 0}  # the same daemon, restarted: welcome


def test_a_clean_stop_of_a_sender_without_a_persistent_id_frees_its_name(
        writer: Writer) -> None:
    run(writer, hello("d1", 100, ephemeral=True), *scalars(Stamper("d1", epoch=100), 2))
    assert run(writer, close("d1", 100, {MXC: 1}))[0]["closed"] is True
    writer = reopen(writer)  # the release is kept in the store
    try:
        replies = writer.process([(b"next-run", _with_instance(hello("d1", 200), OTHER))])
        assert reliable.parse(replies[0][1]).verb == reliable.ACK  # type: ignore[union-attr]
        # ... and the new owner holds it like any owner: the old id is refused now.
        replies = writer.process([(b"old-run", hello("d1", 300))])
        assert reliable.parse(replies[0][1]).body["code"] == "identity"  # type: ignore[union-attr]
    finally:
        writer.close()
