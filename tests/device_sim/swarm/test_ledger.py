"""The swarm's ledger says what each message became: delivered, lost, or still in flight.

Sans-IO: the ledger is fed the events the driver would feed it, at chosen times.
"""

from __future__ import annotations

import json

from device_sim.radio import preset
from device_sim.swarm.cli import EXIT_IN_FLIGHT, EXIT_LOST, EXIT_OK, exit_status
from device_sim.swarm.ledger import DeviceTotals, Ledger, Outcome, Summary
from device_sim.swarm.plan import OpKind, PlannedOp
from gateway import wire


def _chat(op_id: int, sender: int, recipient: int) -> PlannedOp:
    return PlannedOp(
        op_id=op_id, at=float(op_id), sender=sender, kind=OpKind.CHAT, recipient=recipient
    )


def _person(op_id: int, sender: int) -> PlannedOp:
    return PlannedOp(op_id=op_id, at=float(op_id), sender=sender, kind=OpKind.PERSON, recipient=0)


def _summary(ledger: Ledger) -> Summary:
    totals = DeviceTotals(
        devices=3,
        connected=3,
        handshakes=3,
        resumptions=0,
        wakeups=0,
        datagrams_sent=0,
        datagrams_received=0,
        payload_bytes_sent=0,
        payload_bytes_received=0,
        link_bytes_sent=0,
        link_bytes_received=0,
        awake_seconds=0.0,
        asleep_seconds=0.0,
    )
    return ledger.summarize(devices=3, preset=preset("lte"), seed=0, duration=10.0, totals=totals)


def _token(op: PlannedOp) -> str:
    return f"swarm#{op.op_id} from device {op.sender}"


def test_each_undelivered_message_is_lost_queued_or_unacknowledged() -> None:
    delivered = _chat(1, sender=0, recipient=1)
    failed = _chat(2, sender=0, recipient=2)
    reported_not_shown = _chat(3, sender=1, recipient=2)
    queued = _chat(4, sender=1, recipient=0)
    unacknowledged = _chat(5, sender=2, recipient=0)
    person_queued = _person(6, sender=2)
    ops = [delivered, failed, reported_not_shown, queued, unacknowledged, person_queued]
    ledger = Ledger(ops)
    ledger.started(100.0)
    for message_id, op in enumerate(ops, start=1):
        ledger.sent(op, 100.0 + op.at, message_id)
    for message_id, op in enumerate(ops[:5], start=1):
        if op is not unacknowledged:
            ledger.accepted(op.sender, message_id)
    ledger.accepted(person_queued.sender, 6)
    ledger.arrived(1, _token(delivered), 102.0)
    ledger.reported(0, 2, wire.DeliveryStatus.FAILED, 103.0)
    ledger.reported(1, 3, wire.DeliveryStatus.DELIVERED, 104.0)  # the receiver never showed it

    assert [ledger.outcome(ledger._records[op.op_id]) for op in ops] == [
        Outcome.DELIVERED,
        Outcome.LOST,
        Outcome.LOST,
        Outcome.QUEUED,
        Outcome.UNACKNOWLEDGED,
        Outcome.QUEUED,
    ]
    summary = _summary(ledger)
    chat = summary.by_kind[OpKind.CHAT.value]
    assert (chat.sent, chat.delivered, chat.lost, chat.queued, chat.unacknowledged) == (
        5,
        1,
        2,
        1,
        1,
    )
    total = summary.total
    assert (total.delivered, total.lost, total.queued, total.unacknowledged) == (1, 2, 2, 1)
    assert summary.in_flight == 3
    # Lost first, then in flight by the time sent; each names sender, recipient and message id.
    traces = [
        (t.op_id, t.outcome, t.sender, t.recipient, t.message_id) for t in summary.undelivered
    ]
    assert traces == [
        (2, "lost", 0, 2, 2),
        (3, "lost", 1, 2, 3),
        (4, "queued", 1, 0, 4),
        (6, "queued", 2, 0, 6),
        (5, "unacknowledged", 2, 0, 5),
    ]
    first = summary.undelivered[0]
    assert (first.sent_at_s, first.accepted, first.report) == (2.0, True, "FAILED")
    document = json.loads(summary.to_json())
    assert document["total"]["queued"] == 2
    assert document["total"]["unacknowledged"] == 1
    assert [t["op_id"] for t in document["undelivered"]] == [2, 3, 4, 6, 5]
    assert exit_status(summary) == EXIT_LOST


def test_messages_still_in_flight_are_not_counted_lost() -> None:
    queued = _chat(1, sender=0, recipient=1)
    unacknowledged = _chat(2, sender=1, recipient=0)
    ledger = Ledger([queued, unacknowledged])
    ledger.sent(queued, 1.0, 1)
    ledger.sent(unacknowledged, 2.0, 1)
    ledger.accepted(0, 1)
    summary = _summary(ledger)
    assert (summary.total.lost, summary.total.queued, summary.total.unacknowledged) == (0, 1, 1)
    assert ledger.outstanding() == 2  # what the drain still waits for
    assert exit_status(summary) == EXIT_IN_FLIGHT
    ledger.arrived(1, _token(queued), 3.0)
    ledger.arrived(0, _token(unacknowledged), 4.0)
    summary = _summary(ledger)
    assert (summary.total.delivered, summary.in_flight, summary.undelivered) == (2, 0, ())
    assert exit_status(summary) == EXIT_OK


def test_a_message_of_an_earlier_run_is_a_stray_not_this_runs_delivery() -> None:
    op = _chat(1, sender=0, recipient=1)
    earlier = Ledger([op], run_tag="1")
    ledger = Ledger([op], run_tag="2")
    assert ledger.body(op) == "swarm#1 from device 0 run 2"
    ledger.sent(op, 1.0, 1)
    ledger.arrived(1, earlier.body(op), 2.0)  # the same seed's token, left queued by run 1
    assert (ledger.stray_arrivals, ledger.outstanding()) == (1, 1)
    ledger.arrived(1, ledger.body(op), 3.0)
    ledger.arrived(1, ledger.body(op), 4.0)
    summary = _summary(ledger)
    assert (summary.total.delivered, summary.total.duplicated) == (1, 1)
    assert summary.duplicated_ops == (1,)
    assert summary.stray_arrivals == 1
