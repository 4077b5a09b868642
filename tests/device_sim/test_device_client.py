"""The device client against a real gateway session core over the seeded fake network."""

from __future__ import annotations

import math
import random
import sys
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TypeVar

import pytest
import trio
import trio.lowlevel
import trio.testing

from device_sim.client import (
    STATE_BOUND_EMPTY_OUTBOX,
    TRANSITIONS,
    ClientError,
    ClientEvent,
    ClientInput,
    ClientState,
    Connected,
    DeliveryReported,
    DeviceClient,
    InboundWindow,
    MessageArrived,
    Slept,
    Woke,
    core,
)
from device_sim.soft_p256 import MeteredSoftP256Crypto
from gateway import wire
from gateway.edhoc.crypto import Crypto
from gateway.enroll.provisioning import (
    GatewayEndpoint,
    Provisioning,
    Transport,
    read_provisioning_file,
    write_provisioning_file,
)
from gateway.session import GatewaySessions, OperationReceived, WireCodec
from gateway.session.events import Event
from tests.session.fakenet import FakeNetwork, LinkModel
from tests.session.helpers import (
    DEVICE_CREDENTIAL,
    DEVICE_KEY,
    DEVICE_KID,
    GATEWAY_ADDRESS,
    GATEWAY_CREDENTIAL,
    Recorder,
    make_gateway,
    run_gateway,
    until,
)

DEVICE_ADDRESS = ("198.51.100.9", 41000)
EventT = TypeVar("EventT", bound=ClientEvent)


def provision(tmp_path: Path, *, with_private_key: bool = True) -> Provisioning:
    """Write a provisioning file as ``impp-gateway enroll`` does, and read it back."""
    path = tmp_path / "device.prov"
    write_provisioning_file(
        path,
        Provisioning(
            device_kid=DEVICE_KID,
            device_credential=DEVICE_CREDENTIAL.public().encoded,
            gateway_credential=GATEWAY_CREDENTIAL.public().encoded,
            endpoints=(GatewayEndpoint(Transport.UDP, GATEWAY_ADDRESS[0], GATEWAY_ADDRESS[1]),),
            account="sensor@example.com",
            device_private_key=DEVICE_KEY if with_private_key else None,
        ),
    )
    return read_provisioning_file(path)


@dataclass
class ClientNode:
    """The trio driver a device firmware's main loop would be: radio in, timers, radio out."""

    client: DeviceClient
    net: FakeNetwork
    events: list[ClientEvent] = field(default_factory=list)
    stamped: list[tuple[float, ClientEvent]] = field(default_factory=list)
    address: Hashable = DEVICE_ADDRESS

    def poke(self) -> None:
        """Something to send: wake the loop."""
        self.net.notify(self.address)

    async def run(self) -> None:
        inbox = self.net.bind(self.address, capacity=4096)
        while True:
            self.flush()
            deadline = self.client.next_deadline()
            with trio.move_on_at(deadline if deadline is not None else math.inf):
                data, source = await inbox.receive()
                if source is not None:
                    self.client.receive_datagram(data, trio.current_time())
            self.client.handle_timeout(trio.current_time())

    def flush(self) -> None:
        now = trio.current_time()
        for datagram in self.client.datagrams_to_send(now):
            self.net.send(self.address, GATEWAY_ADDRESS, datagram)
        for event in self.client.events():
            self.events.append(event)
            self.stamped.append((now, event))

    def of_type(self, kind: type[EventT]) -> list[EventT]:
        return [e for e in self.events if isinstance(e, kind)]


@dataclass
class GatewayApp:
    """The gateway's application side: reports every SendMessage delivered, records what came."""

    gateway: GatewaySessions
    send_ids: list[int] = field(default_factory=list)
    received: list[wire.Message] = field(default_factory=list)
    report: bool = True
    held: list[int] = field(default_factory=list)  # reports not sent while ``report`` is off
    connection_id: bytes = b""  # the session the last operation came on

    def on_event(self, connection_id: bytes, event: Event) -> None:
        if isinstance(event, OperationReceived):
            self.connection_id = connection_id
            self.received.append(event.message)
            if isinstance(event.message, wire.SendMessage):
                self.send_ids.append(event.message.id)
                if event.message.id not in self.held:
                    self.held.append(event.message.id)
            if self.report:
                self.release()

    def release(self) -> None:
        """Send the held DeliveryReports on the current session."""
        held, self.held = self.held, []
        for message_id in held:
            report = wire.DeliveryReport(message_id, wire.DeliveryStatus.DELIVERED)
            self.gateway.send_operation(self.connection_id, report)


async def start(
    nursery: trio.Nursery,
    tmp_path: Path,
    *,
    link: LinkModel | None = None,
    seed: int = 5,
    own_key: bool = False,
    crypto: Crypto | None = None,
) -> tuple[ClientNode, GatewayApp, FakeNetwork]:
    gateway = make_gateway()
    app = GatewayApp(gateway)
    net = FakeNetwork(nursery, seed=seed, link=link or LinkModel(delay=0.1))
    nursery.start_soon(run_gateway, gateway, net, GATEWAY_ADDRESS, Recorder(), app.on_event)
    client = DeviceClient(
        rng=random.Random(seed), random_bytes=random.Random(seed + 1).randbytes, crypto=crypto
    )
    node = ClientNode(client, net)
    nursery.start_soon(node.run)
    await trio.lowlevel.checkpoint()
    if own_key:
        provisioning = provision(tmp_path, with_private_key=False)
        client.start(provisioning, trio.current_time(), private_key=DEVICE_KEY)
    else:
        client.start(provision(tmp_path), trio.current_time())
    node.poke()
    await until(lambda: client.state is ClientState.ESTABLISHED, limit=120)
    return node, app, net


async def test_handshake_from_provisioning_file_then_send_and_confirm(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        node, app, _ = await start(nursery, tmp_path)
        client = node.client
        assert node.of_type(Connected) == [Connected(resumed=False)]
        message_id = client.send_text(3, "Running late, 10 min")
        assert message_id == 1
        assert set(client.outbox) == {1}
        node.poke()
        await until(lambda: not client.outbox)
        assert app.send_ids == [1]
        assert node.of_type(DeliveryReported) == [
            DeliveryReported(1, wire.DeliveryStatus.DELIVERED, None)
        ]
        nursery.cancel_scope.cancel()


async def test_texts_go_in_the_compact_form_where_it_fits(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """docs/protocol.md §6.4: [id, to, text] when a report is wanted, the map form otherwise."""
    async with trio.open_nursery() as nursery:
        node, app, _ = await start(nursery, tmp_path)
        client = node.client
        client.send_text(3, "Running late, 10 min")
        client.send_text(3, "no report, please", want_report=False)
        node.poke()
        await until(lambda: len(app.received) == 2)
        sent = [m for m in app.received if isinstance(m, wire.SendMessage)]
        assert [(m.id, m.want_report, m.compact) for m in sent] == [
            (1, True, True),
            (2, False, False),
        ]
        nursery.cancel_scope.cancel()


async def test_a_device_without_p256_hardware_runs_its_handshake_on_the_ecdsa_package(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    crypto = MeteredSoftP256Crypto()
    async with trio.open_nursery() as nursery:
        node, app, _ = await start(nursery, tmp_path, crypto=crypto)
        message_id = node.client.send_text(3, "on software P-256")
        node.poke()
        await until(lambda: not node.client.outbox)
        assert app.send_ids == [message_id]
        # Method 3 as initiator: its ephemeral key, then G_XY, G_RX and G_IY.
        assert crypto.counts.p256_scalar_multiplications == 4
        nursery.cancel_scope.cancel()


async def test_loss_is_repaired_by_retransmission(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        node, app, net = await start(
            nursery, tmp_path, link=LinkModel(loss=0.3, duplicate=0.1, delay=0.2, jitter=0.3)
        )
        ids = [node.client.send_text(3, f"reading {n}") for n in range(6)]
        node.poke()
        await until(lambda: not node.client.outbox, limit=600)
        assert sorted(set(app.send_ids)) == ids
        reported = [e.message_id for e in node.of_type(DeliveryReported)]
        assert sorted(reported) == ids  # each confirmed once, whatever the network repeated
        assert net.counters.dropped > 0
        nursery.cancel_scope.cancel()


async def test_duplicate_inbound_message_is_shown_once(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        node, app, _ = await start(nursery, tmp_path)
        gateway = app.gateway
        (connection_id,) = gateway.sessions()
        incoming = wire.IncomingMessage(42, 3, 1735689600, wire.TextContent("On my way"))
        for message in (
            incoming,
            incoming,
            wire.IncomingMessage(43, 3, 1735689601, wire.TextContent("Here")),
            incoming,
        ):
            gateway.send_operation(connection_id, message)
        node.net.notify(GATEWAY_ADDRESS)
        await until(lambda: len(node.of_type(MessageArrived)) == 2)
        await trio.sleep(10)
        arrived = node.of_type(MessageArrived)
        assert [e.message_id for e in arrived] == [42, 43]
        assert node.client.duplicates_dropped == 2
        nursery.cancel_scope.cancel()


async def test_sleep_on_a_good_link_turns_the_radio_off_after_the_ack(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        node, app, net = await start(nursery, tmp_path)
        client = node.client
        await until(lambda: client.session is not None and client.session.ticket is not None)
        start_sleep = trio.current_time()
        client.sleep(60, start_sleep)
        node.poke()
        await until(lambda: bool(node.of_type(Slept)))
        assert any(isinstance(m, wire.Sleep) for m in app.received)
        sent_while_off = net.counters.by_source.get(DEVICE_ADDRESS, 0)
        await trio.sleep(30)
        assert net.counters.by_source.get(DEVICE_ADDRESS, 0) == sent_while_off
        assert client.next_deadline() == start_sleep + 60
        await until(lambda: client.state is ClientState.ESTABLISHED, limit=600)
        assert [t for t, e in node.stamped if isinstance(e, Woke)] == [start_sleep + 60]
        assert node.of_type(Connected)[-1] == Connected(resumed=True)
        nursery.cancel_scope.cancel()


async def test_sleep_then_resume_with_ticket_resends_outbox_once_per_id(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        node, app, net = await start(nursery, tmp_path)
        client = node.client
        await until(lambda: client.session is not None and client.session.ticket is not None)
        app.report = False  # the gateway holds the reports back: the messages stay unconfirmed
        accepted = client.send_text(3, "acknowledged, not yet reported")
        node.poke()
        await until(lambda: accepted in app.send_ids)
        await trio.sleep(5)  # the session acknowledgement comes back; no report
        net.link.loss = 1.0  # from here until the radio is off nothing gets through
        lost = client.send_text(3, "lost before sleep")
        node.poke()
        await trio.sleep(0.5)
        start_sleep = trio.current_time()
        client.sleep(60, start_sleep)
        asleep = client.send_text(4, "written while asleep")
        node.poke()
        await until(lambda: bool(node.of_type(Slept)))
        (off_at,) = [t for t, e in node.stamped if isinstance(e, Slept)]
        assert off_at == start_sleep + client.sleep_drain  # the Sleep was never acknowledged
        net.link.loss = 0.0
        assert lost not in app.send_ids
        app.report = True
        await until(lambda: client.state is ClientState.ESTABLISHED, limit=600)
        await until(lambda: asleep in app.send_ids and lost in app.send_ids, limit=600)
        app.release()
        net.notify(GATEWAY_ADDRESS)
        await until(lambda: not client.outbox, limit=600)
        assert node.of_type(Woke) == [Woke(with_ticket=True)]
        assert node.of_type(Connected)[-1] == Connected(resumed=True)
        assert [t for t, e in node.stamped if isinstance(e, Woke)] == [start_sleep + 60]
        assert [app.send_ids.count(i) for i in (accepted, lost, asleep)] == [1, 1, 1]
        kinds = [type(m) for m in app.received if isinstance(m, wire.Sleep | wire.Wake)]
        assert kinds == [wire.Sleep, wire.Wake]  # the unacknowledged Sleep went again, first
        reported = sorted(e.message_id for e in node.of_type(DeliveryReported))
        assert reported == [accepted, lost, asleep]
        nursery.cancel_scope.cancel()


async def test_state_size_is_measured_and_bounded(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        node, _, _ = await start(nursery, tmp_path)
        client = node.client
        await until(lambda: client.session is not None and client.session.ticket is not None)
        size = client.state_size()
        print(f"device client state, empty outbox: {size} total={size.total} B")
        assert size.ticket > 0
        assert size.session_keys > 0
        assert size.identity > 0
        assert size.outbox == 0
        assert size.total <= STATE_BOUND_EMPTY_OUTBOX
        app_ids = [client.send_text(3, "x" * 20) for _ in range(4)]
        grown = client.state_size()
        print(f"device client state, 4 queued 20-char texts: total={grown.total} B")
        codec = WireCodec()
        queued = [client.outbox[i] for i in app_ids]
        assert None not in queued  # nothing acknowledged yet: every body is kept
        assert grown.outbox == sum(len(codec.encode(m)) for m in queued if m is not None)
        assert grown.total - size.total == grown.outbox
        client.sleep(600, trio.current_time())
        client.send_text(3, "y" * 20)
        client.set_presence(available=False)
        asleep = client.state_size()
        unsent = [m for m in client.outbox.values() if m is not None]
        assert asleep.outbox == sum(len(codec.encode(m)) for m in unsent) + len(
            codec.encode(wire.SetPresence(open=False))
        )  # each deferred message counted once
        nursery.cancel_scope.cancel()


def test_inbound_window_drops_repeats_in_bounded_memory() -> None:
    window = InboundWindow(size=8)
    assert [window.first_time(i) for i in (5, 3, 5, 3, 4, 20, 4, 19, 11, 12)] == [
        True,
        True,
        False,
        False,
        True,
        True,
        False,
        True,
        False,
        True,
    ]
    assert window.byte_size() == 9


def test_input_the_table_does_not_list_fails_the_client(tmp_path: Path) -> None:
    client = DeviceClient()
    with pytest.raises(ClientError):
        client.wake(0.0)
    assert client.state is ClientState.FAILED
    with pytest.raises(ClientError):
        client.send_text(3, "no")
    assert all(state is not ClientState.FAILED for state, _ in TRANSITIONS)
    assert (ClientState.SLEEPING, ClientInput.WAKE) in TRANSITIONS


async def test_device_made_key_pair_passed_beside_the_file(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    with pytest.raises(ClientError):
        DeviceClient().start(provision(tmp_path, with_private_key=False), 0.0)
    async with trio.open_nursery() as nursery:
        node, _, _ = await start(nursery, tmp_path, own_key=True)
        p = node.client.provisioning
        assert p is not None
        assert p.device_private_key is None
        expected = len(p.device_kid) + len(p.device_credential) + len(p.gateway_credential) + 32
        assert node.client.state_size().identity == expected  # the key kept beside the file
        assert node.client.state is ClientState.ESTABLISHED
        nursery.cancel_scope.cancel()


FORBIDDEN_CODE = ("/xml/", "/x509/", "/rsa", "gateway/xmpp/", "gateway/impp/", "gateway/signing/")


async def test_client_runs_no_xml_x509_or_rsa_code(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    """Profile every Python and C call made under the client's own code during a handshake, a
    send and its report, a sleep and a resumption: none comes from XML, X.509 or RSA code."""
    called: set[str] = set()
    client_code = str(Path(core.__file__))

    def under_client(frame: FrameType | None) -> bool:
        while frame is not None:
            if frame.f_code.co_filename == client_code:
                return True
            frame = frame.f_back
        return False

    def hook(frame: FrameType, event: str, arg: object) -> None:
        if event not in ("call", "c_call") or not under_client(frame):
            return
        if event == "call":
            called.add(frame.f_code.co_filename)
        else:
            called.add(f"{getattr(arg, '__module__', None)}/{getattr(arg, '__qualname__', '')}")

    sys.setprofile(hook)
    try:
        async with trio.open_nursery() as nursery:
            node, _, _ = await start(nursery, tmp_path)
            client = node.client
            await until(lambda: client.session is not None and client.session.ticket is not None)
            client.send_text(3, "hello")
            node.poke()
            await until(lambda: not client.outbox)
            client.sleep(30, trio.current_time())
            node.poke()
            await until(
                lambda: bool(node.of_type(Woke)) and client.state is ClientState.ESTABLISHED
            )
            client.state_size()
            nursery.cancel_scope.cancel()
    finally:
        sys.setprofile(None)
    assert any("gateway/edhoc/" in name for name in called)  # the hook saw the handshake
    assert [name for name in called if any(bad in name.lower() for bad in FORBIDDEN_CODE)] == []


async def test_link_outage_reconnects_and_delivers_the_retained_message_once(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    async with trio.open_nursery() as nursery:
        node, app, net = await start(nursery, tmp_path)
        client = node.client
        await until(lambda: client.session is not None and client.session.ticket is not None)
        net.link.loss = 1.0
        message_id = client.send_text(3, "through the outage")
        node.poke()
        await until(lambda: client.state is ClientState.RESUMING, limit=3600)
        assert message_id in client.outbox
        net.link.loss = 0.0
        await until(lambda: not client.outbox, limit=3600)
        assert client.state is ClientState.ESTABLISHED
        assert app.send_ids == [message_id]
        assert node.of_type(Connected)[-1] == Connected(resumed=True)
        nursery.cancel_scope.cancel()
