"""Property test of the device client's state machine, sans-IO against a real gateway core.

No trio and no network: a pump hands each side's datagrams to the other at a chosen virtual time,
so every sequence of application calls and clock steps hypothesis picks is exercised against the
gateway's real EDHOC, tickets and records.
"""

from __future__ import annotations

import random
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from device_sim.client import (
    STATE_BOUND_EMPTY_OUTBOX,
    ClientError,
    ClientState,
    DeviceClient,
    OutboxFullError,
)
from gateway import wire
from gateway.enroll.provisioning import (
    GatewayEndpoint,
    Provisioning,
    Transport,
    decode_provisioning_untrusted,
    encode_provisioning,
)
from gateway.session import GatewaySessions, OperationReceived
from tests.session.helpers import (
    DEVICE_CREDENTIAL,
    DEVICE_KEY,
    DEVICE_KID,
    GATEWAY_ADDRESS,
    GATEWAY_CREDENTIAL,
    make_gateway,
)

DEVICE_ADDRESS = ("198.51.100.10", 42000)
PROVISIONING = decode_provisioning_untrusted(
    encode_provisioning(
        Provisioning(
            device_kid=DEVICE_KID,
            device_credential=DEVICE_CREDENTIAL.public().encoded,
            gateway_credential=GATEWAY_CREDENTIAL.public().encoded,
            endpoints=(GatewayEndpoint(Transport.UDP, GATEWAY_ADDRESS[0], GATEWAY_ADDRESS[1]),),
            account="sensor@example.com",
            device_private_key=DEVICE_KEY,
        )
    )
)


def pump(client: DeviceClient, gateway: GatewaySessions, now: float) -> None:
    """Exchange datagrams at ``now`` until both sides are quiet; the gateway reports each send."""
    for _ in range(50):
        moved = False
        client.handle_timeout(now)
        for datagram in client.datagrams_to_send(now):
            moved = True
            gateway.receive_datagram(datagram, DEVICE_ADDRESS, now)
        gateway.handle_timeout(now)
        for connection_id, event in gateway.events():
            if isinstance(event, OperationReceived) and isinstance(event.message, wire.SendMessage):
                report = wire.DeliveryReport(event.message.id, wire.DeliveryStatus.DELIVERED)
                gateway.send_operation(connection_id, report)
        for datagram, _ in gateway.datagrams_to_send(now):
            moved = True
            client.receive_datagram(datagram, now)
        if not moved:
            return


def state_of(client: DeviceClient) -> ClientState:
    """The client's state, read afresh (each call may change it)."""
    return client.state


ACTIONS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 3)),
        st.tuples(st.just("presence"), st.booleans()),
        st.tuples(st.just("sleep"), st.integers(1, 120)),
        st.tuples(st.just("wake"), st.just(0)),
        st.tuples(st.just("advance"), st.integers(0, 200)),
        st.tuples(st.just("close"), st.just(0)),
        st.tuples(st.just("start"), st.just(0)),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None)
@given(actions=ACTIONS, seed=st.integers(0, 2**16))
def test_any_sequence_of_calls_keeps_the_machine_consistent(
    actions: list[tuple[str, int]], seed: int
) -> None:
    gateway = make_gateway(seed=seed)
    client = DeviceClient(rng=random.Random(seed), random_bytes=random.Random(seed).randbytes)
    now = 0.0
    client.start(PROVISIONING, now)
    pump(client, gateway, now)
    assert state_of(client) is ClientState.ESTABLISHED
    sent: set[int] = set()
    for action, argument in actions:
        before = client.state
        try:
            if action == "send":
                message_id = client.send_text(argument, "hi")
                assert message_id not in sent
                sent.add(message_id)
            elif action == "presence":
                client.set_presence(available=bool(argument))
            elif action == "sleep":
                client.sleep(argument, now)
            elif action == "wake":
                client.wake(now)
            elif action == "close":
                client.close()
            elif action == "start":
                client.start(PROVISIONING, now)
            else:
                now += argument
        except OutboxFullError:
            assert client.state is before  # back-pressure, not a failure
        except ClientError:
            assert client.state in (ClientState.FAILED, ClientState.CLOSED)
        pump(client, gateway, now)
        if client.state in (ClientState.FAILED, ClientState.CLOSED):
            break
        assert client.state_size().total <= STATE_BOUND_EMPTY_OUTBOX + client.state_size().outbox
    if client.state is ClientState.FAILED:
        for call in (lambda: client.send_text(1, "x"), lambda: client.wake(now), client.close):
            try:
                call()
            except ClientError:
                pass
            else:
                raise AssertionError("a failed client accepted a call")
            assert client.state is ClientState.FAILED


def test_outbox_empties_once_every_report_came(tmp_path: Path) -> None:
    gateway = make_gateway()
    client = DeviceClient(rng=random.Random(3), random_bytes=random.Random(4).randbytes)
    client.start(PROVISIONING, 0.0)
    pump(client, gateway, 0.0)
    ids = [client.send_text(3, f"n{n}") for n in range(5)]
    assert sorted(client.outbox) == ids
    pump(client, gateway, 1.0)
    assert client.outbox == {}
