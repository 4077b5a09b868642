"""Receive loops survive any packet (issue 10 point 1; STYLE.md rule 8).

The crafted handshake: an ordinary EDHOC Initiator whose message_3 carries, as ID_CRED_I, an
x5chain certificate with the version field ``02 01 03``. Before the fix the gateway's session
core raised ``x509.InvalidVersion`` and the UDP endpoint and TCP listener died of it; the same
certificate in a fake gateway's message_2 did the same to the device side. Here the sans-IO
cores refuse it as a failed handshake, and the trio adapters, over real loopback sockets and over
memory streams, go on serving a legitimate device. Then a core that raises on purpose shows the
loops' own containment: the packet is dropped and counted as ``internal_error``, and the loop
goes on; cancellation and KeyboardInterrupt are not swallowed.
"""

from __future__ import annotations

import logging
import random
import socket
from collections.abc import Callable, Hashable

import pytest
import trio
import trio.testing

from gateway import wire
from gateway.edhoc import Credential, CredentialLookup
from gateway.session import (
    ChannelConfig,
    DeviceSession,
    DeviceSessionEstablished,
    GatewayConfig,
    GatewaySessions,
    OperationReceived,
    SessionClosed,
    StreamDeframer,
    TicketKeyRing,
    WireCodec,
    frame,
)
from gateway.transport import (
    CoreDriver,
    DeviceDriver,
    DeviceSessionEvent,
    StreamGateway,
    TcpListener,
    UdpEndpoint,
    run_device_over_stream,
    run_device_over_udp,
)
from gateway.transport._driver import TIMER_ERROR_BACKOFF
from tests.edhoc.hostile_certificates import (
    hostile_initiator_factory,
    hostile_responder_factory,
    p256_certificate,
    with_version,
)
from tests.session.helpers import (
    DEVICE_ADDRESS,
    DEVICE_CREDENTIAL,
    DEVICE_KEY,
    GATEWAY_CREDENTIAL,
    GATEWAY_KEY,
    initiator_factory,
    responder_factory,
)

ATTACKER = ("192.0.2.66", 4444)
SECRET = "do-not-log-this"  # the message of an injected exception: never in a log line


def _trusting(credential: Credential) -> CredentialLookup:
    """A lookup that knows exactly ``credential`` (the peer the hostile party talks to)."""
    public = credential.public()
    return lambda id_cred: public if id_cred.matches(public) else None


def _core(*, stream: bool) -> GatewaySessions:
    return GatewaySessions(
        handshake_factory=responder_factory(),
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        config=GatewayConfig(channel=ChannelConfig(stream=stream)),
        rng=random.Random(3),
    )


def _device_session(*, stream: bool = False, hostile: bool = False) -> DeviceSession:
    factory = (
        hostile_initiator_factory(
            with_version(p256_certificate(DEVICE_KEY, "device"), 3),
            DEVICE_KEY,
            lambda id_cred: (
                GATEWAY_CREDENTIAL.public() if id_cred.matches(GATEWAY_CREDENTIAL) else None
            ),
        )
        if hostile
        else initiator_factory()
    )
    return DeviceSession(
        handshake_factory=factory,
        codec=WireCodec(),
        config=ChannelConfig(stream=stream),
        rng=random.Random(4),
    )


def _crafted_handshake(
    gateway: Callable[[bytes], list[bytes]],
) -> list[bytes]:
    """Run the hostile device against ``gateway`` (datagram in, replies out); return its sends."""
    attacker = _device_session(hostile=True)
    attacker.connect(0.0)
    sent: list[bytes] = []
    replies: list[bytes] = []
    for _ in range(2):
        for datagram in attacker.datagrams_to_send(0.0):
            sent.append(datagram)
            replies = gateway(datagram)
        for reply in replies:
            attacker.receive_datagram(reply, 0.0)
    return sent


# -- the sans-IO cores, both directions --


def test_gateway_core_refuses_the_crafted_message_3() -> None:
    core = _core(stream=False)

    def gateway(datagram: bytes) -> list[bytes]:
        core.receive_datagram(datagram, ATTACKER, 0.0)
        return [data for data, _address in core.datagrams_to_send(0.0)]

    sent = _crafted_handshake(gateway)
    # INITIAL and HANDSHAKE: issue 10 saw 39 and 294 bytes; this certificate's names are shorter.
    assert [len(datagram) for datagram in sent] == [39, 285]
    assert core.statistics().dropped["handshake_failed"] == 1


def test_device_core_refuses_a_fake_gateways_message_2() -> None:
    fake_gateway = GatewaySessions(
        handshake_factory=hostile_responder_factory(
            with_version(p256_certificate(GATEWAY_KEY, "gateway"), 3),
            GATEWAY_KEY,
            lambda id_cred: (
                DEVICE_CREDENTIAL.public() if id_cred.matches(DEVICE_CREDENTIAL) else None
            ),
        ),
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        rng=random.Random(5),
    )
    device = _device_session()
    device.connect(0.0)
    (initial,) = device.datagrams_to_send(0.0)
    fake_gateway.mark_validated(DEVICE_ADDRESS)  # lift the 3x bound: the certificate is large
    fake_gateway.receive_datagram(initial, DEVICE_ADDRESS, 0.0)
    (message_2, _address) = fake_gateway.datagrams_to_send(0.0)[0]
    device.receive_datagram(message_2, 0.0)
    assert device.statistics().dropped["handshake_failed"] == 1


# -- the trio adapters --


async def _serves_a_device(
    events: trio.MemoryReceiveChannel[DeviceSessionEvent],
    run_device: Callable[[DeviceDriver], object],
    *,
    stream: bool,
    nursery: trio.Nursery,
) -> None:
    """A legitimate device connects and gets a Ping through."""
    device = DeviceDriver(_device_session(stream=stream))
    nursery.start_soon(run_device, device)  # type: ignore[arg-type]
    device.connect()
    with trio.fail_after(30):
        async for item in events:
            if isinstance(item.event, DeviceSessionEstablished):
                break
        device.send_operation(wire.Ping(id=7))
        async for item in events:
            if isinstance(item.event, OperationReceived):
                assert item.event.message == wire.Ping(id=7)
                break


async def _udp_attack(host: str, port: int) -> list[int]:
    """The crafted handshake over a real UDP socket; returns the sizes of the datagrams sent."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    attacker = _device_session(hostile=True)
    attacker.connect(trio.current_time())
    sizes: list[int] = []
    with trio.socket.socket(family, socket.SOCK_DGRAM) as sock:
        await sock.connect((host, port))
        for _ in range(2):
            for datagram in attacker.datagrams_to_send(trio.current_time()):
                sizes.append(len(datagram))
                await sock.send(datagram)
            if len(sizes) < 2:
                with trio.fail_after(10):
                    attacker.receive_datagram(await sock.recv(2048), trio.current_time())
    return sizes


async def _until(condition: Callable[[], bool]) -> None:
    # Real sockets: the kernel delivers on its own schedule, so poll (bounded) for the
    # counters rather than assume; this waits for a condition, it asserts no duration.
    with trio.fail_after(10):
        while True:
            if condition():
                return
            await trio.sleep(0.01)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_udp_endpoint_survives_the_crafted_handshake(host: str) -> None:
    endpoint = UdpEndpoint(_core(stream=False), host=host, port=0)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(endpoint.serve)
        assert await _udp_attack(host, address[1]) == [39, 285]
        await _until(lambda: endpoint.statistics().core.dropped["handshake_failed"] >= 1)
        await _serves_a_device(
            endpoint.events,
            lambda device: run_device_over_udp(device, (host, address[1])),
            stream=False,
            nursery=nursery,
        )
        assert endpoint.statistics().dropped.get("internal_error", 0) == 0
        await endpoint.aclose()
        nursery.cancel_scope.cancel()


async def _stream_attack(stream: trio.abc.Stream) -> None:
    """The crafted handshake over a stream connection: message_1, message_2 back, message_3."""
    attacker = _device_session(stream=True, hostile=True)
    attacker.connect(trio.current_time())
    (initial,) = attacker.datagrams_to_send(trio.current_time())
    await stream.send_all(frame(initial))
    deframer = StreamDeframer()
    with trio.fail_after(10):
        while not (packets := deframer.feed_untrusted(await stream.receive_some())):
            pass
    attacker.receive_datagram(packets[0], trio.current_time())
    (message_3,) = attacker.datagrams_to_send(trio.current_time())
    await stream.send_all(frame(message_3))


async def test_stream_gateway_survives_the_crafted_handshake() -> None:
    gateway = StreamGateway(_core(stream=True))
    attacker_side, gateway_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        nursery.start_soon(gateway.serve_stream, gateway_side)
        await _stream_attack(attacker_side)
        await trio.testing.wait_all_tasks_blocked()  # the gateway has handled message_3
        assert gateway.statistics().core.dropped["handshake_failed"] == 1

        async def run_device(device: DeviceDriver) -> None:
            ours, theirs = trio.testing.memory_stream_pair()
            nursery.start_soon(gateway.serve_stream, theirs)
            await run_device_over_stream(device, ours)

        await _serves_a_device(gateway.events, run_device, stream=True, nursery=nursery)
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_tcp_listener_survives_the_crafted_handshake(host: str) -> None:
    listener = TcpListener(_core(stream=True), host=host, port=0)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(listener.serve)
        attack = await trio.open_tcp_stream(host, address[1])
        async with attack:
            await _stream_attack(attack)
            await _until(lambda: listener.statistics().core.dropped["handshake_failed"] >= 1)

        async def run_device(device: DeviceDriver) -> None:
            await run_device_over_stream(device, await trio.open_tcp_stream(host, address[1]))

        await _serves_a_device(listener.events, run_device, stream=True, nursery=nursery)
        await listener.aclose()
        nursery.cancel_scope.cancel()


# -- a core that raises: the loops' own containment --

POISON = b"\x7f\x00poison"  # any packet; the injected core raises for exactly this one


def _poisoned(
    core: GatewaySessions, exception: BaseException, monkeypatch: pytest.MonkeyPatch
) -> GatewaySessions:
    """``core`` with receive_datagram raising ``exception`` for POISON (a stand-in for a bug)."""
    real = core.receive_datagram

    def receive_datagram(data: bytes, address: Hashable, now: float) -> None:
        if data == POISON:
            raise exception
        real(data, address, now)

    monkeypatch.setattr(core, "receive_datagram", receive_datagram)
    return core


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
async def test_udp_loop_counts_a_raising_core_and_goes_on(
    host: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG, logger="gateway.transport")
    core = _poisoned(_core(stream=False), RuntimeError(SECRET), monkeypatch)
    endpoint = UdpEndpoint(core, host=host, port=0)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(endpoint.serve)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with trio.socket.socket(family, socket.SOCK_DGRAM) as sock:
            for _ in range(3):
                await sock.sendto(POISON, (host, address[1]))
        await _until(lambda: endpoint.statistics().dropped.get("internal_error", 0) == 3)
        await _serves_a_device(
            endpoint.events,
            lambda device: run_device_over_udp(device, (host, address[1])),
            stream=False,
            nursery=nursery,
        )
        assert endpoint.statistics().dropped["internal_error"] == 3
        await endpoint.aclose()
        nursery.cancel_scope.cancel()
    logged = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert [r.levelno for r in logged] == [logging.ERROR, logging.DEBUG, logging.DEBUG]
    assert "RuntimeError" in logged[0].getMessage()
    assert all(SECRET not in r.getMessage() and r.exc_info is None for r in caplog.records)


async def test_stream_connection_counts_a_raising_core_and_goes_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    core = _poisoned(_core(stream=True), ValueError(SECRET), monkeypatch)
    gateway = StreamGateway(core)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)

        async def run_device(device: DeviceDriver) -> None:
            ours, theirs = trio.testing.memory_stream_pair()
            nursery.start_soon(gateway.serve_stream, theirs)
            await ours.send_all(frame(POISON))  # on the very connection the device then uses
            await run_device_over_stream(device, ours)

        await _serves_a_device(gateway.events, run_device, stream=True, nursery=nursery)
        assert gateway.statistics().dropped == {"internal_error": 1}
        nursery.cancel_scope.cancel()


async def test_timer_loop_counts_a_raising_timer_and_goes_on(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = _core(stream=False)
    real = core.handle_timeout
    calls: list[float] = []

    def handle_timeout(now: float) -> None:
        calls.append(now)
        if len(calls) == 1:
            raise RuntimeError(SECRET)
        real(now)

    monkeypatch.setattr(core, "handle_timeout", handle_timeout)
    driver = CoreDriver(core, lambda _data, _address: None)
    device = _device_session()
    device.connect(0.0)
    (initial,) = device.datagrams_to_send(0.0)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.run_timers)
        start = trio.current_time()
        await driver.receive(initial, ATTACKER)  # a half-open handshake: a 60 s timer
        await trio.sleep(61)
        assert driver.statistics().dropped == {"internal_error_timer": 1}
        # The failing run at the deadline; the next one after the back-off, which succeeds.
        assert calls == [start + 60, start + 60 + TIMER_ERROR_BACKOFF]
        assert driver.core.statistics().handshakes_in_progress == 0
        nursery.cancel_scope.cancel()


async def test_device_loops_count_a_raising_session_and_go_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gateway = StreamGateway(_core(stream=True))
    device = DeviceDriver(_device_session(stream=True))
    real = device.session.receive_datagram
    failures = 0

    def receive_datagram(data: bytes, now: float) -> None:
        nonlocal failures
        if data == POISON:
            failures += 1
            raise RuntimeError(SECRET)
        real(data, now)

    monkeypatch.setattr(device.session, "receive_datagram", receive_datagram)
    gateway_side, device_side = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(gateway.driver.run_timers)
        nursery.start_soon(gateway.serve_stream, gateway_side)
        # The poison arrives first on the device's stream, ahead of the gateway's replies.
        await gateway_side.send_all(frame(POISON))
        nursery.start_soon(run_device_over_stream, device, device_side)
        device.connect()
        with trio.fail_after(30):
            async for event in device.events:
                if isinstance(event, DeviceSessionEstablished):
                    break
        assert failures == 1
        assert device.statistics().dropped == {"internal_error": 1}
        nursery.cancel_scope.cancel()


async def test_keyboard_interrupt_and_cancellation_are_not_contained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    driver = CoreDriver(
        _poisoned(_core(stream=False), KeyboardInterrupt(), monkeypatch),
        lambda _data, _address: None,
    )
    with pytest.raises(KeyboardInterrupt):
        await driver.receive(POISON, ATTACKER)
    assert driver.statistics().dropped == {}
    # A receive waiting for the application to take an event is cancellable; nothing is counted.
    blocked = CoreDriver(_core(stream=False), lambda _data, _address: None, event_queue=0)
    monkeypatch.setattr(blocked.core, "events", lambda: [(b"\x01\x02", SessionClosed("test"))])
    with trio.move_on_after(1) as scope:
        await blocked.receive(b"\x00", ATTACKER)
    assert scope.cancelled_caught
    assert blocked.statistics().dropped == {}
