"""An idle channel drops the buffers its traffic grew, and builds them again when traffic returns.

The channel, its windows and a session's path create their rarely used collections lazily and
drop them once drained (gateway/session/channel.py, reliability.py, mobility.py). These tests
check both halves: the drained state holds nothing, and the next use after it behaves exactly as
the first did.
"""

from __future__ import annotations

import sys

from gateway import wire
from gateway.session.channel import ChannelConfig, SecureChannel
from gateway.session.events import OperationAcknowledged, OperationReceived
from gateway.session.mobility import AddressValidator, Admission, PathValidation
from gateway.session.packets import Content, Fragment, ProtectedRecord, parse_packet_untrusted
from gateway.session.reliability import ReceivedRecord, ReceiveWindow
from gateway.session.replay import ReplayWindow
from tests.session.test_record import deliver, pair

EMPTY_DICT = sys.getsizeof({})


def _acknowledged(datagrams: list[bytes], to: SecureChannel, now: float) -> list[int]:
    """Feed the gateway's records to the device; the operation ids they acknowledged."""
    ids: list[int] = []
    for datagram in datagrams:
        packet = parse_packet_untrusted(datagram, cid_length=0)
        assert isinstance(packet, ProtectedRecord)
        result = to.receive_record(packet, now)
        ids += [e.operation_id for e in result.events if isinstance(e, OperationAcknowledged)]
    return ids


def test_a_drained_channel_keeps_no_send_tables_and_sends_again() -> None:
    gateway, device = pair()
    for round_ in range(3):
        now = float(round_)
        device.send_operation(wire.Ping(id=round_))
        assert deliver(device.datagrams_to_send(now), gateway, 2, now) == [wire.Ping(id=round_)]
        acks = gateway.datagrams_to_send(now + 1)  # the delayed ack, alone
        assert _acknowledged(acks, device, now + 1) == [round_]
        assert device.idle
        assert device._queue is None  # dropped once drained
        assert device._messages is None
        assert not device._send.records
        assert sys.getsizeof(device._send.records) == EMPTY_DICT
        assert device._records_left is None
        assert device._retransmit is None
        assert device._events is None
    assert device.statistics().operations_sent == 3
    assert device.statistics().retransmissions == 0


def test_fragmented_operations_after_a_drain_are_counted_afresh() -> None:
    gateway, device = pair(config=ChannelConfig(max_datagram=200))
    body = bytes(700)
    for round_ in range(2):
        now = float(round_ * 10)
        message = wire.SendMessage(id=round_, to=1, content=wire.MimeContent("a/b", body))
        operation_id = device.send_operation(message)
        received: list[object] = []
        acknowledged: list[int] = []
        for step in range(20):
            received += deliver(device.datagrams_to_send(now + step), gateway, 2, now + step)
            later = now + step + 0.5
            acknowledged += _acknowledged(gateway.datagrams_to_send(later), device, later)
            if device.idle:
                break
        assert received == [message]
        assert acknowledged == [operation_id]  # once, after its last fragment's ack
        assert device._records_left is None
        assert device._queue is None
        assert gateway._reassembler is not None
        assert not gateway._reassembler.in_progress


def test_held_records_tables_are_dropped_after_release_and_hold_again() -> None:
    gateway, device = pair()
    gateway._hold = True
    for round_ in range(2):
        now = float(round_ * 10)
        device.send_operation(wire.Ping(id=round_))
        (datagram,) = device.datagrams_to_send(now)
        packet = parse_packet_untrusted(datagram, cid_length=2)
        assert isinstance(packet, ProtectedRecord)
        events = gateway.receive_record(packet, now).events
        (received,) = [e for e in events if isinstance(e, OperationReceived)]
        assert gateway.datagrams_to_send(now + 1) == []  # held: no ack yet
        assert gateway.statistics().records_held == 1
        gateway.release(received.receipt, now + 1)
        assert gateway._held is None
        assert gateway._receipts is None
        assert gateway._receive._unreleased is None
        assert _acknowledged(gateway.datagrams_to_send(now + 1), device, now + 1) == [round_]
        assert device.idle
    assert gateway.statistics().records_held == 0


def test_a_gap_buffers_then_drops_its_table_and_the_window_keeps_ordering() -> None:
    window = ReceiveWindow(receive_window=8)
    record = ReceivedRecord(Fragment.WHOLE, Content.APPLICATION, b"")
    assert window.add(1, record) == []  # above the gap
    assert window.classify(1) == "duplicate"
    assert window.ack_fields() == (0, ((1, 1),))
    assert [s for s, _ in window.add(0, record)] == [0, 1]
    assert not window.has_gap()
    assert sys.getsizeof(window._buffered) == EMPTY_DICT
    assert [s for s, _ in window.add(2, record)] == [2]  # in order: delivered at once
    assert window.classify(2) == "duplicate"
    assert window.classify(3) == "new"
    assert window.ack_fields() == (3, ())
    assert window.add(4, record) == []
    assert window.ack_fields() == (3, ((4, 4),))


def test_held_sequences_cap_the_acknowledgement_base_until_released() -> None:
    window = ReceiveWindow(receive_window=8)
    record = ReceivedRecord(Fragment.WHOLE, Content.APPLICATION, b"")
    window.hold(0)
    window.add(0, record)
    window.add(1, record)
    assert window.acknowledgement_base == 0
    assert window.unreleased == 1
    assert window.ack_fields() == (0, ((1, 1),))
    window.release((0,))
    assert window._unreleased is None
    assert window.unreleased == 0
    assert window.acknowledgement_base == 2
    assert window.ack_fields() == (2, ())
    window.hold(2)  # holding again after the set was dropped
    window.add(2, record)
    assert window.acknowledgement_base == 2


def test_replay_windows_of_different_sizes_keep_their_own_bounds() -> None:
    small, large, small_again = ReplayWindow(64), ReplayWindow(128), ReplayWindow(64)
    for window in (small, large, small_again):
        for sequence in range(0, 300, 3):
            window.mark(sequence)
        assert window._bitmap.bit_length() <= window.size  # only the window's own bits
        assert not window.check(297)
        assert window.check(298)
        assert window.check(299 - window.size + 1) is ((299 - window.size + 1) % 3 != 0)
        assert not window.check(297 - window.size)  # left of the window
    window = ReplayWindow(64)
    window.mark(5)
    window.mark(5 + 1000)  # a jump beyond the window clears the bitmap
    assert window._bitmap == 1
    assert not window.check(5)
    assert window.check(1004)


def test_a_path_drops_its_held_queue_when_drained_and_holds_again() -> None:
    budget = AddressValidator()
    path = PathValidation(max_held=1)
    assert path.held is None
    budget.received("peer", 10)  # 30 bytes may go back
    assert path.admit(budget, "peer", bytes(40)) is Admission.HELD
    assert path.admit(budget, "peer", bytes(41)) is Admission.DROPPED
    budget.received("peer", 10)
    assert path.next_releasable(budget, "peer") == bytes(40)
    assert path.held is None
    assert path.next_releasable(budget, "peer") is None
    assert path.admit(budget, "peer", bytes(100)) is Admission.HELD  # a new queue
    path.moved()
    assert path.held is None
    assert path.challenges == ()


def test_address_states_are_least_recently_used_first_out() -> None:
    budget = AddressValidator(max_addresses=2)
    budget.received("a", 1)
    budget.received("b", 1)
    budget.validate("a")
    assert budget.spend("a", 100)  # touches "a": "b" is now the oldest
    budget.received("c", 1)
    assert budget.is_validated("a")
    assert not budget.may_send("b", 1)
    assert budget.may_send("c", 3)
    assert not budget.spend("c", 4)
    assert budget.spend("c", 3)
    assert not budget.spend("c", 1)
