"""The device client against a gateway that acknowledges only durable operations (§3.5): an
acknowledged SendMessage is accepted and never sent again; an unacknowledged one is."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import trio
import trio.testing

from device_sim.client import ClientState, DeliveryReported, DeviceClient, MessageAccepted
from gateway import wire
from gateway.session import GatewayConfig, GatewaySessions, OperationReceived, WireCodec
from gateway.session.events import Event
from tests.device_sim.test_device_client import ClientNode, provision
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import GATEWAY_ADDRESS, Recorder, make_gateway, run_gateway, until


@dataclass
class DurableApp:
    """Releases every operation at once (it is "committed"), except SendMessages in ``withhold``."""

    gateway: GatewaySessions
    withhold: set[int] = field(default_factory=set)
    send_ids: list[int] = field(default_factory=list)
    withheld: list[tuple[bytes, int]] = field(default_factory=list)  # (session, receipt)

    def on_event(self, connection_id: bytes, event: Event) -> None:
        if not isinstance(event, OperationReceived):
            return
        message = event.message
        if isinstance(message, wire.SendMessage):
            self.send_ids.append(message.id)
            if message.id in self.withhold:
                self.withheld.append((connection_id, event.receipt))
                return
        self.gateway.release(connection_id, event.receipt, trio.current_time())

    def release_withheld(self) -> None:
        withheld, self.withheld = self.withheld, []
        for connection_id, receipt in withheld:
            self.gateway.release(connection_id, receipt, trio.current_time())

    def report(self, message_id: int) -> None:
        (connection_id,) = self.gateway.sessions()
        report = wire.DeliveryReport(message_id, wire.DeliveryStatus.DELIVERED)
        self.gateway.send_operation(connection_id, report)


async def test_acknowledged_message_is_accepted_and_not_resent_after_resumption(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        gateway = make_gateway(config=GatewayConfig(hold_acknowledgements=True))
        app = DurableApp(gateway)
        net = FakeNetwork(nursery, seed=5, link=LinkModel(delay=0.1))
        nursery.start_soon(run_gateway, gateway, net, GATEWAY_ADDRESS, Recorder(), app.on_event)
        client = DeviceClient(rng=random.Random(5), random_bytes=random.Random(6).randbytes)
        node = ClientNode(client, net)
        nursery.start_soon(node.run)
        client.start(provision(tmp_path), trio.current_time())
        node.poke()
        await until(lambda: client.session is not None and client.session.ticket is not None)

        durable = client.send_text(3, "d" * 200)
        queued = client.state_size().outbox
        node.poke()
        await until(lambda: bool(node.of_type(MessageAccepted)))
        assert node.of_type(MessageAccepted) == [MessageAccepted(durable)]
        assert client.outbox == {durable: None}  # kept for its report, without the body
        assert client.accepted() == {durable}
        accepted = client.state_size().outbox
        print(f"outbox: {queued} B queued, {accepted} B once accepted")
        assert queued == len(
            WireCodec().encode(wire.SendMessage(durable, 3, wire.TextContent("d" * 200)))
        )
        assert accepted == 8  # the id alone, as a 64-bit counter

        pending = client.send_text(3, "not yet durable")
        app.withhold.add(pending)
        node.poke()
        await until(lambda: pending in app.send_ids)
        client.sleep(60, trio.current_time())  # the Sleep is released, the record of ``pending``
        node.poke()  # is not: it goes again in the resumed session
        await until(lambda: client.state is ClientState.ESTABLISHED and client.wake_at is None)
        await until(lambda: app.send_ids.count(pending) == 2)
        assert app.send_ids.count(durable) == 1
        assert node.of_type(MessageAccepted) == [MessageAccepted(durable)]
        app.release_withheld()  # the first copy's session is gone (ignored), the second's is not
        net.notify(GATEWAY_ADDRESS)
        await until(lambda: len(node.of_type(MessageAccepted)) == 2)
        assert node.of_type(MessageAccepted) == [MessageAccepted(durable), MessageAccepted(pending)]
        assert client.outbox == {durable: None, pending: None}

        app.report(durable)
        net.notify(GATEWAY_ADDRESS)
        await until(lambda: durable not in client.outbox)
        assert node.of_type(DeliveryReported) == [
            DeliveryReported(durable, wire.DeliveryStatus.DELIVERED, None)
        ]
        assert client.outbox == {pending: None}
        assert app.send_ids.count(durable) == 1
        nursery.cancel_scope.cancel()
