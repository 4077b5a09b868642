"""Hypothesis strategies that generate every wire message type, with values up to the limits."""

from __future__ import annotations

from hypothesis import strategies as st

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
from gateway.wire.messages import MAX_ALIAS, MAX_UINT

# Small numbers are the common case and the 1-byte encodings; the full range checks the long heads.
uints = st.one_of(st.integers(0, 30), st.integers(0, 70_000), st.integers(0, MAX_UINT))
aliases = st.one_of(st.integers(0, 30), st.integers(0, MAX_ALIAS))
addresses = st.one_of(
    st.from_regex(r"[a-z0-9._-]{1,12}@[a-z0-9.-]{1,20}(/[a-zA-Z0-9]{1,8})?", fullmatch=True),
    st.text(
        alphabet=st.characters(exclude_categories=("Cs", "Cc", "Zs", "Zl", "Zp")),
        min_size=1,
        max_size=30,
    ),
)
contact_refs = st.one_of(aliases, addresses)
texts = st.text(max_size=60)
short_texts = st.text(max_size=40)
languages = st.from_regex(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8}){0,2}", fullmatch=True)
content_types = st.one_of(
    st.sampled_from(
        ["image/jpeg", "text/plain; charset=utf-8", "message/cpim", "application/json"]
    ),
    st.from_regex(r"[a-z]{1,10}/[a-z0-9.+-]{1,20}", fullmatch=True),
)
text_contents = st.builds(TextContent, texts, st.none() | languages)
mime_contents = st.builds(MimeContent, content_types, st.binary(max_size=80))
contents = st.one_of(text_contents, mime_contents)
optional_uints = st.none() | uints


@st.composite
def acks(draw: st.DrawFn) -> Ack:
    """An Ack with up to 5 selective ranges built from gaps and lengths, so it is always valid."""
    cumulative = draw(st.integers(0, 1 << 40))
    ranges: list[tuple[int, int]] = []
    previous = cumulative
    for _ in range(draw(st.integers(0, 5))):
        first = previous + 1 + draw(st.integers(0, 300))
        last = first + draw(st.integers(0, 300))
        ranges.append((first, last))
        previous = last
    return Ack(cumulative, tuple(ranges))


@st.composite
def delivery_reports(draw: st.DrawFn) -> DeliveryReport:
    status = draw(st.sampled_from(DeliveryStatus))
    if status is DeliveryStatus.FAILED:
        reason = draw(st.sampled_from(FailureReason) | st.integers(0, 1000))
        return DeliveryReport(draw(uints), status, reason, draw(st.none() | short_texts))
    return DeliveryReport(draw(uints), status)


@st.composite
def set_presences(draw: st.DrawFn) -> SetPresence:
    open_ = draw(st.none() | st.booleans())
    show = draw(st.none() | st.sampled_from(Show))
    note = draw(st.none() | short_texts)
    to = draw(st.none() | contact_refs)
    if to is None and open_ is None and show is None and note is None:
        note = ""
    language = draw(st.none() | languages) if note else None
    return SetPresence(open_, show, note, language, to)


@st.composite
def presence_notifications(draw: st.DrawFn) -> PresenceNotification:
    open_ = draw(st.booleans())
    show = draw(st.sampled_from(Show)) if open_ else Show.AVAILABLE
    note = draw(st.none() | short_texts.filter(bool))
    language = draw(st.none() | languages) if note else None
    return PresenceNotification(
        draw(contact_refs), open_, show, note, language, draw(st.sampled_from(SignatureStatus))
    )


contacts = st.builds(
    Contact,
    aliases,
    addresses,
    st.sampled_from(SubscriptionState),
    st.none() | short_texts,
    st.booleans(),
    st.booleans(),
)

contact_lists = st.builds(
    ContactList,
    uints,
    st.lists(contacts, max_size=5, unique_by=lambda contact: contact.alias).map(tuple),
    st.booleans(),
)

messages: st.SearchStrategy[Message] = st.one_of(
    acks(),
    st.builds(Ping, uints),
    st.builds(Pong, uints),
    st.builds(
        Error,
        st.sampled_from(ErrorCode) | st.integers(0, 1000),
        optional_uints,
        optional_uints,
        st.none() | short_texts,
    ),
    st.builds(SendMessage, uints, contact_refs, contents, st.booleans(), st.booleans()),
    st.builds(
        IncomingMessage, uints, contact_refs, uints, contents, st.sampled_from(SignatureStatus)
    ),
    delivery_reports(),
    set_presences(),
    presence_notifications(),
    st.builds(SubscriptionCommand, st.sampled_from(SubscriptionAction), contact_refs),
    st.builds(SubscriptionRequest, contact_refs, st.none() | short_texts),
    st.builds(ContactListRequest, optional_uints),
    contact_lists,
    st.builds(Sleep, st.integers(1, (1 << 32) - 1)),
    st.builds(Wake, st.booleans()),
    st.builds(MissedSummary, uints, uints, uints, uints, uints),
)
