"""The trio adapters honour every timer the core sets, at exact virtual times (issue 11 point 9).

A lone reliable record must be acknowledged alone ``ack_delay`` after it arrived (spec §3.5).
Before the fix, :meth:`CoreDriver.receive` fed the core without telling the timer task, which
went on sleeping toward the deadline it had read before the record came, so the ack left only
when some older timer fired (seconds later, or at the device's retransmission). The gateway's
driver and the device's driver are joined here by their callbacks, without sockets, so the
autojump clock gives exact times.
"""

from __future__ import annotations

from collections.abc import Hashable

import trio
import trio.testing

from gateway import wire
from gateway.session import DeviceSessionEstablished, OperationReceived
from gateway.session.reliability import DEFAULT_ACK_DELAY
from gateway.transport import CoreDriver, DeviceDriver
from tests.session.helpers import DEVICE_ADDRESS, make_device, make_gateway

QUIET = 30.0  # seconds of virtual time after the handshake in which nothing is pending


class Link:
    """A gateway driver and a device driver joined by callbacks, logging each send's time."""

    def __init__(self) -> None:
        self.gateway = CoreDriver(make_gateway(), self._to_device)
        self.device = DeviceDriver(make_device())
        self.gateway_sent: list[float] = []
        self.device_sent: list[float] = []

    def _to_device(self, datagram: bytes, destination: Hashable) -> None:
        assert destination == DEVICE_ADDRESS
        self.gateway_sent.append(trio.current_time())
        self.device._receive(datagram)

    async def _to_gateway(self, datagram: bytes) -> None:
        self.device_sent.append(trio.current_time())
        await self.gateway.receive(datagram, DEVICE_ADDRESS)

    async def start(self, nursery: trio.Nursery) -> bytes:
        """Run both drivers, complete the handshake, let it settle; the connection id."""
        nursery.start_soon(self.gateway.run_timers)
        nursery.start_soon(self.device._run_timers, self._to_gateway)
        self.device.connect()
        async for item in self.gateway.events:
            if isinstance(item.event, DeviceSessionEstablished):
                connection_id = item.connection_id
                break
        await trio.sleep(QUIET)
        self.gateway_sent.clear()
        self.device_sent.clear()
        return connection_id


async def test_a_lone_record_from_the_device_is_acknowledged_after_the_ack_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    link = Link()
    async with trio.open_nursery() as nursery:
        await link.start(nursery)
        sent_at = trio.current_time()
        link.device.send_operation(wire.Ping(id=1))
        async for item in link.gateway.events:
            if isinstance(item.event, OperationReceived):
                assert item.event.message == wire.Ping(id=1)
                break
        await trio.sleep(QUIET)
        assert link.device_sent == [sent_at]  # the record once: its ack came in time
        assert link.gateway_sent == [sent_at + DEFAULT_ACK_DELAY]  # the ack, alone
        assert link.gateway.statistics().core.retransmissions == 0
        nursery.cancel_scope.cancel()


async def test_an_operation_from_the_application_leaves_at_once_and_is_acknowledged(
    autojump_clock: trio.testing.MockClock,
) -> None:
    link = Link()
    async with trio.open_nursery() as nursery:
        connection_id = await link.start(nursery)
        sent_at = trio.current_time()
        link.gateway.send_operation(connection_id, wire.Ping(id=2))
        async for event in link.device.events:
            if isinstance(event, OperationReceived):
                assert event.message == wire.Ping(id=2)
                break
        await trio.sleep(QUIET)
        assert link.gateway_sent == [sent_at]
        assert link.device_sent == [sent_at + DEFAULT_ACK_DELAY]
        nursery.cancel_scope.cancel()


async def test_records_from_both_ends_at_once_carry_each_others_acks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A reply queued within the ack delay carries the ack: nothing goes alone."""
    link = Link()
    async with trio.open_nursery() as nursery:
        connection_id = await link.start(nursery)
        sent_at = trio.current_time()
        link.device.send_operation(wire.Ping(id=3))
        async for item in link.gateway.events:
            if isinstance(item.event, OperationReceived):
                break
        await trio.sleep(DEFAULT_ACK_DELAY / 2)
        link.gateway.send_operation(connection_id, wire.Ping(id=4))  # rides with the ack
        await trio.sleep(QUIET)
        assert link.gateway_sent == [sent_at + DEFAULT_ACK_DELAY / 2]
        assert link.device_sent == [sent_at, sent_at + DEFAULT_ACK_DELAY / 2 + DEFAULT_ACK_DELAY]
        nursery.cancel_scope.cancel()
