"""RFC 2779's rules beyond translation, in the relay core: directed presence (§2.3.3, §5.2.3),
a device unavailable after its silence without a goodbye (§3.2.4, §3.2.5) while its messages
are kept (§2.1.1), senders told of an overflow or an expiry (§5.4.1), and the statistics."""

from __future__ import annotations

import itertools

from gateway.impp import ImppAddress
from gateway.relay import (
    DeviceDelivered,
    DeviceLinkLost,
    DeviceLinkUp,
    DeviceRelay,
    OnBehalfDeviceSigner,
    QueueOverflowed,
    RelayConfig,
    SleepState,
)
from gateway.relay import commands as cmd
from gateway.signing import CertificateAuthority, OnBehalfSigner
from gateway.wire import (
    DeliveryReport,
    DeliveryStatus,
    Error,
    ErrorCode,
    FailureReason,
    IncomingMessage,
    MissedSummary,
    SendMessage,
    SetPresence,
    Show,
    SignatureStatus,
    Sleep,
    SubscriptionAction,
    SubscriptionCommand,
    TextContent,
    Wake,
)
from gateway.xmpp import (
    Jid,
    MessageStanza,
    MessageStanzaType,
    PresenceStanza,
    StanzaError,
    StanzaErrorCondition,
    StanzaErrorType,
)
from gateway.xmpp import events as ev
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

ALICE_PHONE = Jid.parse_untrusted("alice@example.org/phone")


def _presence(
    available: bool,
    *,
    show: Show = Show.AVAILABLE,
    status: str | None = None,
    to: Jid | None = None,
) -> cmd.UpstreamSendPresence:
    return cmd.UpstreamSendPresence(available=available, show=show, status=status, to=to)


def _state(relay: DeviceRelay) -> SleepState:
    """The relay's state, read afresh (each input moves it)."""
    return relay.state


def _chat(stanza_id: str, *, receipt: bool = True) -> ev.MessageReceived:
    return ev.MessageReceived(
        MessageStanza(
            to=DEVICE,
            from_=ALICE_PHONE,
            id=stanza_id,
            type=MessageStanzaType.CHAT,
            bodies=((None, "hi"),),
            receipt_requested=receipt,
        )
    )


# -- directed presence ----------------------------------------------------------------------------


def test_directed_presence_goes_to_its_watcher_alone_and_survives_later_broadcasts() -> None:
    relay = ready_relay()
    assert relay.device_operation(SetPresence(open=True), NOW) == [_presence(True)]
    directed = relay.device_operation(SetPresence(show=Show.CHAT, note="for you", to=0), NOW)
    assert directed == [_presence(True, show=Show.CHAT, status="for you", to=ALICE)]
    assert relay.presence.show is Show.AVAILABLE  # the broadcast presence is unchanged
    # A later broadcast reaches Alice too (the server sends it to every subscriber), so her
    # direction follows it; a field the direction does not set follows the broadcast.
    broadcast = relay.device_operation(SetPresence(show=Show.AWAY), NOW + 1)
    assert broadcast == [
        _presence(True, show=Show.AWAY),
        _presence(True, show=Show.CHAT, status="for you", to=ALICE),
    ]
    relay.device_operation(SetPresence(open=False), NOW + 2)
    still = relay.device_operation(SetPresence(note="gone"), NOW + 3)
    assert still == [
        _presence(False, status="gone"),
        _presence(False, status="for you", to=ALICE),  # open follows the broadcast: closed
    ]
    assert relay.statistics().directed_watchers == 1
    # ``to`` alone ends the direction: Alice sees the broadcast presence again, once.
    ended = relay.device_operation(SetPresence(to="alice@example.org"), NOW + 4)
    assert ended == [_presence(False, status="gone", to=ALICE)]
    assert relay.device_operation(SetPresence(open=True), NOW + 5) == [
        _presence(True, show=Show.AWAY, status="gone")
    ]
    assert relay.statistics().directed_watchers == 0


def test_withheld_presence_stays_withheld_and_shows_nothing_of_the_broadcast() -> None:
    relay = ready_relay()
    relay.device_operation(SetPresence(open=True, note="at work"), NOW)
    withheld = relay.device_operation(SetPresence(open=False, to="bob@example.org"), NOW)
    assert withheld == [_presence(False, to=BOB)]
    broadcast = relay.device_operation(SetPresence(show=Show.DO_NOT_DISTURB), NOW + 1)
    assert broadcast == [
        _presence(True, show=Show.DO_NOT_DISTURB, status="at work"),
        _presence(False, to=BOB),
    ]


def test_directed_available_while_the_broadcast_is_closed() -> None:
    relay = ready_relay()
    relay.device_operation(SetPresence(open=False), NOW)
    assert relay.device_operation(SetPresence(open=True, to=0), NOW) == [_presence(True, to=ALICE)]


def test_directed_presence_errors_name_set_presence() -> None:
    relay = ready_relay(config=RelayConfig(max_directed=1))
    (unknown,) = sent_to_device(relay.device_operation(SetPresence(open=True, to=9), NOW))
    assert isinstance(unknown, Error)
    assert (unknown.code, unknown.message_type) == (ErrorCode.UNKNOWN_ALIAS, SetPresence.TYPE)
    relay.device_operation(SetPresence(open=True, to=0), NOW)
    (full,) = relay.device_operation(SetPresence(open=True, to="bob@example.org"), NOW)
    assert isinstance(full, cmd.SendToDevice)
    assert isinstance(full.message, Error)
    assert full.message.code is ErrorCode.QUEUE_FULL
    # Changing the direction that exists needs no new room.
    assert relay.device_operation(SetPresence(note="x", to=0), NOW) == [
        _presence(True, status="x", to=ALICE)
    ]


def test_a_direction_at_a_blocked_contact_waits_for_the_unblock() -> None:
    relay = ready_relay()
    relay.device_operation(SetPresence(open=False), NOW)
    relay.device_operation(SubscriptionCommand(SubscriptionAction.BLOCK, 0), NOW)
    assert relay.device_operation(SetPresence(open=True, to=0), NOW) == []
    assert relay.device_operation(SetPresence(note="n"), NOW) == [_presence(False, status="n")]
    unblock = relay.device_operation(SubscriptionCommand(SubscriptionAction.UNBLOCK, 0), NOW)
    assert unblock[:2] == [cmd.UpstreamUnblock(ALICE), _presence(True, status="n", to=ALICE)]


def test_an_absent_device_is_unavailable_to_all_and_its_directions_return_with_it() -> None:
    relay = ready_relay(config=RelayConfig(sleep_grace=10.0))
    relay.device_operation(SetPresence(open=False), NOW)
    relay.device_operation(SetPresence(open=True, note="only you", to=0), NOW)
    relay.device_operation(Sleep(60), NOW)
    assert relay.handle_timer(NOW + 70.0) == [_presence(False)]  # one broadcast covers all
    wake = relay.device_operation(Wake(), NOW + 100)
    assert wake == [
        cmd.UpstreamSetActive(True),
        _presence(False),
        _presence(True, status="only you", to=ALICE),
        cmd.UpstreamSync(),
    ]
    assert flushed(relay, NOW + 100) == [cmd.SendToDevice(MissedSummary())]


def test_a_fresh_upstream_stream_gets_the_presence_again() -> None:
    relay = ready_relay()
    relay.device_operation(SetPresence(open=True, show=Show.AWAY), NOW)
    relay.device_operation(SetPresence(open=False, to=0), NOW)
    again = relay.upstream_event(ev.SessionEstablished(DEVICE, True, True), NOW + 1)
    assert again == [
        cmd.UpstreamRosterRequest(),
        _presence(True, show=Show.AWAY),
        _presence(False, to=ALICE),
    ]
    assert relay.upstream_event(ev.SessionResumed(DEVICE, 0), NOW + 2) == []  # the server kept it


# -- out of contact without a goodbye -------------------------------------------------------------


def test_a_session_lost_without_sleep_makes_the_device_unavailable_after_the_grace() -> None:
    relay = ready_relay(config=RelayConfig(link_lost_grace=30.0))
    relay.device_operation(SetPresence(open=True, note="here"), NOW)
    assert relay.device_operation(DeviceLinkLost(), NOW + 5) == [cmd.UpstreamSetActive(False)]
    assert _state(relay) is SleepState.DETACHED
    assert relay.next_deadline() == NOW + 35.0
    assert relay.handle_timer(NOW + 34.0) == []
    assert relay.handle_timer(NOW + 35.0) == [_presence(False, status="here")]
    assert _state(relay) is SleepState.LOST
    assert relay.next_deadline() is None
    assert relay.statistics().unavailable_announced == 1
    # Its account stays: what is sent to it now is queued for it, watched for expiry (§2.1.1).
    (queued,) = relay.upstream_event(_chat("late"), NOW + 40)
    assert isinstance(queued, cmd.EnqueueForDevice)
    assert isinstance(queued.message, IncomingMessage)
    back = relay.device_operation(DeviceLinkUp(), NOW + 100)
    assert back == [
        cmd.UpstreamSetActive(True),
        _presence(True, status="here"),
        cmd.UpstreamSync(),
    ]
    assert _state(relay) is SleepState.AWAKE
    assert flushed(relay, NOW + 100) == [cmd.DrainQueue()]
    assert relay.next_deadline() is None  # delivered from the queue now, no longer expired


def test_a_new_session_within_the_grace_changes_nothing_for_the_watchers() -> None:
    relay = ready_relay(config=RelayConfig(link_lost_grace=30.0))
    relay.device_operation(SetPresence(open=True), NOW)
    relay.device_operation(DeviceLinkLost(), NOW)
    back = relay.device_operation(DeviceLinkUp(), NOW + 29)
    assert back == [cmd.UpstreamSetActive(True), cmd.UpstreamSync()]
    assert flushed(relay, NOW + 29) == []  # nothing was queued
    assert relay.next_deadline() is None
    assert relay.handle_timer(NOW + 1000) == []
    assert _state(relay) is SleepState.AWAKE


def test_a_lost_device_that_speaks_is_back() -> None:
    relay = ready_relay(config=RelayConfig(link_lost_grace=30.0))
    relay.device_operation(SetPresence(open=True), NOW)
    relay.device_operation(DeviceLinkLost(), NOW)
    relay.handle_timer(NOW + 30.0)
    commands = relay.device_operation(SetPresence(show=Show.AWAY), NOW + 50)
    assert commands == [
        cmd.UpstreamSetActive(True),
        _presence(True),
        cmd.UpstreamSync(),
        _presence(True, show=Show.AWAY),
    ]
    assert _state(relay) is SleepState.AWAKE


def test_a_sleeper_that_drops_its_session_keeps_its_sleep_deadline() -> None:
    relay = ready_relay(config=RelayConfig(sleep_grace=10.0, link_lost_grace=30.0))
    relay.device_operation(SetPresence(open=True), NOW)
    relay.device_operation(Sleep(60), NOW)
    assert relay.device_operation(DeviceLinkLost(), NOW + 1) == []
    assert relay.next_deadline() == NOW + 70.0
    assert relay.handle_timer(NOW + 70.0) == [_presence(False)]
    assert _state(relay) is SleepState.OVERDUE
    # A new session: reachable again, still asleep, with a fresh grace.
    assert relay.device_operation(DeviceLinkUp(), NOW + 80) == [_presence(True)]
    assert _state(relay) is SleepState.ASLEEP
    assert relay.next_deadline() == NOW + 90.0


def test_a_lost_device_that_sleeps_is_back_and_asleep() -> None:
    relay = ready_relay(config=RelayConfig(link_lost_grace=30.0, sleep_grace=10.0))
    relay.device_operation(SetPresence(open=True), NOW)
    relay.device_operation(DeviceLinkLost(), NOW)
    relay.handle_timer(NOW + 30.0)
    assert relay.device_operation(Sleep(60), NOW + 40) == [_presence(True)]  # CSI stays inactive
    assert _state(relay) is SleepState.ASLEEP
    assert relay.next_deadline() == NOW + 110.0


def test_a_device_that_never_set_presence_is_not_announced() -> None:
    relay = ready_relay(config=RelayConfig(link_lost_grace=30.0))
    relay.device_operation(DeviceLinkLost(), NOW)
    assert relay.handle_timer(NOW + 30.0) == []
    assert relay.statistics().unavailable_announced == 0


# -- senders told (§5.4.1) ------------------------------------------------------------------------


def test_a_message_the_full_queue_refused_is_reported_to_its_sender() -> None:
    relay = ready_relay()
    relay.upstream_event(_chat("s1"), NOW)  # IncomingMessage 0, committed to the queue first
    assert relay.device_operation(QueueOverflowed(0), NOW) == [
        cmd.UpstreamDeliveryFailed(ALICE_PHONE, "s1", FailureReason.RESOURCE_CONSTRAINT)
    ]
    assert relay.device_operation(DeviceDelivered(0), NOW) == []  # no receipt for it
    assert relay.device_operation(QueueOverflowed(0), NOW) == []  # told once
    assert relay.statistics().overflow_reports == 1
    assert relay.statistics().dropped["report-sender-forgotten"] == 1


def test_an_overflow_while_asleep_leaves_the_summary_true() -> None:
    relay = ready_relay()
    relay.device_operation(Sleep(600), NOW)
    relay.upstream_event(_chat("s1", receipt=False), NOW)
    relay.upstream_event(_chat("s2", receipt=False), NOW)
    (report,) = relay.device_operation(QueueOverflowed(1), NOW)
    assert report == cmd.UpstreamDeliveryFailed(
        ALICE_PHONE, "s2", FailureReason.RESOURCE_CONSTRAINT
    )
    relay.device_operation(Wake(), NOW + 10)
    summary = of_type(flushed(relay, NOW + 10), cmd.SendToDevice)
    assert summary == [cmd.SendToDevice(MissedSummary(messages=1))]


def test_an_inbound_resource_constraint_error_is_reported_as_such() -> None:
    relay = ready_relay()
    (send,) = of_type(
        relay.device_operation(SendMessage(3, 0, TextContent("x")), NOW), cmd.UpstreamSendMessage
    )
    error = StanzaError(StanzaErrorType.WAIT, StanzaErrorCondition.RESOURCE_CONSTRAINT)
    commands = relay.upstream_event(ev.MessageFailed(send.message_id, ALICE, error), NOW)
    assert DeliveryReport(3, DeliveryStatus.FAILED, FailureReason.RESOURCE_CONSTRAINT) in [
        c.message for c in of_type(commands, cmd.SendToDevice)
    ]


# -- statistics -----------------------------------------------------------------------------------


def test_statistics_count_reports_signatures_suppressed_presence_and_reports() -> None:
    ca = CertificateAuthority.create(now=NOW - 86_400)
    credential = ca.enroll(ImppAddress.of(DEVICE), now=NOW - 86_400)
    verdicts = itertools.cycle(
        [SignatureStatus.VERIFIED, SignatureStatus.FAILED, SignatureStatus.NONE]
    )
    relay = ready_relay(
        signer=OnBehalfDeviceSigner(OnBehalfSigner(), credential),
        verifier=lambda stanza, now: next(verdicts),
        config=RelayConfig(report_timeout=10.0, queue_lifetime=5.0, sleep_grace=1e9),
    )
    first = of_type(
        relay.device_operation(SendMessage(1, 0, TextContent("a")), NOW), cmd.UpstreamSendMessage
    )
    second = of_type(
        relay.device_operation(SendMessage(2, 0, TextContent("b")), NOW), cmd.UpstreamSendMessage
    )
    relay.device_operation(SendMessage(3, 0, TextContent("c")), NOW)
    relay.device_operation(SendMessage(4, "nolocalpart.example", TextContent("d")), NOW)
    relay.upstream_event(ev.ReceiptReceived(ALICE, first[0].message_id), NOW)
    error = StanzaError(StanzaErrorType.CANCEL, StanzaErrorCondition.ITEM_NOT_FOUND)
    relay.upstream_event(ev.MessageFailed(second[0].message_id, ALICE, error), NOW)
    relay.handle_timer(NOW + 10.0)  # message 3: UNKNOWN
    relay.device_operation(SetPresence(open=True), NOW)
    relay.upstream_event(_chat("v"), NOW)
    relay.upstream_event(ev.PresenceReceived(PresenceStanza(from_=ALICE_PHONE)), NOW)
    relay.upstream_event(ev.PresenceReceived(PresenceStanza(from_=BOB)), NOW)  # not subscribed
    relay.device_operation(Sleep(600), NOW)
    relay.upstream_event(_chat("w"), NOW)
    relay.upstream_event(_chat("x"), NOW)
    relay.device_operation(QueueOverflowed(2), NOW)
    relay.handle_timer(NOW + 5.0)  # message 1 expires
    stats = relay.statistics()
    assert (stats.reports_delivered, stats.reports_failed, stats.reports_unknown) == (1, 1, 1)
    assert (stats.messages_signed, stats.signing_failures, stats.presence_signed) == (3, 1, 1)
    verdicts_seen = (stats.inbound_verified, stats.inbound_signature_failed, stats.inbound_unsigned)
    assert verdicts_seen == (2, 1, 1)  # messages v, w, x and Alice's presence
    assert stats.presence_unsubscribed == 1
    assert (stats.overflow_reports, stats.expiry_reports) == (1, 1)
