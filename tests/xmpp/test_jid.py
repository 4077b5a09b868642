"""JIDs (RFC 7622): parsing, normalisation, refusal of malformed addresses."""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.xmpp.jid import Jid, JidError
from gateway.xmpp.stanzas import StanzaParseError, parse_message_untrusted


@pytest.mark.parametrize(
    ("text", "local", "domain", "resource"),
    [
        ("juliet@example.com", "juliet", "example.com", None),
        ("juliet@EXAMPLE.com./balcony", "juliet", "example.com", "balcony"),
        ("example.com", None, "example.com", None),
        ("juliet@example.com/foo@bar/baz", "juliet", "example.com", "foo@bar/baz"),
        ("juliet@[::1]", "juliet", "[::1]", None),
    ],
)
def test_valid(text: str, local: str | None, domain: str, resource: str | None) -> None:
    jid = Jid.parse_untrusted(text)
    assert (jid.local, jid.domain, jid.resource) == (local, domain, resource)
    assert Jid.parse_untrusted(str(jid)) == jid


@pytest.mark.parametrize(
    "text",
    [
        "",
        "@example.com",
        "juliet@",
        "juliet@example.com/",
        "ju liet@example.com",
        'a"b@c',
        "x" * 1024 + "@example.com",
        "juliet@exa mple.com",
        "juliet@[::1",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(JidError):
        Jid.parse_untrusted(text)


def test_bare_and_with_resource() -> None:
    jid = Jid.parse_untrusted("a@b/c")
    assert jid.bare == Jid("a", "b")
    assert jid.bare.is_bare
    assert jid.bare.with_resource("c") == jid


@given(st.text(max_size=60))
def test_garbage_parses_or_raises_jid_error(text: str) -> None:
    with contextlib.suppress(JidError):
        Jid.parse_untrusted(text)


def test_stanza_addresses_are_canonical() -> None:
    # Issue 11 point 1: the client kept "Alice@example.org/Phone" and a full-width "\uff42ob".
    message = ET.Element(
        "{jabber:client}message",
        {"from": "Alice@Example.ORG/Phone", "to": "\uff42ob@example.org", "type": "chat"},
    )
    parsed = parse_message_untrusted(message)
    assert parsed.from_ == Jid("alice", "example.org", "Phone")
    assert str(parsed.to) == "bob@example.org"


def test_stanza_with_a_non_jid_address_is_a_parse_error() -> None:
    # RFC 7622 §3.5 example 21: a symbol is no localpart.
    message = ET.Element("{jabber:client}message", {"from": "\u265a@example.com"})
    with pytest.raises(StanzaParseError):
        parse_message_untrusted(message)
