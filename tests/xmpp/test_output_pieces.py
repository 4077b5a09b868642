"""Output cut between elements (``XmppClient.data_to_send_pieces``), one TLS record per piece.

A connection that dies between two records must leave the server's parser between stanzas:
Prosody 0.12 parses a resumed stream with the old stream's parser, and a half stanza left there
swallows the resumed stream (docs/upstream.md, "Failing and hostile servers").
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gateway.xmpp.jid import Jid
from gateway.xmpp.net.connection import MAX_WRITE
from gateway.xmpp.parser import StanzaReceived, XmlStreamParser
from tests.xmpp.replay import ServerView, login, make_client

ALICE = Jid("alice", "example.org")


def _whole_elements(piece: bytes) -> list[ET.Element]:
    """Parse ``piece`` on its own, inside a stream: it must hold whole elements only."""
    parser = XmlStreamParser(inherit_stream_lang=False)
    parser.feed(
        b"<stream:stream xmlns='jabber:client' "
        b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
    )
    elements = [e.element for e in parser.feed(piece) if isinstance(e, StanzaReceived)]
    assert parser.feed(b"<r xmlns='urn:xmpp:sm:3'/>"), "a piece left an element open"
    return elements


def test_a_large_batch_is_cut_between_stanzas_under_the_record_size() -> None:
    client = make_client()
    login(client, ServerView())
    for number in range(40):
        client.send_message(ALICE, f"{number:03d} " + "x" * 900)
    pieces = client.data_to_send_pieces(0.0, MAX_WRITE)
    assert len(pieces) > 1
    assert all(len(piece) <= MAX_WRITE for piece in pieces)
    elements = [element for piece in pieces for element in _whole_elements(piece)]
    bodies = [e.findtext("{jabber:client}body") for e in elements if e.tag.endswith("message")]
    assert [body[:3] for body in bodies if body] == [f"{n:03d}" for n in range(40)]
    assert elements[-1].tag == "{urn:xmpp:sm:3}r"  # the batch's <r/> comes last
    assert client.data_to_send() == b""


def test_an_element_larger_than_a_piece_is_a_piece_of_its_own() -> None:
    client = make_client()
    login(client, ServerView())
    client.send_message(ALICE, "small")
    client.send_message(ALICE, "y" * (2 * MAX_WRITE))
    client.send_message(ALICE, "after")
    pieces = client.data_to_send_pieces(0.0, MAX_WRITE)
    assert [len(_whole_elements(piece)) for piece in pieces] == [1, 1, 2]  # "after" and <r/>
    assert len(pieces[1]) > MAX_WRITE


def test_nothing_to_send_is_no_piece() -> None:
    client = make_client()
    login(client, ServerView())
    assert client.data_to_send_pieces(0.0, MAX_WRITE) == []
