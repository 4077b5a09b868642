"""Any sequence of device operations, upstream events and timer runs yields only commands."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.relay import (
    DeviceDelivered,
    DeviceLinkLost,
    DeviceLinkUp,
    DeviceRelay,
    QueueOverflowed,
    RelayConfig,
)
from gateway.relay import commands as cmd
from gateway.wire import (
    Ack,
    ContactListRequest,
    DeliveryReport,
    DeliveryStatus,
    Ping,
    PresenceNotification,
    SendMessage,
    SetPresence,
    Show,
    Sleep,
    SubscriptionAction,
    SubscriptionCommand,
    TextContent,
    Wake,
)
from gateway.xmpp import (
    MessageStanza,
    MessageStanzaType,
    PresenceShow,
    PresenceStanza,
    RosterItem,
    RosterSubscription,
    StanzaError,
    SubscriptionKind,
)
from gateway.xmpp import events as ev
from tests.relay.helpers import ALICE, BOB, DEVICE

contacts = st.sampled_from([0, 1, 2, 70, "alice@example.org", "bob@example.org", "x@@y"])
jids = st.sampled_from([ALICE, BOB, DEVICE, ALICE.bare])
ids = st.integers(0, 5)
upstream_ids = st.sampled_from(["gw-1", "gw-2", "gw-3", "other"])

device_inputs = st.one_of(
    st.builds(
        SendMessage,
        id=ids,
        to=contacts,
        content=st.just(TextContent("hi")),
        want_report=st.booleans(),
    ),
    st.builds(
        SetPresence,
        open=st.booleans(),
        show=st.sampled_from(Show),
        note=st.sampled_from(["", "n", None]),
        to=st.none() | contacts,
    ),
    st.builds(SetPresence, to=contacts),
    st.builds(SubscriptionCommand, action=st.sampled_from(SubscriptionAction), contact=contacts),
    st.builds(ContactListRequest, known_version=st.none() | st.integers(0, 5)),
    st.builds(Ping, id=ids),
    st.builds(Sleep, duration=st.integers(1, 100)),
    st.builds(Wake, presence_snapshot=st.booleans()),
    st.builds(DeviceDelivered, message_id=ids),
    st.builds(QueueOverflowed, message_id=ids),
    st.just(DeviceLinkLost()),
    st.just(DeviceLinkUp()),
    st.just(Ack(0)),
    st.just(DeliveryReport(1, DeliveryStatus.DELIVERED)),
    st.just(PresenceNotification(contact=0, open=True)),
)

upstream_inputs = st.one_of(
    st.builds(
        ev.MessageReceived,
        message=st.builds(
            MessageStanza,
            to=st.just(DEVICE),
            from_=st.none() | jids,
            id=st.none() | upstream_ids,
            type=st.sampled_from(MessageStanzaType),
            bodies=st.sampled_from([(), ((None, "hi"),), (("en", "hello"),)]),
            receipt_requested=st.booleans(),
        ),
        sequence=ids,
    ),
    st.builds(
        ev.PresenceReceived,
        presence=st.builds(
            PresenceStanza,
            from_=st.none() | jids,
            available=st.booleans(),
            show=st.none() | st.sampled_from(PresenceShow),
            priority=st.integers(-5, 5),
        ),
    ),
    st.builds(ev.SubscriptionReceived, from_=jids, kind=st.sampled_from(SubscriptionKind)),
    st.builds(ev.ReceiptReceived, from_=st.none() | jids, message_id=upstream_ids),
    st.builds(
        ev.MessageFailed,
        id=st.none() | upstream_ids,
        from_=st.none() | jids,
        error=st.just(StanzaError("cancel", "service-unavailable")),
    ),
    st.builds(
        ev.StanzasAcknowledged,
        count=st.just(1),
        ids=st.lists(st.none() | upstream_ids, max_size=2).map(tuple),
    ),
    st.builds(
        ev.RosterReceived,
        items=st.lists(
            st.builds(RosterItem, jid=jids, subscription=st.sampled_from(RosterSubscription)),
            max_size=3,
        ).map(tuple),
        version=st.none(),
    ),
    st.builds(
        ev.RosterPushed,
        item=st.builds(RosterItem, jid=jids, subscription=st.sampled_from(RosterSubscription)),
        version=st.none(),
    ),
    st.builds(
        ev.SessionEstablished,
        jid=st.just(DEVICE),
        stream_management=st.booleans(),
        resumable=st.booleans(),
    ),
    st.builds(ev.SessionResumed, jid=st.just(DEVICE), resent=st.just(0)),
    st.builds(ev.StreamEnded, error=st.none()),
)

steps = st.lists(
    st.tuples(
        st.sampled_from(["device", "upstream", "timer"]),
        device_inputs,
        upstream_inputs,
        st.floats(0, 200),
    ),
    max_size=40,
)

COMMAND_TYPES = tuple(
    getattr(cmd, name) for name in cmd.__all__ if isinstance(getattr(cmd, name), type)
)


@settings(max_examples=300, deadline=None)
@given(steps)
def test_any_sequence_yields_only_commands(
    sequence: list[tuple[str, object, object, float]],
) -> None:
    relay = DeviceRelay(
        DEVICE,
        config=RelayConfig(
            report_timeout=50, sleep_grace=5, link_lost_grace=20, queue_lifetime=80, max_directed=2
        ),
    )
    now = 0.0
    for kind, device_input, upstream_input, step in sequence:
        now += step
        if kind == "device":
            out = relay.device_operation(device_input, now)  # type: ignore[arg-type]
        elif kind == "upstream":
            out = relay.upstream_event(upstream_input, now)
        else:
            deadline = relay.next_deadline()
            out = relay.handle_timer(now)
            assert deadline is None or deadline > now or relay.next_deadline() != deadline or out
        assert all(isinstance(c, COMMAND_TYPES) for c in out)
        for command in out:
            if isinstance(command, cmd.SendToDevice):
                assert command.message.DIRECTION.value != "device-to-gateway"
