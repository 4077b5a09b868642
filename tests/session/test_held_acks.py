"""Held acknowledgements (docs/protocol.md §3.5): the gateway acknowledges a record of operations
only once the application released every operation in it, over the seeded fake network."""

from __future__ import annotations

import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import wire
from gateway.session import (
    DeviceSessionResumed,
    GatewayConfig,
    OperationAcknowledged,
    OperationReceived,
    SessionClosed,
)
from gateway.session.channel import ACKNOWLEDGEMENT_HOLD_EXPIRED
from gateway.session.events import Event
from gateway.session.gateway_side import GatewaySessions
from gateway.session.packets import Content, Fragment
from gateway.session.reliability import ReceivedRecord, ReceiveWindow
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import (
    DEVICE_ADDRESS,
    GATEWAY_ADDRESS,
    DeviceNode,
    Recorder,
    make_device,
    make_gateway,
    run_gateway,
    until,
)

DELAY = 0.1  # one way, no jitter: every arrival time below is exact
HOLDING = GatewayConfig(hold_acknowledgements=True)


async def _established(
    nursery: trio.Nursery, config: GatewayConfig = HOLDING
) -> tuple[GatewaySessions, Recorder, DeviceNode, bytes]:
    gateway = make_gateway(config=config)
    recorder = Recorder()
    net = FakeNetwork(nursery, seed=7, link=LinkModel(delay=DELAY))

    def stamp(_: bytes, event: Event) -> None:
        recorder.stamped.append((trio.current_time(), event))

    nursery.start_soon(run_gateway, gateway, net, GATEWAY_ADDRESS, recorder, stamp)
    node = DeviceNode(make_device(), net, DEVICE_ADDRESS, GATEWAY_ADDRESS)
    nursery.start_soon(node.run)
    node.device.connect(trio.current_time())
    node.poke()
    await until(lambda: node.device.ticket is not None)
    (connection_id,) = gateway.sessions()
    return gateway, recorder, node, connection_id


def _received(recorder: Recorder) -> list[tuple[float, OperationReceived]]:
    return [(t, e) for t, e in recorder.stamped if isinstance(e, OperationReceived)]


def _acknowledged(node: DeviceNode) -> list[tuple[float, int]]:
    return [
        (t, e.operation_id)
        for t, e in node.recorder.stamped
        if isinstance(e, OperationAcknowledged)
    ]


def _release(gateway: GatewaySessions, node: DeviceNode, cid: bytes, receipt: int) -> None:
    gateway.release(cid, receipt, trio.current_time())
    node.net.notify(node.gateway_address)  # the gateway loop sends what became due


async def _send_alone(node: DeviceNode, message: wire.Message) -> None:
    """One operation in a record of its own (nothing else queued with it)."""
    node.device.send_operation(message)
    node.poke()
    await trio.sleep(1)


async def test_held_record_is_acknowledged_only_when_released(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        gateway, recorder, node, cid = await _established(nursery)
        sent_at = trio.current_time()
        node.device.send_operation(wire.Ping(id=1))
        node.poke()
        await until(lambda: _received(recorder))
        ((arrived_at, received),) = _received(recorder)
        assert arrived_at == sent_at + DELAY
        assert gateway.statistics().acknowledgements_held == 1
        assert gateway.statistics().handshakes_completed == 1
        await trio.sleep(20)  # the device retransmits; the gateway neither delivers nor acks
        assert _acknowledged(node) == []
        channel = node.device.statistics().channel
        assert channel is not None
        assert channel.retransmissions >= 3
        assert len(_received(recorder)) == 1  # each retransmission was a duplicate
        released_at = trio.current_time()
        _release(gateway, node, cid, received.receipt)
        await until(lambda: _acknowledged(node))
        ((acknowledged_at, _),) = _acknowledged(node)
        assert acknowledged_at == released_at + DELAY  # sent at once, not after ack_delay
        assert gateway.statistics().acknowledgements_held == 0
        _release(gateway, node, cid, received.receipt)  # idempotent
        gateway.release(b"\xff\xff", 0, trio.current_time())  # unknown session: ignored
        await trio.sleep(5)
        assert len(_acknowledged(node)) == 1
        assert not node.recorder.of_type(SessionClosed)
        nursery.cancel_scope.cancel()


async def test_released_records_are_acknowledged_selectively_then_cumulatively(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        gateway, recorder, node, cid = await _established(nursery)
        for i in range(3):
            await _send_alone(node, wire.Ping(id=i))
        receipts = {
            e.message.id: e.receipt
            for e in recorder.of_type(OperationReceived)
            if isinstance(e.message, wire.Ping)
        }
        assert sorted(receipts) == [0, 1, 2]
        assert len(set(receipts.values())) == 3
        _release(gateway, node, cid, receipts[1])  # above a held one: a selective range
        await until(lambda: len(_acknowledged(node)) == 1)
        _release(gateway, node, cid, receipts[2])
        await until(lambda: len(_acknowledged(node)) == 2)
        await trio.sleep(5)
        assert [op for _, op in _acknowledged(node)] == [1, 2]  # record 0 is still held
        _release(gateway, node, cid, receipts[0])  # now the cumulative number passes all three
        await until(lambda: len(_acknowledged(node)) == 3)
        assert [op for _, op in _acknowledged(node)] == [1, 2, 0]
        assert gateway.statistics().acknowledgements_held == 0
        assert recorder.pings() == [0, 1, 2]  # retransmissions of held records: not redelivered
        nursery.cancel_scope.cancel()


async def test_record_of_several_operations_needs_every_receipt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        gateway, recorder, node, cid = await _established(nursery)
        node.device.send_operation(wire.Ping(id=1))
        node.device.send_operation(wire.Ping(id=2))  # queued together: one record
        node.poke()
        await until(lambda: len(recorder.of_type(OperationReceived)) == 2)
        first, second = recorder.of_type(OperationReceived)
        assert first.receipt != second.receipt
        assert gateway.statistics().acknowledgements_held == 1
        _release(gateway, node, cid, first.receipt)
        _release(gateway, node, cid, first.receipt)  # a repeat does not count as the second
        await trio.sleep(10)
        assert _acknowledged(node) == []
        released_at = trio.current_time()
        _release(gateway, node, cid, second.receipt)
        await until(lambda: len(_acknowledged(node)) == 2)
        assert [t for t, _ in _acknowledged(node)] == [released_at + DELAY] * 2
        nursery.cancel_scope.cancel()


async def test_fragmented_operation_is_held_whole(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        gateway, recorder, node, cid = await _established(nursery)
        big = wire.SendMessage(1, 3, wire.TextContent("x" * 3000))
        node.device.send_operation(big)
        node.poke()
        await until(lambda: recorder.of_type(OperationReceived))
        (received,) = recorder.of_type(OperationReceived)
        assert received.message == big
        assert gateway.statistics().acknowledgements_held == 3  # every fragment
        await trio.sleep(10)
        assert _acknowledged(node) == []
        _release(gateway, node, cid, received.receipt)
        await until(lambda: _acknowledged(node))
        assert gateway.statistics().acknowledgements_held == 0
        assert len(recorder.of_type(OperationReceived)) == 1
        nursery.cancel_scope.cancel()


async def test_a_slow_commit_does_not_end_the_session(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        gateway, recorder, node, cid = await _established(nursery)
        await _send_alone(node, wire.Ping(id=1))
        (received,) = recorder.of_type(OperationReceived)
        await trio.sleep(25)  # below max_acknowledgement_hold (30 s)
        _release(gateway, node, cid, received.receipt)
        await until(lambda: _acknowledged(node))
        await trio.sleep(60)
        assert not node.recorder.of_type(SessionClosed)
        assert not recorder.of_type(SessionClosed)
        assert list(gateway.sessions()) == [cid]
        assert gateway.statistics().acknowledgements_overdue == 0
        nursery.cancel_scope.cancel()


async def test_a_record_held_too_long_ends_the_session_and_the_device_resends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        gateway, recorder, node, cid = await _established(nursery)
        node.device.send_operation(wire.Ping(id=1))
        node.poke()
        await until(lambda: _received(recorder))
        ((arrived_at, _),) = _received(recorder)
        await until(lambda: recorder.of_type(SessionClosed), limit=60)
        closed = [t for t, e in recorder.stamped if isinstance(e, SessionClosed)]
        assert closed[0] == arrived_at + HOLDING.max_acknowledgement_hold
        assert recorder.of_type(SessionClosed)[0] == SessionClosed(ACKNOWLEDGEMENT_HOLD_EXPIRED)
        assert gateway.statistics().acknowledgements_overdue == 1
        # The device's next retransmission meets a REJECT with its reset token: it resumes and
        # sends again what the gateway never acknowledged.
        await until(lambda: recorder.of_type(DeviceSessionResumed), limit=120)
        await until(lambda: len(_received(recorder)) == 2, limit=120)
        (new_cid,) = gateway.sessions()
        assert new_cid != cid
        statistics = gateway.statistics()
        assert (statistics.handshakes_completed, statistics.resumptions) == (1, 1)
        assert recorder.pings() == [1, 1]
        _release(gateway, node, new_cid, _received(recorder)[1][1].receipt)
        await until(lambda: _acknowledged(node))
        assert not node.recorder.of_type(SessionClosed)  # the device never gave up
        nursery.cancel_scope.cancel()


async def test_without_holding_records_are_acknowledged_on_receipt(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with trio.open_nursery() as nursery:
        gateway, recorder, node, _ = await _established(nursery, GatewayConfig())
        await _send_alone(node, wire.Ping(id=1))
        await _send_alone(node, wire.Ping(id=2))
        assert [op for _, op in _acknowledged(node)] == [0, 1]
        receipts = [e.receipt for e in recorder.of_type(OperationReceived)]
        assert len(set(receipts)) == 2  # receipts are unique even when nobody releases
        assert gateway.statistics().acknowledgements_held == 0
        nursery.cancel_scope.cancel()


def test_receive_window_acks_only_released_records() -> None:
    window = ReceiveWindow(receive_window=8)
    record = ReceivedRecord(Fragment.WHOLE, Content.APPLICATION, b"", ())
    for sequence in range(4):
        if sequence in (0, 2):
            window.hold(sequence)
        window.add(sequence, record)
    window.hold(6)
    window.add(6, record)
    window.add(5, record)  # above a gap (4), released
    assert window.ack_fields() == (0, ((1, 1), (3, 3), (5, 5)))
    assert window.classify(8) == "beyond"  # the window counts from the lowest held record
    window.release((0,))
    assert window.ack_fields() == (2, ((3, 3), (5, 5)))
    window.release((2, 6))
    assert window.ack_fields() == (4, ((5, 6),))
    assert window.classify(11) == "new"
    assert window.classify(12) == "beyond"


@settings(max_examples=200)
@given(st.data())
def test_acks_never_cover_an_unreleased_record(data: st.DataObject) -> None:
    """Any arrival order, any holds and releases: what an ack covers was received and released,
    and once everything is released the cumulative number covers every record."""
    count = data.draw(st.integers(1, 12))
    arrival = data.draw(st.permutations(range(count)))
    held = data.draw(st.sets(st.sampled_from(range(count))))
    window = ReceiveWindow(receive_window=16, max_ranges=16)
    record = ReceivedRecord(Fragment.WHOLE, Content.APPLICATION, b"", ())
    arrived: set[int] = set()
    unreleased: set[int] = set()

    def check() -> None:
        cumulative, selective = window.ack_fields()
        covered = set(range(cumulative)) | {s for a, b in selective for s in range(a, b + 1)}
        assert covered <= arrived - unreleased
        assert arrived - unreleased - covered == set()  # nothing ackable is left out

    for sequence in arrival:
        if sequence in held:
            window.hold(sequence)
            unreleased.add(sequence)
        window.add(sequence, record)
        arrived.add(sequence)
        check()
        release_one: bool = data.draw(st.booleans())
        if unreleased and release_one:
            released = data.draw(st.sampled_from(sorted(unreleased)))
            window.release((released,))
            unreleased.discard(released)
            check()
    window.release(tuple(unreleased))
    unreleased.clear()
    check()
    assert window.ack_fields() == (count, ())
