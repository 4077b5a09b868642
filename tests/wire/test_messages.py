"""Field rules: types (bool is not int), ranges, critical/elective keys, defaults, directions."""

from __future__ import annotations

import pytest

from gateway.wire import (
    Ack,
    Contact,
    ContactList,
    DeliveryReport,
    DeliveryStatus,
    Direction,
    Error,
    ErrorCode,
    FailureReason,
    IncomingMessage,
    LocalWireError,
    MessageType,
    MimeContent,
    Ping,
    PresenceNotification,
    RemoteWireError,
    SendMessage,
    SetPresence,
    Show,
    Sleep,
    SubscriptionAction,
    SubscriptionCommand,
    TextContent,
    Wake,
    decode_untrusted,
    encode,
)
from gateway.wire.cbor import CborValue, encode_value


def decode_value(value: CborValue) -> object:
    return decode_untrusted(encode_value(value))


def refused(value: CborValue) -> ErrorCode:
    with pytest.raises(RemoteWireError) as caught:
        decode_value(value)
    return caught.value.code


SEND: dict[int, CborValue] = {0: 4, 1: 7, 2: 3, 3: "hi"}


def test_send_message_decodes() -> None:
    assert decode_value(SEND) == SendMessage(7, 3, TextContent("hi"))


def test_unknown_elective_keys_are_ignored_at_every_level() -> None:
    assert decode_value({**SEND, -1: "later", -300: [1, {2: b"x"}]}) == decode_value(SEND)
    contact: dict[int, CborValue] = {1: 1, 2: "a@b", -5: True}
    assert decode_value({0: 12, 1: 9, 2: [contact]}) == ContactList(9, (Contact(1, "a@b"),))


@pytest.mark.parametrize("key", [8, 23, 24, 1000])
def test_unknown_critical_keys_are_refused(key: int) -> None:
    assert refused({**SEND, key: 1}) is ErrorCode.UNKNOWN_CRITICAL_FIELD
    assert refused({0: 12, 1: 9, 2: [{1: 1, 2: "a@b", key: 0}]}) is (
        ErrorCode.UNKNOWN_CRITICAL_FIELD
    )


def test_key_zero_is_unknown_in_a_contact_entry() -> None:
    assert refused({0: 12, 1: 9, 2: [{0: 1, 1: 1, 2: "a@b"}]}) is ErrorCode.UNKNOWN_CRITICAL_FIELD


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({1: 7}, ErrorCode.MISSING_FIELD),
        ({0: 99}, ErrorCode.UNKNOWN_TYPE),
        ({0: 16}, ErrorCode.UNKNOWN_TYPE),
        ({0: -1}, ErrorCode.INVALID_FIELD),
        ({0: True}, ErrorCode.INVALID_FIELD),
        ({0: "4"}, ErrorCode.INVALID_FIELD),
        ([4, 7], ErrorCode.INVALID_FIELD),
        ("ack", ErrorCode.INVALID_FIELD),
        (-1, ErrorCode.INVALID_FIELD),
        (True, ErrorCode.INVALID_FIELD),
        (None, ErrorCode.INVALID_FIELD),
    ],
)
def test_what_is_not_a_message(value: CborValue, code: ErrorCode) -> None:
    assert refused(value) is code


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({1: True}, ErrorCode.INVALID_FIELD),  # bool is not an int
        ({1: -1}, ErrorCode.INVALID_FIELD),
        ({1: "7"}, ErrorCode.INVALID_FIELD),
        ({2: True}, ErrorCode.INVALID_FIELD),
        ({2: 65536}, ErrorCode.INVALID_FIELD),  # aliases stop at 65535
        ({2: -3}, ErrorCode.INVALID_FIELD),
        ({2: ""}, ErrorCode.INVALID_ADDRESS),
        ({2: "a b@c"}, ErrorCode.INVALID_ADDRESS),
        ({2: b"a@b"}, ErrorCode.INVALID_FIELD),
        ({3: b"hi"}, ErrorCode.INVALID_FIELD),
        ({4: "not a tag!"}, ErrorCode.INVALID_FIELD),
        ({4: 5}, ErrorCode.INVALID_FIELD),
        ({5: "text/plain", 6: b"x"}, ErrorCode.INVALID_FIELD),  # text and MIME both
        ({7: True}, ErrorCode.NOT_DETERMINISTIC),  # the default written out
        ({7: 0}, ErrorCode.INVALID_FIELD),
    ],
)
def test_send_message_field_checks(changes: dict[int, CborValue], code: ErrorCode) -> None:
    assert refused({**SEND, **changes}) is code


def test_mime_content_needs_both_fields_and_no_language() -> None:
    base: dict[int, CborValue] = {0: 4, 1: 1, 2: 1}
    assert refused(base) is ErrorCode.MISSING_FIELD
    assert refused({**base, 5: "image/png"}) is ErrorCode.MISSING_FIELD
    assert refused({**base, 6: b"x"}) is ErrorCode.MISSING_FIELD
    assert refused({**base, 4: "en", 5: "image/png", 6: b"x"}) is ErrorCode.INVALID_FIELD
    assert refused({**base, 5: "png", 6: b"x"}) is ErrorCode.INVALID_FIELD
    assert decode_value({**base, 5: "image/png", 6: b"x"}) == SendMessage(
        1, 1, MimeContent("image/png", b"x")
    )


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ({0: 1, 1: 0}, ErrorCode.NOT_DETERMINISTIC),  # Ping id 0 is the default
        ({0: 0, 1: 5}, ErrorCode.NOT_DETERMINISTIC),  # a cumulative-only ack is the bare integer
        ({0: 0, 1: 5, 2: []}, ErrorCode.NOT_DETERMINISTIC),
        ({0: 0, 1: 5, 2: [1]}, ErrorCode.INVALID_FIELD),
        ({0: 0, 1: 5, 2: [1, True]}, ErrorCode.INVALID_FIELD),
        ({0: 0, 1: 5, 2: [-1, 0]}, ErrorCode.INVALID_FIELD),
        ({0: 0, 2: [0, 0]}, ErrorCode.MISSING_FIELD),
        ({0: 7}, ErrorCode.INVALID_FIELD),  # an empty presence update
        ({0: 7, 2: 5}, ErrorCode.INVALID_FIELD),  # no such show
        ({0: 7, 1: 1}, ErrorCode.INVALID_FIELD),  # open is a bool
        ({0: 7, 3: "", 4: "en"}, ErrorCode.INVALID_FIELD),  # language without a note
        ({0: 7, 5: True}, ErrorCode.INVALID_FIELD),  # a recipient is an alias or an address
        ({0: 7, 5: -1}, ErrorCode.INVALID_FIELD),
        ({0: 7, 5: ""}, ErrorCode.INVALID_ADDRESS),
        ({0: 7, 5: 1 << 16}, ErrorCode.INVALID_FIELD),  # beyond the alias range
        ({0: 8, 1: 1, 2: True, 3: 0}, ErrorCode.NOT_DETERMINISTIC),  # show AVAILABLE written out
        ({0: 8, 1: 1, 2: False, 3: 2}, ErrorCode.INVALID_FIELD),  # closed with a show
        ({0: 8, 1: 1, 2: True, 4: ""}, ErrorCode.INVALID_FIELD),
        ({0: 8, 1: 1, 2: True, 6: 3}, ErrorCode.INVALID_FIELD),  # no such signature status
        ({0: 6, 1: 1, 2: 1}, ErrorCode.INVALID_FIELD),  # FAILED without a reason
        ({0: 6, 1: 1, 2: 0, 3: 1}, ErrorCode.INVALID_FIELD),  # DELIVERED with a reason
        ({0: 6, 1: 1, 2: 3}, ErrorCode.INVALID_FIELD),  # no such status
        ({0: 9, 1: 6, 2: 1}, ErrorCode.INVALID_FIELD),  # no such action
        ({0: 12, 1: 1, 2: []}, ErrorCode.NOT_DETERMINISTIC),  # empty contact array is omitted
        ({0: 12, 1: 1, 3: False}, ErrorCode.NOT_DETERMINISTIC),
        ({0: 12, 1: 1, 2: [5]}, ErrorCode.INVALID_FIELD),
        ({0: 12, 1: 1, 2: [{1: 1, 2: "a@b"}, {1: 1, 2: "c@d"}]}, ErrorCode.INVALID_FIELD),
        ({0: 12, 1: 1, 2: [{1: 1, 2: 5}]}, ErrorCode.INVALID_FIELD),
        ({0: 12, 1: 1, 2: [{1: 1, 2: "a@b", 3: 0}]}, ErrorCode.NOT_DETERMINISTIC),
        ({0: 13, 1: 0}, ErrorCode.INVALID_FIELD),  # sleeping for no time
        ({0: 13, 1: 1 << 32}, ErrorCode.INVALID_FIELD),
        ({0: 13}, ErrorCode.MISSING_FIELD),
        ({0: 14, 1: False}, ErrorCode.NOT_DETERMINISTIC),
        ({0: 15, 3: 0}, ErrorCode.NOT_DETERMINISTIC),
        ({0: 3}, ErrorCode.MISSING_FIELD),
        ({0: 3, 1: True}, ErrorCode.INVALID_FIELD),
        ({0: 5, 1: 1, 2: 1, 3: "x"}, ErrorCode.MISSING_FIELD),  # no timestamp
        ({0: 5, 1: 1, 2: 1, 3: "x", 7: 1, 8: 0}, ErrorCode.NOT_DETERMINISTIC),
    ],
)
def test_field_checks(value: CborValue, code: ErrorCode) -> None:
    assert refused(value) is code


def test_set_presence_recipient_alone_is_a_message() -> None:
    assert decode_value({0: 7, 5: 4}) == SetPresence(to=4)  # ends the direction at alias 4
    assert decode_value({0: 7, 1: False, 5: "bob@example.org"}) == SetPresence(
        open=False, to="bob@example.org"
    )
    assert refused({0: 7}) is ErrorCode.INVALID_FIELD  # a broadcast must change something


def test_open_code_spaces_keep_unknown_numbers() -> None:
    """Error codes and failure reasons from a newer peer decode as plain ints (generic)."""
    error = decode_value({0: 3, 1: 99})
    assert error == Error(99)
    assert isinstance(error, Error)
    assert type(error.code) is int
    known = decode_value({0: 3, 1: 14})
    assert isinstance(known, Error)
    assert known.code is ErrorCode.UNKNOWN_ALIAS
    report = decode_value({0: 6, 1: 1, 2: 1, 3: 77})
    assert isinstance(report, DeliveryReport)
    assert report.reason == 77
    report = decode_value({0: 6, 1: 1, 2: 1, 3: 1})
    assert isinstance(report, DeliveryReport)
    assert report.reason is FailureReason.RECIPIENT_UNKNOWN


def test_enums_are_restored_on_decode() -> None:
    message = decode_value({0: 9, 1: 4, 2: "spam@example.com"})
    assert message == SubscriptionCommand(SubscriptionAction.BLOCK, "spam@example.com")
    assert isinstance(message, SubscriptionCommand)
    assert message.action is SubscriptionAction.BLOCK


# Local misuse: invalid dataclasses cannot be built, so they cannot be encoded.


@pytest.mark.parametrize(
    "build",
    [
        lambda: Ack(True),
        lambda: Ack(-1),
        lambda: Ack(5, ((5, 6),)),  # first must be above cumulative
        lambda: Ack(5, ((7, 6),)),
        lambda: Ack(5, ((7, 9), (9, 10))),  # overlapping
        lambda: Ack(5, ((12, 13), (7, 8))),  # descending
        lambda: Ack(5, [(7, 8)]),  # type: ignore[arg-type]  # a list, not a tuple
        lambda: Ping(True),
        lambda: SendMessage(1, True, TextContent("x")),
        lambda: SendMessage(1, 1, "x"),  # type: ignore[arg-type]
        lambda: SendMessage(1, 1, TextContent("x"), want_report=1),  # type: ignore[arg-type]
        lambda: SendMessage(1, "a@b", TextContent("\ud800")),
        lambda: TextContent("x", "english language"),
        lambda: MimeContent("image/jpeg", "not bytes"),  # type: ignore[arg-type]
        lambda: SetPresence(),
        lambda: SetPresence(open=1),  # type: ignore[arg-type]
        lambda: SetPresence(show=9),  # type: ignore[arg-type]
        lambda: SetPresence(note="", note_language="en"),
        lambda: SetPresence(open=True, to="two words"),
        lambda: SetPresence(to=True),
        lambda: PresenceNotification(1, False, Show.AWAY),
        lambda: DeliveryReport(1, DeliveryStatus.FAILED),
        lambda: DeliveryReport(1, DeliveryStatus.DELIVERED, text="why"),
        lambda: Contact(1, 2),  # type: ignore[arg-type]
        lambda: ContactList(1, (Contact(1, "a@b"), Contact(1, "c@d"))),
        lambda: ContactList(1, [Contact(1, "a@b")]),  # type: ignore[arg-type]
        lambda: Sleep(0),
        lambda: Wake(1),  # type: ignore[arg-type]
        lambda: Error(-1),
        lambda: IncomingMessage(1, 1, True, TextContent("x")),
    ],
)
def test_invalid_messages_cannot_be_built(build: object) -> None:
    assert callable(build)
    with pytest.raises(LocalWireError):
        build()


def test_encode_refuses_a_non_message() -> None:
    with pytest.raises(LocalWireError) as caught:
        encode(TextContent("x"))  # type: ignore[arg-type]
    assert caught.value.code is ErrorCode.UNKNOWN_TYPE


def test_directions_and_types_are_declared() -> None:
    assert SendMessage.DIRECTION is Direction.DEVICE_TO_GATEWAY
    assert IncomingMessage.DIRECTION is Direction.GATEWAY_TO_DEVICE
    assert Ack.DIRECTION is Direction.BOTH
    assert Ack.TYPE is MessageType.ACK


def test_message_bodies_stay_out_of_repr() -> None:
    """Logging a message (its repr) must not log what it says (house rule: no bodies in logs)."""
    text = SendMessage(1, 3, TextContent("the secret plan", "en"))
    mime = IncomingMessage(2, 3, 0, MimeContent("text/plain", b"another secret"))
    assert "secret" not in repr(text)
    assert "secret" not in repr(mime)
    assert "text/plain" in repr(mime)
    assert "'en'" in repr(text)
