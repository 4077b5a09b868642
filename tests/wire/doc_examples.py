"""The message values behind every `hex wire:<label>` example in docs/protocol.md.

tests/wire/test_protocol_doc.py checks that each example in the document is exactly what the
encoder makes of the value here, that its diagnostic notation matches, and that the size table
next to the XMPP stanzas is measured from the same bytes.
"""

from __future__ import annotations

from gateway.wire import (
    Ack,
    Contact,
    ContactList,
    ContactListRequest,
    DeliveryReport,
    DeliveryStatus,
    Error,
    ErrorCode,
    FailureReason,
    IncomingMessage,
    Message,
    MessageType,
    MimeContent,
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

JANUARY_2025 = 1_735_689_600  # 2025-01-01T00:00:00Z

EXAMPLES: dict[str, Message | tuple[Message, ...]] = {
    "send-text-alias": SendMessage(7, 3, TextContent("Running late, 10 min")),
    "send-text-alias-map": SendMessage(7, 3, TextContent("Running late, 10 min"), compact=False),
    "send-text-address": SendMessage(8, "alice@example.com", TextContent("Bom dia!", "pt")),
    "send-mime": SendMessage(
        9, 3, MimeContent("image/jpeg", bytes.fromhex("ffd8ffe000104a464946")), want_report=False
    ),
    "incoming-message": IncomingMessage(42, 3, JANUARY_2025, TextContent("On my way")),
    "incoming-signed": IncomingMessage(
        43,
        "carol@example.org",
        JANUARY_2025 + 60,
        TextContent("Invoice sent"),
        SignatureStatus.VERIFIED,
    ),
    "report-delivered": DeliveryReport(7, DeliveryStatus.DELIVERED),
    "report-failed": DeliveryReport(8, DeliveryStatus.FAILED, FailureReason.RECIPIENT_UNKNOWN),
    "report-unknown": DeliveryReport(9, DeliveryStatus.UNKNOWN),
    "set-presence": SetPresence(show=Show.AWAY, note="In meeting"),
    "set-presence-closed": SetPresence(open=False),
    "set-presence-directed": SetPresence(show=Show.CHAT, note="Call me", to=4),
    "set-presence-withheld": SetPresence(open=False, to="bob@example.org"),
    "presence-notification": PresenceNotification(3, True, Show.DO_NOT_DISTURB, "Driving", "en"),
    "subscribe": SubscriptionCommand(SubscriptionAction.SUBSCRIBE, "bob@example.org"),
    "approve": SubscriptionCommand(SubscriptionAction.APPROVE, 4),
    "block": SubscriptionCommand(SubscriptionAction.BLOCK, "spam@example.net"),
    "subscription-request": SubscriptionRequest("bob@example.org", "Hi, it's Bob"),
    "contact-list-request": ContactListRequest(17),
    "contact-list": ContactList(
        18,
        (
            Contact(3, "alice@example.com", SubscriptionState.BOTH, "Alice"),
            Contact(4, "bob@example.org", pending_out=True),
        ),
    ),
    "sleep": Sleep(3600),
    "wake": Wake(),
    "missed-summary": MissedSummary(messages=5, presence_notifications=2),
    "ping": Ping(1),
    "pong": Pong(1),
    "ack-cumulative": Ack(1000),
    "ack-small": Ack(5),
    "ack-selective": Ack(5, ((7, 9), (12, 12))),
    "error": Error(ErrorCode.UNKNOWN_ALIAS, MessageType.SEND_MESSAGE, 7),
    "record-plaintext": (
        Ack(12),
        IncomingMessage(44, 4, JANUARY_2025 + 120, TextContent("ok")),
    ),
}
