"""The device client and a wire Error that refuses its SendMessage (docs/protocol.md §6.3).

A gateway session core over the seeded fake network stands in for the gateway; its application
answers SendMessages with an Error as told. A retryable code (UPSTREAM_UNAVAILABLE, QUEUE_FULL,
...) is surfaced and the same message goes again after the back-off; a final code, or too many
refusals, fails the message: it leaves the outbox with a FAILED report instead of staying there.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import trio
import trio.lowlevel
import trio.testing

from device_sim.client import (
    DeliveryReported,
    DeviceClient,
    MessageAccepted,
    OperationRefused,
    core,
)
from device_sim.client.core import ClientState
from gateway import wire
from gateway.session import GatewaySessions, OperationReceived
from gateway.session.events import Event
from tests.device_sim.test_device_client import ClientNode, provision
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import GATEWAY_ADDRESS, Recorder, make_gateway, run_gateway, until

DELAY = 0.1  # one-way delay of the fake link, seconds


@dataclass
class RefusingApp:
    """Answers each SendMessage with the next code of ``refusals``, then reports it DELIVERED."""

    gateway: GatewaySessions
    refusals: list[wire.ErrorCode]
    received: list[tuple[float, int]] = field(default_factory=list)  # (time, SendMessage id)

    def on_event(self, connection_id: bytes, event: Event) -> None:
        if not isinstance(event, OperationReceived):
            return
        message = event.message
        if not isinstance(message, wire.SendMessage):
            return
        self.received.append((trio.current_time(), message.id))
        if self.refusals:
            code = self.refusals.pop(0)
            answer: wire.Message = wire.Error(
                code, message_type=int(wire.MessageType.SEND_MESSAGE), message_id=message.id
            )
        else:
            answer = wire.DeliveryReport(message.id, wire.DeliveryStatus.DELIVERED)
        self.gateway.send_operation(connection_id, answer)


async def _start(
    nursery: trio.Nursery, tmp_path: Path, refusals: list[wire.ErrorCode]
) -> tuple[ClientNode, RefusingApp]:
    gateway = make_gateway()
    app = RefusingApp(gateway, list(refusals))
    net = FakeNetwork(nursery, seed=3, link=LinkModel(delay=DELAY))
    nursery.start_soon(run_gateway, gateway, net, GATEWAY_ADDRESS, Recorder(), app.on_event)
    client = DeviceClient(rng=random.Random(3), random_bytes=random.Random(4).randbytes)
    node = ClientNode(client, net)
    nursery.start_soon(node.run)
    await trio.lowlevel.checkpoint()
    client.start(provision(tmp_path), trio.current_time())
    node.poke()
    await until(lambda: client.state is ClientState.ESTABLISHED, limit=120)
    return node, app


async def test_a_retryable_refusal_is_surfaced_and_the_message_sent_again_after_the_backoff(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    refusals = [wire.ErrorCode.UPSTREAM_UNAVAILABLE, wire.ErrorCode.QUEUE_FULL]
    async with trio.open_nursery() as nursery:
        node, app = await _start(nursery, tmp_path, refusals)
        message_id = node.client.send_text(3, "retry me")
        node.poke()
        await until(lambda: not node.client.outbox)
        refused = node.of_type(OperationRefused)
        assert [(r.message_id, r.code) for r in refused] == [
            (message_id, wire.ErrorCode.UPSTREAM_UNAVAILABLE),
            (message_id, wire.ErrorCode.QUEUE_FULL),
        ]
        sent_at = [at for at, _ in app.received]
        assert [i for _, i in app.received] == [message_id] * 3  # the same id each time
        # Each resend waits its back-off from the Error's arrival (one link delay later).
        backoff = core.DEFAULT_RETRY_BACKOFF
        assert refused[0].retry_at == sent_at[0] + DELAY + backoff
        assert refused[1].retry_at == sent_at[1] + DELAY + 2 * backoff
        assert sent_at[1] - sent_at[0] >= backoff
        assert node.of_type(DeliveryReported) == [
            DeliveryReported(message_id, wire.DeliveryStatus.DELIVERED, None)
        ]
        assert node.of_type(MessageAccepted) == [MessageAccepted(message_id)]  # the last one
        nursery.cancel_scope.cancel()


async def test_a_final_refusal_fails_the_message_and_empties_the_outbox(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        node, app = await _start(nursery, tmp_path, [wire.ErrorCode.UNKNOWN_ALIAS])
        message_id = node.client.send_text(99, "to nobody")
        node.poke()
        await until(lambda: not node.client.outbox)
        assert node.of_type(OperationRefused) == [
            OperationRefused(
                message_id,
                wire.ErrorCode.UNKNOWN_ALIAS,
                int(wire.MessageType.SEND_MESSAGE),
                None,
            )
        ]
        assert node.of_type(DeliveryReported) == [
            DeliveryReported(message_id, wire.DeliveryStatus.FAILED, None)
        ]
        assert node.of_type(MessageAccepted) == []
        await trio.sleep(10 * core.MAX_RETRY_BACKOFF)
        assert [i for _, i in app.received] == [message_id]  # never sent again
        nursery.cancel_scope.cancel()


async def test_a_message_refused_every_time_fails_after_the_last_attempt(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    refusals = [wire.ErrorCode.RATE_LIMITED] * core.DEFAULT_MAX_ATTEMPTS
    async with trio.open_nursery() as nursery:
        node, app = await _start(nursery, tmp_path, refusals)
        message_id = node.client.send_text(3, "always refused")
        node.poke()
        await until(lambda: not node.client.outbox)
        assert len(app.received) == core.DEFAULT_MAX_ATTEMPTS
        refused = node.of_type(OperationRefused)
        assert len(refused) == core.DEFAULT_MAX_ATTEMPTS
        assert all(r.retry_at is not None for r in refused[:-1])
        assert refused[-1].retry_at is None
        assert node.of_type(DeliveryReported) == [
            DeliveryReported(message_id, wire.DeliveryStatus.FAILED, None)
        ]
        nursery.cancel_scope.cancel()


def test_an_error_that_names_no_send_message_is_surfaced_without_touching_the_outbox() -> None:
    client = DeviceClient()
    client.outbox[7] = wire.SendMessage(7, 3, wire.TextContent("kept"))
    client._on_operation(wire.Error(wire.ErrorCode.UNKNOWN_ALIAS, message_type=9, message_id=7))
    client._on_operation(wire.Error(wire.ErrorCode.INTERNAL))
    assert client.events() == [
        OperationRefused(None, wire.ErrorCode.UNKNOWN_ALIAS, 9),
        OperationRefused(None, wire.ErrorCode.INTERNAL, None),
    ]
    assert set(client.outbox) == {7}
