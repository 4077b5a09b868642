"""The chat screen and command model (sans-IO): typed lines to actions, events to lines."""

from __future__ import annotations

import pytest

from device_sim.chat.model import (
    MAX_CONTACTS,
    MAX_LINE,
    AnswerSubscription,
    ChatScreen,
    Quit,
    SendText,
    SetOwnPresence,
    Sleep,
    Subscribe,
    SubscriptionRequested,
    Wake,
    safe_text,
)
from device_sim.client.events import (
    BacklogAnnounced,
    ClientClosed,
    Connected,
    DeliveryReported,
    MessageArrived,
    PresenceChanged,
    Slept,
    Woke,
)
from gateway import wire

ALICE = "alice@impp.test"


def _screen_with_alice() -> ChatScreen:
    screen = ChatScreen("sensor-1")
    screen.on_event(PresenceChanged(ALICE, True, wire.Show.AVAILABLE), 1.0)
    screen.take_lines()
    return screen


@pytest.mark.parametrize(
    ("line", "action"),
    [
        ("/msg alice@impp.test hello there", SendText(ALICE, "hello there")),
        ("/msg alice hello", SendText(ALICE, "hello")),
        ("/m #7 hi", SendText(7, "hi")),
        ("/msg 7 hi", SendText(7, "hi")),
        ("/presence away", SetOwnPresence(True, wire.Show.AWAY)),
        (
            "/presence dnd in a meeting",
            SetOwnPresence(True, wire.Show.DO_NOT_DISTURB, "in a meeting"),
        ),
        ("/presence offline", SetOwnPresence(False, None)),
        ("/presence", SetOwnPresence(True, wire.Show.AVAILABLE)),
        ("/approve alice", AnswerSubscription(ALICE, approve=True)),
        ("/deny alice@impp.test", AnswerSubscription(ALICE, approve=False)),
        ("/subscribe bob@impp.test", Subscribe("bob@impp.test")),
        ("/sleep 60", Sleep(60)),
        ("/wake", Wake()),
        ("/quit", Quit()),
        ("/QUIT", Quit()),
    ],
)
def test_commands_parse_to_actions(line: str, action: object) -> None:
    screen = _screen_with_alice()
    assert screen.typed(line, 2.0) == [action]


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("/msg alice", "usage: /msg CONTACT TEXT"),
        ("/msg carol hi", "no contact 'carol' seen yet"),
        ("/presence sleepy", "unknown presence 'sleepy'"),
        ("/sleep soon", "usage: /sleep SECONDS"),
        ("/sleep 0", "usage: /sleep SECONDS"),
        ("/sleep ٣", "usage: /sleep SECONDS"),  # a digit, but not an ASCII one
        ("/fly", "unknown command /fly"),
        ("/approve", "no subscription request is waiting"),
        ("hello", "no current contact"),
        ("/msg #99999999999 hi", "out of range"),
    ],
)
def test_bad_lines_are_refused_with_a_reason(line: str, says: str) -> None:
    screen = _screen_with_alice()
    assert screen.typed(line, 2.0) == []
    (shown,) = screen.take_lines()
    assert shown.startswith("00:02 ! ")
    assert says in shown


def test_plain_text_goes_to_the_current_contact() -> None:
    screen = ChatScreen("sensor-1")
    screen.on_event(MessageArrived(1, ALICE, "are you there?", 0), 3.0)
    assert screen.typed("yes", 4.0) == [SendText(ALICE, "yes")]
    assert screen.take_lines() == [
        "00:03 alice@impp.test: are you there?",
        "00:04 sensor-1 -> alice@impp.test: yes",
    ]
    assert screen.prompt == "[sensor-1 connecting, available to alice@impp.test]> "


def test_ambiguous_local_part_is_refused() -> None:
    screen = ChatScreen("d")
    screen.on_event(PresenceChanged("alice@a.test", True, wire.Show.AVAILABLE), 0.0)
    screen.on_event(PresenceChanged("alice@b.test", True, wire.Show.AVAILABLE), 0.0)
    screen.take_lines()
    assert screen.typed("/msg alice hi", 1.0) == []
    assert "ambiguous" in screen.take_lines()[0]


def test_events_render_as_lines_and_state() -> None:
    screen = ChatScreen("sensor-1")
    screen.on_event(Connected(resumed=False), 1.0)
    assert screen.state == "online"
    [action] = screen.typed("/msg alice@impp.test hi", 2.0)
    assert isinstance(action, SendText)
    screen.sent(4, ALICE)
    screen.on_event(DeliveryReported(4, wire.DeliveryStatus.DELIVERED, None), 3.0)
    screen.on_event(
        DeliveryReported(5, wire.DeliveryStatus.FAILED, wire.FailureReason.RECIPIENT_UNKNOWN), 3.0
    )
    screen.on_event(PresenceChanged(ALICE, True, wire.Show.DO_NOT_DISTURB), 4.0)
    screen.on_event(SubscriptionRequested("bob@impp.test", "hi, it's Bob"), 5.0)
    screen.on_event(Slept(wake_at=125.0), 6.0)
    screen.on_event(Woke(with_ticket=True), 7.0)
    screen.on_event(Connected(resumed=True), 8.0)
    screen.on_event(BacklogAnnounced(messages=2, delivery_reports=1), 8.0)
    screen.on_event(PresenceChanged(ALICE, False, wire.Show.AVAILABLE), 9.0)
    screen.on_event(ClientClosed("closed by the gateway", failed=False), 70.0)
    assert screen.take_lines() == [
        "00:01 connected to the gateway (EDHOC handshake done)",
        "00:02 sensor-1 -> alice@impp.test: hi",
        "00:03 message 4 to alice@impp.test delivered",
        "00:03 message 5 FAILED (recipient unknown)",
        "00:04 alice@impp.test is busy (do not disturb)",
        '00:05 bob@impp.test asks to see your presence ("hi, it\'s Bob"): '
        "/approve bob@impp.test or /deny bob@impp.test",
        "00:06 radio off; waking at 02:05 or on /wake",
        "00:07 radio on: resuming the session",
        "00:08 connected to the gateway (resumed with a ticket)",
        "00:08 while asleep the gateway kept 2 message(s) and 1 delivery report(s)",
        "00:09 alice@impp.test is offline",
        "01:10 session closed: closed by the gateway",
    ]
    assert screen.finished


def test_the_only_pending_request_is_answered_without_a_name() -> None:
    screen = ChatScreen("d")
    screen.on_event(SubscriptionRequested(ALICE), 0.0)
    assert screen.typed("/approve", 1.0) == [AnswerSubscription(ALICE, approve=True)]
    assert screen.typed("/approve", 2.0) == []  # answered: nothing waits any more


def test_contacts_lists_presence_and_requests() -> None:
    screen = _screen_with_alice()
    screen.on_event(SubscriptionRequested("bob@impp.test"), 2.0)
    screen.take_lines()
    screen.typed("/contacts", 3.0)
    assert screen.take_lines() == [
        "  alice@impp.test: available",
        "  bob@impp.test: presence unknown (asks to see your presence)",
    ]


def test_text_from_the_network_cannot_drive_the_terminal() -> None:
    """ESC, CR, BEL, C1 controls and line separators are replaced; long lines are cut."""
    hostile = "hi\x1b]0;owned\x07\r\x1b[2Jgone\u009b31m\u2028x" + "y" * 2000
    screen = ChatScreen("d")
    screen.on_event(MessageArrived(1, "eve\x1b[1m@evil.test", hostile, 0), 0.0)
    (line,) = screen.take_lines()
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in line)
    assert "\u2028" not in line
    assert len(line) <= len("00:00 ") + 200 + 2 + MAX_LINE
    assert safe_text("a\nb") == "a\ufffdb"


def test_state_stays_bounded() -> None:
    screen = ChatScreen("d")
    for n in range(MAX_CONTACTS + 50):
        screen.on_event(PresenceChanged(f"c{n}@x.test", True, wire.Show.AVAILABLE), 0.0)
        screen.on_event(SubscriptionRequested(f"c{n}@x.test"), 0.0)
    assert len(screen.contacts) == MAX_CONTACTS
    assert len(screen.pending) <= 64
    assert len(screen.lines) <= 1000


def test_the_first_connection_announces_the_device_available() -> None:
    """Without an available presence the XMPP server delivers nothing to the bare address."""
    screen = ChatScreen("d")
    assert screen.on_event(Connected(resumed=False), 0.0) == [SetOwnPresence(True, None)]
    assert screen.on_event(Connected(resumed=True), 9.0) == []
    assert screen.on_event(MessageArrived(1, ALICE, "x", 0), 9.0) == []
