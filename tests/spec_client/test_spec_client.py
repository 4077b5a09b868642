"""The spec-only device client of tests/spec_client/client.py against the real gateway over UDP.

The gateway side is the real thing: a :class:`UdpEndpoint` on 127.0.0.1 running
:class:`GatewaySessions` with real EDHOC (tests/session/helpers.py's responder and credentials).
The device side knows only docs/protocol.md: its datagrams go through a plain trio UDP socket.
Every network wait is bounded by ``trio.fail_after``; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import hashlib
import hmac
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import cbor2
import trio

from gateway import wire  # gateway side only: send_operation takes the gateway's message type
from gateway.session import (
    DeviceSessionEstablished,
    DeviceSessionResumed,
    GatewaySessions,
    OperationAcknowledged,
    OperationReceived,
    OperationRejected,
    TicketKeyRing,
    WireCodec,
)
from gateway.session.events import Event
from gateway.transport import UdpEndpoint
from tests.session.helpers import (
    DEVICE_CREDENTIAL,
    DEVICE_KEY,
    GATEWAY_CREDENTIAL,
    responder_factory,
)
from tests.spec_client.client import (
    CONTENT_APPLICATION,
    CONTENT_CONTROL,
    FRAGMENT_FIRST,
    FRAGMENT_LAST,
    FRAGMENT_MIDDLE,
    FRAGMENT_WHOLE,
    KIND_RESUMED,
    RELIABLE,
    UNRELIABLE,
    Handshake,
    NewTicket,
    Record,
    Resume,
    SessionKeys,
    decode_control,
    decode_sequence,
    parse_handshake_packet,
    parse_new_ticket,
    parse_reject,
    send_message,
    send_message_map,
)

WAIT = 10.0  # bound on any one network wait on loopback; a failure, never a measurement
# What enrollment gives the device: its private key, its CCS and the gateway's CCS (bytes only).
DEVICE_CCS = DEVICE_CREDENTIAL.encoded
GATEWAY_CCS = GATEWAY_CREDENTIAL.public().encoded
TICKET_LIFETIME = 7 * 24 * 3600  # Section 3.10


@dataclass
class Gateway:
    """A running gateway: its endpoint, its key ring and a way to stop it without goodbyes."""

    endpoint: UdpEndpoint
    ring: TicketKeyRing
    address: tuple[str, int]
    crash: Callable[[], Awaitable[None]]

    async def event(self, kind: type[Event]) -> Event:
        """The next gateway event of ``kind`` (others are skipped)."""
        with trio.fail_after(WAIT):
            async for item in self.endpoint.events:
                if isinstance(item.event, kind):
                    return item.event
        raise AssertionError("event channel closed")


@asynccontextmanager
async def running_gateway(
    nursery: trio.Nursery, ring: TicketKeyRing, port: int = 0
) -> AsyncIterator[Gateway]:
    core = GatewaySessions(
        handshake_factory=responder_factory(),
        codec=WireCodec(),
        ticket_keys=ring,
        rng=random.Random(5),
    )
    endpoint = UdpEndpoint(core, host="127.0.0.1", port=port)
    scope = trio.CancelScope()
    stopped = trio.Event()

    async def serve(task_status: trio.TaskStatus[tuple[str, int]]) -> None:
        try:
            with scope:
                await endpoint.serve(task_status=task_status)
        finally:
            stopped.set()

    async def crash() -> None:
        """Stop without the Close items of aclose(): the sessions are simply forgotten."""
        scope.cancel()
        with trio.fail_after(WAIT):
            await stopped.wait()

    address = await nursery.start(serve)
    yield Gateway(endpoint, ring, (address[0], address[1]), crash)
    scope.cancel()


class Device:
    """The device's socket and its one session."""

    def __init__(self, sock: trio.socket.SocketType, gateway: tuple[str, int]) -> None:
        self.sock = sock
        self.gateway = gateway
        self.sent = 0
        self.session: SessionKeys | None = None
        self.ticket: NewTicket | None = None

    async def send(self, datagram: bytes) -> None:
        assert len(datagram) <= 1232  # Section 3.2
        self.sent += 1
        await self.sock.sendto(datagram, self.gateway)

    async def receive(self) -> bytes:
        with trio.fail_after(WAIT):
            data, _ = await self.sock.recvfrom(2048)
        return data

    async def record(self) -> Record:
        assert self.session is not None
        return self.session.open_record(await self.receive())

    @property
    def keys(self) -> SessionKeys:
        assert self.session is not None
        return self.session


@asynccontextmanager
async def device_socket(gateway: Gateway) -> AsyncIterator[Device]:
    sock = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        await sock.bind(("127.0.0.1", 0))
        yield Device(sock, gateway.address)


async def handshake(device: Device) -> dict[str, int]:
    """Section 3.3 end to end; returns the EDHOC message sizes."""
    edhoc = Handshake(DEVICE_KEY, DEVICE_CCS, GATEWAY_CCS)
    initial, message_1 = edhoc.initial()
    await device.send(initial)
    connection_id, message_2, message_3_packet, master = edhoc.finish(await device.receive())
    # Section 3.3: a message_3 that fails verification (anyone who saw C_R could send one) is
    # dropped and leaves the half-open handshake alive for the genuine one.
    forged = bytearray(message_3_packet)
    forged[-1] ^= 1
    await device.send(bytes(forged))
    await device.send(message_3_packet)
    device.session = SessionKeys(connection_id, master)
    ticket_record = await device.record()
    assert (ticket_record.space, ticket_record.sequence) == (RELIABLE, 0)
    assert (ticket_record.content, ticket_record.fragment) == (CONTENT_CONTROL, FRAGMENT_WHOLE)
    (item,) = decode_control(ticket_record.plaintext)
    device.ticket = parse_new_ticket(item)
    return {
        "message_1": len(message_1),
        "message_2": len(message_2),
        "message_3": len(message_3_packet) - 1 - len(connection_id),
    }


def reset_token(ring: TicketKeyRing, connection_id: bytes) -> bytes:
    """Section 3.9, computed on the gateway side of the test from the gateway's reset key."""
    return hmac.new(ring.reset_key, b"reset" + connection_id, hashlib.sha256).digest()[:16]


async def test_handshake_sizes_and_new_ticket() -> None:
    async with trio.open_nursery() as nursery:
        async with (
            running_gateway(nursery, TicketKeyRing()) as gateway,
            device_socket(gateway) as device,
        ):
            sizes = await handshake(device)
            established = await gateway.event(DeviceSessionEstablished)
            assert isinstance(established, DeviceSessionEstablished)
            assert established.connection_id == device.keys.connection_id
            assert len(device.keys.connection_id) == 2
        nursery.cancel_scope.cancel()
    assert sizes == {"message_1": 37, "message_2": 47, "message_3": 19}  # Section 3.3: 103
    assert device.ticket is not None
    assert 17 <= len(device.ticket.ticket) <= 23
    assert device.ticket.lifetime == TICKET_LIFETIME
    assert device.ticket.reset_token == reset_token(gateway.ring, device.keys.connection_id)


async def test_ping_acked_alone_and_gateway_message_acked_by_device() -> None:
    async with trio.open_nursery() as nursery:
        async with (
            running_gateway(nursery, TicketKeyRing()) as gateway,
            device_socket(gateway) as device,
        ):
            await handshake(device)
            # Section 3.5: the NewTicket's ack rides in front of the Ping (piggybacked).
            sent_before = device.sent
            await device.send(
                device.keys.reliable_record(cbor2.dumps(1) + cbor2.dumps({0: 1, 1: 7}))
            )
            received = await gateway.event(OperationReceived)
            assert isinstance(received, OperationReceived)
            assert received.message == wire.Ping(id=7)
            # Nothing else leaves the gateway, so after the ack delay the ack goes alone, in an
            # unreliable record: N = 1 (the NewTicket was record 0), k = 0, Ack(cumulative=1).
            ack = await device.record()
            assert (ack.space, ack.sequence, ack.content) == (UNRELIABLE, 256, 0)
            assert decode_sequence(ack.plaintext) == [1]
            assert device.sent == sent_before + 1  # acked without any retransmission

            # The gateway sends the device an instant message; the device acknowledges it.
            message = wire.IncomingMessage(
                id=42, sender=3, timestamp=1735689600, content=wire.TextContent("On my way")
            )
            operation = gateway.endpoint.send_operation(device.keys.connection_id, message)
            record = await device.record()
            assert (record.space, record.sequence, record.fragment) == (RELIABLE, 1, 0)
            assert record.content == CONTENT_APPLICATION
            assert decode_sequence(record.plaintext) == [
                {0: 5, 1: 42, 2: 3, 3: "On my way", 7: 1735689600}
            ]
            await device.send(device.keys.ack_record())
            acknowledged = await gateway.event(OperationAcknowledged)
            assert isinstance(acknowledged, OperationAcknowledged)
            assert acknowledged.operation_id == operation
        nursery.cancel_scope.cancel()


async def test_fragmentation_both_ways() -> None:
    text = "x" * 3000
    async with trio.open_nursery() as nursery:
        async with (
            running_gateway(nursery, TicketKeyRing()) as gateway,
            device_socket(gateway) as device,
        ):
            await handshake(device)
            await device.send(device.keys.ack_record())
            message = wire.IncomingMessage(
                id=1, sender=3, timestamp=1735689600, content=wire.TextContent(text)
            )
            operation = gateway.endpoint.send_operation(device.keys.connection_id, message)
            positions: list[int] = []
            assembled = b""
            while not positions or positions[-1] != FRAGMENT_LAST:
                record = await device.record()
                assert record.space == RELIABLE
                positions.append(record.fragment)
                assembled += record.plaintext
            assert positions == [FRAGMENT_FIRST, FRAGMENT_MIDDLE, FRAGMENT_LAST]
            assert cbor2.loads(assembled) == {0: 5, 1: 1, 2: 3, 3: text, 7: 1735689600}
            await device.send(device.keys.ack_record())
            acknowledged = await gateway.event(OperationAcknowledged)
            assert isinstance(acknowledged, OperationAcknowledged)
            assert acknowledged.operation_id == operation

            records = device.keys.fragments(cbor2.dumps({0: 4, 1: 9, 2: 3, 3: text}))
            assert len(records) == 3
            for datagram in records:
                await device.send(datagram)
            received = await gateway.event(OperationReceived)
            assert isinstance(received, OperationReceived)
            assert received.message == wire.SendMessage(id=9, to=3, content=wire.TextContent(text))
        nursery.cancel_scope.cancel()


async def test_send_message_in_both_forms_and_its_ack_fit_the_budget() -> None:
    """Sections 6.4 and 3.4.6: a compact SendMessage of a 20-character text is a 36-byte record
    and its ack a 12-byte one (48 bytes); the map form of a device of the earlier text still works.
    """
    text = "Running late, 10 min"
    async with trio.open_nursery() as nursery:
        async with (
            running_gateway(nursery, TicketKeyRing()) as gateway,
            device_socket(gateway) as device,
        ):
            await handshake(device)
            await device.send(device.keys.ack_record())  # the NewTicket (record 0) is acked
            for number, (encoding, record_size) in enumerate(
                [(send_message, 36), (send_message_map, 41)]
            ):
                record = device.keys.reliable_record(encoding(7 + number, 3, text))
                assert len(record) == record_size
                await device.send(record)
                received = await gateway.event(OperationReceived)
                assert isinstance(received, OperationReceived)
                assert received.message == wire.SendMessage(
                    id=7 + number, to=3, content=wire.TextContent(text)
                )
                assert isinstance(received.message, wire.SendMessage)
                assert received.message.compact is (number == 0)
                datagram = await device.receive()
                assert len(datagram) == 12
                ack = device.keys.open_record(datagram)
                # N = 1 (the NewTicket was the gateway's record 0), k = 0; our records 0..number.
                assert (ack.space, ack.sequence) == (UNRELIABLE, 256 + number)
                assert decode_sequence(ack.plaintext) == [number + 1]

            # An Ack piggybacked in front of a compact SendMessage: one record, both read.
            await device.send(
                device.keys.reliable_record(cbor2.dumps(1) + send_message(9, 3, "ok"))
            )
            received = await gateway.event(OperationReceived)
            assert isinstance(received, OperationReceived)
            assert received.message == wire.SendMessage(id=9, to=3, content=wire.TextContent("ok"))

            # A malformed compact form (Section 6.4: exactly three items) is refused with an
            # Error INVALID_FIELD, and the record is acknowledged all the same (Section 4.7).
            await device.send(device.keys.reliable_record(cbor2.dumps([10, 3, "ok", False])))
            rejected = await gateway.event(OperationRejected)
            assert isinstance(rejected, OperationRejected)
            assert rejected.error.code is wire.ErrorCode.INVALID_FIELD
        nursery.cancel_scope.cancel()


async def _resume(device: Device, nonce: bytes) -> tuple[Resume, bytes]:
    assert device.ticket is not None
    resume = Resume.build(device.ticket, nonce)
    assert len(resume.packet) <= 40  # Section 3.8
    await device.send(resume.packet)
    return resume, await device.receive()


async def test_resumption_then_reject_after_restart() -> None:
    ring = TicketKeyRing()
    async with trio.open_nursery() as nursery:
        async with (
            running_gateway(nursery, ring) as gateway,
            device_socket(gateway) as device,
        ):
            await handshake(device)
            await device.send(device.keys.ack_record())
            old = device.keys
            first_ticket = device.ticket
            assert first_ticket is not None

            resume, answer = await _resume(device, bytes(range(8)))
            connection_id, master = resume.accept(answer)
            resumed = await gateway.event(DeviceSessionResumed)
            assert isinstance(resumed, DeviceSessionResumed)
            assert resumed.connection_id == connection_id != old.connection_id
            assert master != old.master
            device.session = SessionKeys(connection_id, master)
            # Both directions start again at 0: the new NewTicket is the gateway's record 0.
            ticket_record = await device.record()
            assert (ticket_record.space, ticket_record.sequence) == (RELIABLE, 0)
            (item,) = decode_control(ticket_record.plaintext)
            device.ticket = parse_new_ticket(item)
            assert device.ticket.reset_token == reset_token(ring, connection_id)
            await device.send(
                device.keys.reliable_record(cbor2.dumps(1) + cbor2.dumps({0: 1, 1: 8}))
            )
            received = await gateway.event(OperationReceived)
            assert isinstance(received, OperationReceived)
            assert received.message == wire.Ping(id=8)
            ack = await device.record()
            assert decode_sequence(ack.plaintext) == [1]

            # An identical RESUME gets the cached answer and creates nothing.
            await device.send(resume.packet)
            assert await device.receive() == answer

            # The resumption ended the old session: its id is answered as unknown, with
            # the reset token the device learnt for it.
            await device.send(old.reliable_record(cbor2.dumps({0: 1, 1: 9})))
            reason, token = parse_reject(await device.receive())
            assert reason == 1
            assert hmac.compare_digest(token, first_ticket.reset_token)

            # The first ticket is spent: a fresh RESUME with it gets REJECT(2) with its proof.
            device.ticket, latest = first_ticket, device.ticket
            spent, answer = await _resume(device, bytes(range(8, 16)))
            reason, proof = parse_reject(answer)
            assert reason == 2
            assert hmac.compare_digest(proof, spent.rejected_proof())
            device.ticket = latest

            # The gateway crashes (no Close) and restarts with its persisted key ring.
            snapshot = ring.to_bytes()
            await gateway.crash()
            restored = TicketKeyRing.from_bytes(snapshot, trio.current_time())
            async with running_gateway(nursery, restored, gateway.address[1]):
                await _after_restart(device, latest)
        nursery.cancel_scope.cancel()


async def _after_restart(device: Device, latest: NewTicket) -> None:
    """A record on the forgotten id: a REJECT(1) the device verifies, then a resumption."""
    await device.send(device.keys.reliable_record(cbor2.dumps({0: 1, 1: 10})))
    reason, token = parse_reject(await device.receive())
    assert reason == 1
    assert hmac.compare_digest(token, latest.reset_token)
    # Acting on the verified REJECT(1), the device resumes with its latest ticket.
    resume, answer = await _resume(device, bytes(range(16, 24)))
    assert parse_handshake_packet(answer)[0] == KIND_RESUMED
    connection_id, master = resume.accept(answer)
    device.session = SessionKeys(connection_id, master)
    ticket_record = await device.record()
    assert (ticket_record.space, ticket_record.sequence) == (RELIABLE, 0)


def test_client_reproduces_the_doc_examples() -> None:
    """The client's formulas against the hex examples of Sections 3.4.6, 3.8 and 3.9."""
    device = SessionKeys(bytes.fromhex("4a17"), bytes(range(32)))
    ping = device.reliable_record(cbor2.dumps({0: 1, 1: 7}))
    assert ping.hex() == "804a1700e8d904f264e6b1d39b8ad11a4c"  # session:record-device
    sent = SessionKeys(bytes.fromhex("4a17"), bytes(range(32))).reliable_record(
        send_message(7, 3, "Running late, 10 min")
    )
    assert sent.hex() == (  # session:record-send, 36 bytes
        "804a1700c9de068731038db694d350e60c44f35043c471ad4a7995b3703a7ec89f084dce"
    )
    assert send_message(7, 3, "Running late, 10 min").hex() == (  # wire:send-text-alias
        "8307037452756e6e696e67206c6174652c203130206d696e"
    )
    assert send_message_map(7, 3, "Running late, 10 min").hex() == (  # wire:send-text-alias-map
        "a4000401070203037452756e6e696e67206c6174652c203130206d696e"
    )
    ack = device_view_of_gateway(bytes(range(32))).open_record(
        bytes.fromhex("a000008c41d108af6b76cf28")  # session:record-ack
    )
    assert (ack.space, ack.sequence, decode_sequence(ack.plaintext)) == (UNRELIABLE, 0, [1])

    resume_hex = "40000000001abbcc7a692c96e4c8e8da847f09a1a2a3a4a5a6a7a81fa9a8c3f3d0c21a"
    ticket = bytes.fromhex(resume_hex)[1:19]  # 4 + 6 sealed + 8 tag
    ticket_key = bytes(range(16))
    secret = hmac.new(ticket_key, b"psk" + ticket, hashlib.sha256).digest()[:16]
    resume = Resume.build(
        NewTicket(ticket, secret, 0, bytes(16)), bytes.fromhex("a1a2a3a4a5a6a7a8")
    )
    assert resume.packet.hex() == resume_hex  # session:resume
    connection_id, _master = resume.accept(bytes.fromhex("524a17b1b2b3b4b5b6b7b84341b546d6b1427b"))
    assert connection_id == bytes.fromhex("4a17")  # session:resumed, confirmation verified

    zero_ring = TicketKeyRing(reset_key=bytes(32))
    reason, token = parse_reject(bytes.fromhex("6001af0c96fb9184e2304da7abd5fae6172f"))
    assert (reason, token) == (1, reset_token(zero_ring, bytes.fromhex("4a17")))  # session:reject


def device_view_of_gateway(master: bytes) -> SessionKeys:
    """A device session with no connection id, for opening the gateway's example records."""
    return SessionKeys(b"", master)
