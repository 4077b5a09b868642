"""The relay core, rule by rule (issue 12 §5-§7), driven with real wire messages and xmpp events."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from gateway.impp import CpimMessage, ImppAddress, parse_cpim_untrusted
from gateway.relay import (
    DeviceDelivered,
    DeviceRelay,
    LocalRelayError,
    OnBehalfDeviceSigner,
    RelayConfig,
    SleepState,
)
from gateway.relay import commands as cmd
from gateway.signing import CertificateAuthority, OnBehalfSigner
from gateway.signing.smime import parse_multipart_signed_untrusted
from gateway.wire import (
    Ack,
    ContactList,
    ContactListRequest,
    DeliveryReport,
    DeliveryStatus,
    Error,
    ErrorCode,
    FailureReason,
    IncomingMessage,
    MissedSummary,
    Ping,
    Pong,
    PresenceNotification,
    SendMessage,
    SetPresence,
    Show,
    SignatureStatus,
    Sleep,
    SubscriptionAction,
    SubscriptionCommand,
    SubscriptionRequest,
    SubscriptionState,
    TextContent,
    Wake,
)
from gateway.xmpp import (
    Jid,
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
from gateway.xmpp.stanzas import parse_message_untrusted, parse_presence_untrusted
from tests.relay.helpers import (
    ALICE,
    BOB,
    DEVICE,
    NOW,
    flushed,
    of_type,
    ready_relay,
    sent_to_device,
)


def _send(relay: DeviceRelay, message_id: int = 7, to: int | str = 0) -> list[cmd.Command]:
    return relay.device_operation(
        SendMessage(id=message_id, to=to, content=TextContent("hello", "en")), NOW
    )


def _upstream_id(commands: list[cmd.Command]) -> str:
    (send,) = of_type(commands, cmd.UpstreamSendMessage)
    return send.message_id


# -- SendMessage ----------------------------------------------------------------------------------


def test_send_message_goes_upstream_with_receipt_request_and_is_acked_when_the_server_acks() -> (
    None
):
    relay = ready_relay()
    commands = _send(relay)
    (send,) = of_type(commands, cmd.UpstreamSendMessage)
    assert (send.to, send.content, send.request_receipt, send.signed) == (
        ALICE,
        TextContent("hello", "en"),
        True,
        None,
    )
    assert of_type(commands, cmd.RecordDeduplicationId) == [cmd.RecordDeduplicationId(7)]
    assert not of_type(commands, cmd.AcknowledgeDevice)  # not yet accepted upstream
    acked = relay.upstream_event(ev.StanzasAcknowledged(1, (send.message_id,)), NOW + 1)
    assert acked == [cmd.AcknowledgeDevice(7)]


def test_receipt_becomes_delivered_and_frees_the_id() -> None:
    relay = ready_relay()
    upstream_id = _upstream_id(_send(relay))
    relay.upstream_event(ev.StanzasAcknowledged(1, (upstream_id,)), NOW)
    commands = relay.upstream_event(ev.ReceiptReceived(ALICE, upstream_id), NOW + 2)
    assert sent_to_device(commands) == [DeliveryReport(7, DeliveryStatus.DELIVERED)]
    assert of_type(commands, cmd.ForgetDeduplicationId) == [cmd.ForgetDeduplicationId(7)]
    assert relay.next_deadline() is None


def test_stanza_error_becomes_failed_with_the_mapped_reason() -> None:
    relay = ready_relay()
    upstream_id = _upstream_id(_send(relay))
    error = StanzaError("cancel", "item-not-found")
    commands = relay.upstream_event(ev.MessageFailed(upstream_id, ALICE, error), NOW + 1)
    assert commands[0] == cmd.AcknowledgeDevice(7)  # a final outcome releases the device
    assert sent_to_device(commands) == [
        DeliveryReport(7, DeliveryStatus.FAILED, FailureReason.RECIPIENT_UNKNOWN)
    ]


def test_silence_past_the_report_timeout_becomes_unknown() -> None:
    relay = ready_relay(config=RelayConfig(report_timeout=30.0))
    _send(relay)
    assert relay.next_deadline() == NOW + 30.0
    assert relay.handle_timer(NOW + 29.9) == []
    commands = relay.handle_timer(NOW + 30.0)
    assert DeliveryReport(7, DeliveryStatus.UNKNOWN) in sent_to_device(commands)


def test_retransmitted_message_id_is_acknowledged_again_but_not_resent() -> None:
    relay = ready_relay()
    upstream_id = _upstream_id(_send(relay))
    assert _send(relay) == []  # in flight: the acknowledgement will come
    relay.upstream_event(ev.StanzasAcknowledged(1, (upstream_id,)), NOW)
    assert _send(relay) == [cmd.AcknowledgeDevice(7)]
    restored = ready_relay(deduplication_ids=(9,))
    assert _send(restored, 9) == [cmd.AcknowledgeDevice(9)]


def test_message_is_signed_on_behalf_with_a_cpim_object_made_from_the_operation() -> None:
    ca = CertificateAuthority.create(now=NOW - 86_400)
    credential = ca.enroll(ImppAddress.of(DEVICE), now=NOW - 86_400)
    relay = ready_relay(signer=OnBehalfDeviceSigner(OnBehalfSigner(), credential))
    (send,) = of_type(_send(relay), cmd.UpstreamSendMessage)
    assert send.signed is not None
    entity = parse_multipart_signed_untrusted(send.signed)
    cpim = parse_cpim_untrusted(entity.content)
    assert isinstance(cpim, CpimMessage)
    assert cpim.body == b"hello"
    assert cpim.sender is not None
    assert cpim.sender.address == ImppAddress.of(DEVICE)
    assert [r.address for r in cpim.recipients] == [ImppAddress.of(ALICE)]


def test_signing_can_be_turned_off() -> None:
    ca = CertificateAuthority.create(now=NOW - 86_400)
    credential = ca.enroll(ImppAddress.of(DEVICE), now=NOW - 86_400)
    relay = ready_relay(
        config=RelayConfig(sign_messages=False),
        signer=OnBehalfDeviceSigner(OnBehalfSigner(), credential),
    )
    (send,) = of_type(_send(relay), cmd.UpstreamSendMessage)
    assert send.signed is None


def test_unknown_alias_bad_address_and_upstream_down_are_errors_naming_the_message() -> None:
    relay = ready_relay()
    (unknown,) = sent_to_device(_send(relay, to=42))
    assert unknown == Error(ErrorCode.UNKNOWN_ALIAS, 4, 7, "unknown recipient")
    (invalid,) = sent_to_device(_send(relay, to="@bad@"))
    assert isinstance(invalid, Error)
    assert invalid.code is ErrorCode.INVALID_ADDRESS
    relay.upstream_event(ev.StreamEnded(None), NOW)
    (down,) = sent_to_device(_send(relay))
    assert isinstance(down, Error)
    assert down.code is ErrorCode.UPSTREAM_UNAVAILABLE


# -- presence -------------------------------------------------------------------------------------


def test_set_presence_is_partial_and_broadcast_with_a_signed_pidf() -> None:
    ca = CertificateAuthority.create(now=NOW - 86_400)
    credential = ca.enroll(ImppAddress.of(DEVICE), now=NOW - 86_400)
    relay = ready_relay(signer=OnBehalfDeviceSigner(OnBehalfSigner(), credential))
    first = relay.device_operation(SetPresence(open=True, show=Show.AWAY, note="lunch"), NOW)
    (presence,) = of_type(first, cmd.UpstreamSendPresence)
    assert (presence.available, presence.show, presence.status, presence.to) == (
        True,
        Show.AWAY,
        "lunch",
        None,
    )
    assert presence.signed is not None
    entity = parse_multipart_signed_untrusted(presence.signed)
    assert b"pres:device@example.net" in entity.content
    assert b"<basic>open</basic>" in entity.content
    (second,) = of_type(
        relay.device_operation(SetPresence(show=Show.DO_NOT_DISTURB), NOW + 1),
        cmd.UpstreamSendPresence,
    )
    assert (second.available, second.show, second.status) == (True, Show.DO_NOT_DISTURB, "lunch")
    (third,) = of_type(
        relay.device_operation(SetPresence(note=""), NOW + 2), cmd.UpstreamSendPresence
    )
    assert third.status is None
    assert third.show is Show.DO_NOT_DISTURB


def test_inbound_presence_is_whole_stripped_and_only_from_subscribed_contacts() -> None:
    relay = ready_relay()
    element = ET.fromstring(
        "<presence xmlns='jabber:client' from='alice@example.org/phone' xml:lang='en'>"
        "<show>away</show><status>out</status><priority>5</priority>"
        "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/>"
        "<delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></presence>"
    )
    commands = relay.upstream_event(ev.PresenceReceived(parse_presence_untrusted(element)), NOW)
    assert sent_to_device(commands) == [
        PresenceNotification(contact=0, open=True, show=Show.AWAY, note="out", note_language="en")
    ]
    stranger = PresenceStanza(from_=BOB)
    assert relay.upstream_event(ev.PresenceReceived(stranger), NOW) == []  # RFC 2779 §5.3.2
    assert relay.statistics().dropped["presence-not-subscribed"] == 1
    gone = PresenceStanza(from_=element_jid("alice@example.org/phone"), available=False)
    assert sent_to_device(relay.upstream_event(ev.PresenceReceived(gone), NOW)) == [
        PresenceNotification(contact=0, open=False)
    ]


def element_jid(text: str) -> Jid:
    return Jid.parse_untrusted(text)


# -- subscriptions and blocking -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "verb"),
    [
        (SubscriptionAction.SUBSCRIBE, cmd.SubscriptionVerb.SUBSCRIBE),
        (SubscriptionAction.UNSUBSCRIBE, cmd.SubscriptionVerb.UNSUBSCRIBE),
        (SubscriptionAction.APPROVE, cmd.SubscriptionVerb.APPROVE),
        (SubscriptionAction.DENY, cmd.SubscriptionVerb.DENY),
    ],
)
def test_subscription_commands(action: SubscriptionAction, verb: cmd.SubscriptionVerb) -> None:
    relay = ready_relay()
    commands = relay.device_operation(SubscriptionCommand(action, "bob@example.org"), NOW)
    assert commands == [cmd.UpstreamSubscription(BOB, verb)]


def test_block_is_polite_and_unblock_restores_presence() -> None:
    relay = ready_relay()
    relay.device_operation(SetPresence(open=True), NOW)
    commands = relay.device_operation(SubscriptionCommand(SubscriptionAction.BLOCK, 0), NOW)
    assert commands[:2] == [
        cmd.UpstreamSendPresence(available=False, to=ALICE),
        cmd.UpstreamBlock(ALICE),
    ]
    (delta,) = sent_to_device(commands)
    assert isinstance(delta, ContactList)
    assert delta.contacts[0].blocked
    message = MessageStanza(
        to=DEVICE, from_=ALICE, id="m1", type=MessageStanzaType.CHAT, bodies=((None, "hi"),)
    )
    # Before the server applies the block the gateway refuses as the server then would:
    # nothing for the device, an error for the sender.
    assert relay.upstream_event(ev.MessageReceived(message), NOW) == [
        cmd.UpstreamDeliveryFailed(ALICE, "m1", FailureReason.REJECTED)
    ]
    assert relay.statistics().blocked_reports == 1
    unblock = relay.device_operation(SubscriptionCommand(SubscriptionAction.UNBLOCK, 0), NOW)
    assert unblock[:2] == [
        cmd.UpstreamUnblock(ALICE),
        cmd.UpstreamSendPresence(available=True, to=ALICE),
    ]


def test_incoming_subscription_request() -> None:
    relay = ready_relay()
    commands = relay.upstream_event(ev.SubscriptionReceived(BOB, SubscriptionKind.SUBSCRIBE), NOW)
    assert sent_to_device(commands) == [SubscriptionRequest(sender="bob@example.org")]
    approval = ev.SubscriptionReceived(BOB, SubscriptionKind.SUBSCRIBED)
    assert relay.upstream_event(approval, NOW) == []


# -- contact list ---------------------------------------------------------------------------------


def test_contact_list_aliases_full_delta_and_pushes() -> None:
    relay = DeviceRelay(DEVICE, aliases={BOB: 3}, contact_list_version=10)
    relay.upstream_event(ev.SessionEstablished(DEVICE, True, True), NOW)  # requests the roster
    assert relay.device_operation(ContactListRequest(), NOW) == []  # waits for the roster
    roster = ev.RosterReceived(
        (
            RosterItem(ALICE, subscription=RosterSubscription.TO, ask_subscribe=True),
            RosterItem(BOB, name="Bob", subscription=RosterSubscription.BOTH),
        ),
        None,
    )
    commands = relay.upstream_event(roster, NOW)
    assert of_type(commands, cmd.PersistAlias) == [cmd.PersistAlias(ALICE, 0)]  # Bob kept 3
    (full,) = sent_to_device(commands)
    assert isinstance(full, ContactList)
    assert full.complete
    assert full.version == 11
    assert [(c.alias, c.address, c.subscription, c.pending_out) for c in full.contacts] == [
        (0, "alice@example.org", SubscriptionState.TO, True),
        (3, "bob@example.org", SubscriptionState.BOTH, False),
    ]
    push = relay.upstream_event(
        ev.RosterPushed(RosterItem(BOB, subscription=RosterSubscription.REMOVE), None), NOW
    )
    assert of_type(push, cmd.ReleaseAlias) == [cmd.ReleaseAlias(BOB, 3)]
    (delta,) = sent_to_device(push)
    assert isinstance(delta, ContactList)
    assert not delta.complete
    assert delta.version == 12
    assert [(c.alias, c.subscription) for c in delta.contacts] == [(3, SubscriptionState.REMOVED)]
    (since,) = sent_to_device(relay.device_operation(ContactListRequest(known_version=11), NOW))
    assert since == delta
    (old,) = sent_to_device(relay.device_operation(ContactListRequest(known_version=5), NOW))
    assert isinstance(old, ContactList)
    assert old.complete


# -- inbound messages and receipts ----------------------------------------------------------------


def test_inbound_message_by_alias_with_signature_flag_and_receipt_only_after_device_ack() -> None:
    relay = ready_relay(verifier=lambda stanza, now: SignatureStatus.VERIFIED)
    element = ET.fromstring(
        "<message xmlns='jabber:client' from='alice@example.org/phone' to='device@example.net'"
        " id='abc' type='chat'><body>hi there</body><request xmlns='urn:xmpp:receipts'/></message>"
    )
    commands = relay.upstream_event(
        ev.MessageReceived(parse_message_untrusted(element), sequence=4), NOW
    )
    assert commands == [
        cmd.SendToDevice(
            IncomingMessage(0, 0, int(NOW), TextContent("hi there"), SignatureStatus.VERIFIED),
            upstream_sequence=4,
        )
    ]
    assert not of_type(commands, cmd.UpstreamSendReceipt)
    receipt = relay.device_operation(DeviceDelivered(0), NOW + 1)
    assert receipt == [cmd.UpstreamSendReceipt(element_jid("alice@example.org/phone"), "abc")]
    assert relay.device_operation(DeviceDelivered(0), NOW + 2) == []  # once


# -- ping, wrong direction ------------------------------------------------------------------------


def test_ping_gets_its_pong_and_wrong_direction_gets_unexpected_message() -> None:
    relay = ready_relay()
    assert relay.device_operation(Ping(5), NOW) == [cmd.SendToDevice(Pong(5))]
    for wrong in (
        Ack(0),
        MissedSummary(),
        PresenceNotification(contact=0, open=False),
        DeliveryReport(1, DeliveryStatus.DELIVERED),
    ):
        (answer,) = sent_to_device(relay.device_operation(wrong, NOW))
        assert isinstance(answer, Error)
        assert answer.code is ErrorCode.UNEXPECTED_MESSAGE
        assert answer.message_type == wrong.TYPE
    assert relay.device_rejected(ErrorCode.NOT_DETERMINISTIC) == [
        cmd.SendToDevice(Error(ErrorCode.NOT_DETERMINISTIC))
    ]


def test_misuse_raises_local_protocol_error() -> None:
    relay = ready_relay()
    with pytest.raises(LocalRelayError):
        relay.device_operation("not a message", NOW)  # type: ignore[arg-type]
    with pytest.raises(LocalRelayError):
        relay.upstream_event(object(), NOW)
    relay.close()
    with pytest.raises(LocalRelayError):
        relay.device_operation(Ping(1), NOW)


# -- sleep and wake -------------------------------------------------------------------------------


def _chat(body: str, stanza_id: str) -> ev.MessageReceived:
    return ev.MessageReceived(
        MessageStanza(
            to=DEVICE,
            from_=element_jid("alice@example.org/phone"),
            id=stanza_id,
            type=MessageStanzaType.CHAT,
            bodies=((None, body),),
            receipt_requested=True,
        )
    )


def _alice_presence(show: PresenceShow | None) -> ev.PresenceReceived:
    return ev.PresenceReceived(
        PresenceStanza(from_=element_jid("alice@example.org/phone"), show=show)
    )


def test_sleep_queues_coalesces_presence_and_wake_summarises_then_drains_once() -> None:
    relay = ready_relay()
    assert relay.device_operation(Sleep(600), NOW) == [cmd.UpstreamSetActive(False)]
    queued: list[cmd.Command] = []
    for number in range(5):
        queued += relay.upstream_event(_chat(f"m{number}", f"s{number}"), NOW + number)
    for number in range(20):
        show = PresenceShow.AWAY if number % 2 else PresenceShow.DND
        queued += relay.upstream_event(_alice_presence(show), NOW + 10 + number)
    assert not of_type(queued, cmd.SendToDevice)
    enqueued = of_type(queued, cmd.EnqueueForDevice)
    assert [type(e.message) for e in enqueued[:5]] == [IncomingMessage] * 5
    assert {e.coalesce_key for e in enqueued[5:]} == {"presence alice@example.org"}
    wake = relay.device_operation(Wake(), NOW + 100)
    assert wake == [cmd.UpstreamSetActive(True), cmd.UpstreamSync()]
    assert flushed(relay, NOW + 100) == [
        cmd.SendToDevice(MissedSummary(messages=5, presence_notifications=1)),
        cmd.DrainQueue(),
    ]
    assert relay.device_operation(Wake(), NOW + 101) == [cmd.SendToDevice(MissedSummary())]
    live = relay.upstream_event(_chat("live", "s9"), NOW + 102)
    assert [type(m) for m in sent_to_device(live)] == [IncomingMessage]


def test_a_device_silent_past_its_sleep_becomes_unavailable_and_returns_on_wake() -> None:
    relay = ready_relay(config=RelayConfig(sleep_grace=10.0))
    relay.device_operation(SetPresence(open=True), NOW)
    relay.device_operation(Sleep(60), NOW)
    assert relay.next_deadline() == NOW + 70.0
    assert relay.handle_timer(NOW + 69) == []
    assert relay.handle_timer(NOW + 70) == [cmd.UpstreamSendPresence(available=False)]
    assert relay.state is SleepState.OVERDUE
    wake = relay.device_operation(Wake(), NOW + 500)
    assert wake[:2] == [cmd.UpstreamSetActive(True), cmd.UpstreamSendPresence(available=True)]


def test_a_queued_message_that_expires_is_reported_to_its_sender() -> None:
    relay = ready_relay(config=RelayConfig(queue_lifetime=3600.0, sleep_grace=1e9))
    relay.device_operation(Sleep(86_400), NOW)
    (enqueue,) = of_type(relay.upstream_event(_chat("late", "s1"), NOW), cmd.EnqueueForDevice)
    assert enqueue.expires_at == NOW + 3600.0
    commands = relay.handle_timer(NOW + 3600.0)
    assert commands == [
        cmd.DropQueued(0),
        cmd.UpstreamDeliveryFailed(
            element_jid("alice@example.org/phone"), "s1", FailureReason.EXPIRED
        ),
    ]
    relay.device_operation(Wake(), NOW + 4000)
    (summary, _drain) = flushed(relay, NOW + 4000)
    assert summary == cmd.SendToDevice(MissedSummary(expired=1))
    assert relay.device_operation(DeviceDelivered(0), NOW) == []  # no receipt for a dropped one


def test_delivery_report_while_asleep_is_queued() -> None:
    relay = ready_relay()
    upstream_id = _upstream_id(_send(relay))
    relay.device_operation(Sleep(600), NOW)
    commands = relay.upstream_event(ev.ReceiptReceived(ALICE, upstream_id), NOW)
    (enqueue,) = of_type(commands, cmd.EnqueueForDevice)
    assert enqueue.message == DeliveryReport(7, DeliveryStatus.DELIVERED)


# -- the upstream's flush at wake (issue 12 §6) ---------------------------------------------------


def _night(relay: DeviceRelay, start: float, presences: int = 3) -> list[cmd.Command]:
    commands: list[cmd.Command] = []
    for number in range(presences):
        show = PresenceShow.AWAY if number % 2 else PresenceShow.DND
        commands += relay.upstream_event(_alice_presence(show), start + number)
    return commands


def test_what_the_server_flushes_after_active_is_queued_coalesced_until_the_sync() -> None:
    relay = ready_relay()
    relay.device_operation(Sleep(600), NOW)
    _night(relay, NOW + 1)
    assert relay.device_operation(Wake(), NOW + 100) == [
        cmd.UpstreamSetActive(True),
        cmd.UpstreamSync(),
    ]
    assert not relay.delivering
    # The server's held presence and a message arrive after <active/>, before the ping's answer.
    flushed_in = _night(relay, NOW + 100, presences=20)
    flushed_in += relay.upstream_event(_chat("night", "s1"), NOW + 100)
    assert not of_type(flushed_in, cmd.SendToDevice)
    assert {e.coalesce_key for e in of_type(flushed_in, cmd.EnqueueForDevice)} == {
        "presence alice@example.org",
        None,
    }
    assert flushed(relay, NOW + 100.5) == [
        cmd.SendToDevice(MissedSummary(messages=1, presence_notifications=1)),
        cmd.DrainQueue(),
    ]
    live = _night(relay, NOW + 101, presences=1)
    assert [type(m) for m in sent_to_device(live)] == [PresenceNotification]


def test_a_wake_without_the_syncs_answer_completes_at_the_timeout() -> None:
    relay = ready_relay(config=RelayConfig(wake_sync_timeout=5.0))
    relay.device_operation(Sleep(600), NOW)
    relay.upstream_event(_chat("night", "s1"), NOW + 1)
    relay.device_operation(Wake(), NOW + 100)
    assert relay.next_deadline() == NOW + 105.0
    assert relay.handle_timer(NOW + 104.9) == []
    assert relay.handle_timer(NOW + 105.0) == [
        cmd.SendToDevice(MissedSummary(messages=1)),
        cmd.DrainQueue(),
    ]
    assert relay.statistics().wake_sync_timeouts == 1
    assert flushed(relay, NOW + 106) == []  # the late answer ends nothing


def test_a_sleep_before_the_syncs_answer_keeps_the_queue_for_the_next_wake() -> None:
    relay = ready_relay()
    relay.device_operation(Sleep(600), NOW)
    relay.upstream_event(_chat("night", "s1"), NOW + 1)
    relay.device_operation(Wake(), NOW + 100)
    assert relay.device_operation(Sleep(600), NOW + 100.1) == [cmd.UpstreamSetActive(False)]
    assert relay.device_operation(Wake(), NOW + 200) == [
        cmd.UpstreamSetActive(True),
        cmd.UpstreamSync(),
    ]
    assert flushed(relay, NOW + 200) == []  # the first wake's answer: the second's still due
    assert flushed(relay, NOW + 200) == [
        cmd.SendToDevice(MissedSummary(messages=1)),
        cmd.DrainQueue(),
    ]


def test_a_second_wake_while_the_sync_is_awaited_is_answered_once() -> None:
    relay = ready_relay()
    relay.device_operation(Sleep(600), NOW)
    relay.device_operation(Wake(), NOW + 100)
    assert relay.device_operation(Wake(presence_snapshot=True), NOW + 100.1) == []
    answer = flushed(relay, NOW + 100.2)
    assert answer[0] == cmd.SendToDevice(MissedSummary())
    assert len(of_type(answer, cmd.SendToDevice)) == 1  # no contact presence known yet


def test_a_stream_that_ends_before_the_syncs_answer_completes_the_wake() -> None:
    relay = ready_relay()
    relay.device_operation(Sleep(600), NOW)
    relay.upstream_event(_chat("night", "s1"), NOW + 1)
    relay.device_operation(Wake(), NOW + 100)
    ended = relay.upstream_event(ev.StreamEnded(error=None), NOW + 100.1)
    assert ended == [cmd.SendToDevice(MissedSummary(messages=1)), cmd.DrainQueue()]
    assert relay.next_deadline() is None


def test_a_wake_with_the_upstream_down_answers_at_once() -> None:
    relay = ready_relay()
    relay.device_operation(Sleep(600), NOW)
    relay.upstream_event(ev.StreamEnded(error=None), NOW + 1)
    assert relay.device_operation(Wake(), NOW + 100) == [cmd.SendToDevice(MissedSummary())]
