"""A misbehaving input costs that input, never the service; devices reach it over TCP too."""

from __future__ import annotations

import pytest
import trio

from gateway import wire
from gateway.config import Configuration
from gateway.relay import DeviceInput
from gateway.relay.commands import Command
from gateway.session import DeviceSessionEstablished
from gateway.store import GatewayStore
from gateway.transport import DeviceDriver, run_device_over_stream
from tests.conftest import MakePerson
from tests.service.conftest import (
    WAIT,
    Device,
    connect_device,
    device_session,
    enroll,
    start_gateway,
    upstream_ready,
)
from tests.support.prosody import ProsodyServer


async def test_an_input_that_raises_is_counted_and_the_binding_goes_on(
    open_store: tuple[GatewayStore, Configuration],
    running_prosody: ProsodyServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store, configuration = open_store
    enrolled = await enroll(store, configuration, running_prosody.create_user())
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        device = await connect_device(nursery, enrolled, gateway.udp_port)
        binding = gateway.service.bindings()[enrolled.kid]
        relay = binding.relay
        original = relay.device_operation
        failures = 0

        def failing_once(operation: DeviceInput, now: float) -> list[Command]:
            nonlocal failures
            if isinstance(operation, wire.Ping) and failures == 0:
                failures += 1
                raise RuntimeError("a bug in the relay")
            return original(operation, now)

        monkeypatch.setattr(relay, "device_operation", failing_once)
        device.send(wire.Ping(1))
        device.send(wire.Ping(2))
        assert await device.next_operation(wire.Pong) == wire.Pong(2)
        assert binding.counters.get("internal-error") == 1
        await gateway.stop()
        nursery.cancel_scope.cancel()


async def test_a_device_over_tcp(
    open_store: tuple[GatewayStore, Configuration], running_prosody: ProsodyServer
) -> None:
    store, configuration = open_store
    enrolled = await enroll(store, configuration, running_prosody.create_user())
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        host, port = gateway.addresses.tcp[0][:2]
        stream = await trio.open_tcp_stream(host, port)
        device = Device(DeviceDriver(device_session(enrolled, stream=True)))
        nursery.start_soon(run_device_over_stream, device.driver, stream)
        device.driver.connect()
        await device.next_event(DeviceSessionEstablished)
        device.send(wire.Ping(7))
        assert await device.next_operation(wire.Pong) == wire.Pong(7)
        await gateway.stop()
        nursery.cancel_scope.cancel()


async def test_a_device_over_tcp_receives_a_burst_once_and_its_queue_drains(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    """Stream acks (docs/protocol.md §3.5, "On TCP") are what empties the device's queue.

    Before streams were acknowledged, a TCP device got only the first ``drain_window`` (16)
    messages and the queue kept every one of them.
    """
    store, configuration = open_store
    account = running_prosody.create_user()
    enrolled = await enroll(store, configuration, account)
    person = await make_person()
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        await upstream_ready(gateway, enrolled.kid)
        host, port = gateway.addresses.tcp[0][:2]
        stream = await trio.open_tcp_stream(host, port)
        device = Device(DeviceDriver(device_session(enrolled, stream=True)))
        nursery.start_soon(run_device_over_stream, device.driver, stream)
        device.driver.connect()
        await device.next_event(DeviceSessionEstablished)
        device.send(wire.SetPresence(open=True))
        texts = [f"burst {index:02d}" for index in range(20)]
        for text in texts:
            await person.send_message(account.jid, text)
        received = []
        for _ in texts:
            message = await device.next_operation(wire.IncomingMessage)
            assert isinstance(message.content, wire.TextContent)
            received.append(message.content.text)
        assert received == texts
        binding = gateway.service.bindings()[enrolled.kid]
        with trio.fail_after(WAIT):
            await binding.counters.wait_for(lambda c: c.get("delivered-to-device") >= len(texts))
        assert await store.device_queue_length(enrolled.kid) == 0
        await gateway.stop()
        nursery.cancel_scope.cancel()
