"""Property: whatever the network does (drop, duplicate, reorder), two channels deliver every
operation exactly once and in order, and no input makes them raise anything but their own errors."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import wire
from gateway.session import ProtectedRecord, SessionError
from gateway.session.channel import SecureChannel
from gateway.session.errors import RecordRejectedError
from gateway.session.packets import parse_packet_untrusted
from tests.session.test_record import pair

Network = list[tuple[str, bytes]]


def _step(
    channel: SecureChannel, cid_length: int, datagram: bytes, now: float, received: list[object]
) -> None:
    packet = parse_packet_untrusted(datagram, cid_length=cid_length)
    assert isinstance(packet, ProtectedRecord)
    try:
        result = channel.receive_record(packet, now)
    except RecordRejectedError:
        return
    received.extend(getattr(e, "message", None) for e in result.events if hasattr(e, "message"))


@settings(max_examples=100)
@given(
    operations=st.integers(1, 30),
    schedule=st.lists(
        st.tuples(st.sampled_from(["deliver", "drop", "dup", "swap"]), st.integers(0, 5)),
        max_size=400,
    ),
)
def test_exactly_once_in_order_under_any_schedule(
    operations: int, schedule: list[tuple[str, int]]
) -> None:
    gateway, device = pair()
    for i in range(operations):
        device.send_operation(wire.Ping(id=i))
        gateway.send_operation(wire.Ping(id=i))
    to_gateway: list[bytes] = []
    to_device: list[bytes] = []
    at_gateway: list[object] = []
    at_device: list[object] = []
    now = 0.0
    actions = iter(schedule)
    for _ in range(3000):
        to_gateway += device.datagrams_to_send(now)
        to_device += gateway.datagrams_to_send(now)
        if len(at_gateway) == operations and len(at_device) == operations:
            break
        action, index = next(actions, ("deliver", 0))
        for queue, receiver, cid, sink in (
            (to_gateway, gateway, 2, at_gateway),
            (to_device, device, 0, at_device),
        ):
            if not queue:
                continue
            position = index % len(queue)
            if action == "drop":
                queue.pop(position)
            elif action == "dup":
                queue.append(queue[position])
            elif action == "swap":
                queue[0], queue[position] = queue[position], queue[0]
            else:
                _step(receiver, cid, queue.pop(position), now, sink)
        now += 0.5
        device.handle_timeout(now)
        gateway.handle_timeout(now)
    assert at_gateway == [wire.Ping(id=i) for i in range(operations)]
    assert at_device == [wire.Ping(id=i) for i in range(operations)]


@settings(max_examples=200)
@given(st.binary(min_size=1, max_size=60))
def test_channel_rejects_garbage_with_its_own_errors(data: bytes) -> None:
    gateway, _device = pair()
    try:
        packet = parse_packet_untrusted(b"\x80\xaa\xbb" + data, cid_length=2)
        assert isinstance(packet, ProtectedRecord)
        gateway.receive_record(packet, 0.0)
    except SessionError:
        pass
