"""The one transition table decides which elements each state accepts; reasons are enums."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.xmpp import events as ev
from gateway.xmpp.client import XmppClient
from gateway.xmpp.client_state import (
    TRANSITIONS,
    ClientInput,
    ClientState,
    check_element,
    element_input,
)
from gateway.xmpp.errors import StreamCondition, StreamError
from gateway.xmpp.events import StanzaDropReason
from gateway.xmpp.timers import IqKind
from tests.xmpp.replay import (
    FEATURES_TLS,
    PROCEED,
    SERVER_HEADER,
    ServerView,
    authenticate,
    feed,
    login,
    make_client,
    reach_sasl,
)

SASL = "urn:ietf:params:xml:ns:xmpp-sasl"
TLS = "urn:ietf:params:xml:ns:xmpp-tls"
SM = "urn:xmpp:sm:3"

# One element of every kind the table knows, as the server would write it.
ELEMENTS: dict[str, str] = {
    "{http://etherx.jabber.org/streams}features": "<stream:features/>",
    f"{{{TLS}}}proceed": f"<proceed xmlns='{TLS}'/>",
    f"{{{TLS}}}failure": f"<failure xmlns='{TLS}'/>",
    f"{{{SASL}}}challenge": f"<challenge xmlns='{SASL}'>=</challenge>",
    f"{{{SASL}}}success": f"<success xmlns='{SASL}'/>",
    f"{{{SASL}}}failure": f"<failure xmlns='{SASL}'><not-authorized/></failure>",
    f"{{{SM}}}enabled": f"<enabled xmlns='{SM}' id='x' resume='true'/>",
    f"{{{SM}}}resumed": f"<resumed xmlns='{SM}' previd='x' h='0'/>",
    f"{{{SM}}}failed": f"<failed xmlns='{SM}'/>",
    f"{{{SM}}}r": f"<r xmlns='{SM}'/>",
    f"{{{SM}}}a": f"<a xmlns='{SM}' h='0'/>",
    "{jabber:client}iq": "<iq type='result' id='nobody-asked'/>",
    "{jabber:client}message": "<message from='a@b/c'><body>x</body></message>",
    "{jabber:client}presence": "<presence from='a@b/c'/>",
}


def _awaiting_features() -> XmppClient:
    client = make_client()
    client.start(0.0)
    feed(client, SERVER_HEADER)
    return client


def _awaiting_proceed() -> XmppClient:
    client = _awaiting_features()
    feed(client, FEATURES_TLS)
    return client


def _authenticating() -> XmppClient:
    client = make_client()
    reach_sasl(client)
    return client


def _awaiting_bind() -> XmppClient:
    client = make_client()
    authenticate(client)
    feed(
        client,
        SERVER_HEADER + "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
        "</stream:features>",
    )
    return client


def _ready() -> XmppClient:
    client = make_client()
    login(client, ServerView())
    return client


STATES: dict[ClientState, Callable[[], XmppClient]] = {
    ClientState.AWAIT_FEATURES: _awaiting_features,
    ClientState.AWAIT_TLS_PROCEED: _awaiting_proceed,
    ClientState.AUTHENTICATING: _authenticating,
    ClientState.AWAIT_BIND: _awaiting_bind,
    ClientState.READY: _ready,
}


def test_every_known_element_has_an_input() -> None:
    for tag in ELEMENTS:
        assert element_input(tag) is not None, tag
    assert element_input("{jabber:client}unknown") is None
    assert element_input(f"{{{SM}}}unknown") is None


@pytest.mark.parametrize("state", list(STATES), ids=lambda state: state.name)
@pytest.mark.parametrize("tag", list(ELEMENTS))
def test_an_element_the_table_does_not_accept_is_unsupported_stanza_type(
    state: ClientState, tag: str
) -> None:
    client = STATES[state]()
    assert client.state is state
    client.data_to_send()
    events = feed(client, ELEMENTS[tag])
    peer_input = element_input(tag)
    assert peer_input is not None
    if (state, peer_input) in TRANSITIONS:
        check_element(state, tag)  # accepted: whatever follows is the handler's business
        return
    with pytest.raises(StreamError):
        check_element(state, tag)
    assert client.state is ClientState.FAILED
    assert isinstance(events[-1], ev.StreamEnded)
    error = events[-1].error
    assert isinstance(error, StreamError)
    assert error.condition is StreamCondition.UNSUPPORTED_STANZA_TYPE
    assert b"unsupported-stanza-type" in client.data_to_send()


def test_proceed_is_accepted_only_after_starttls() -> None:
    client = _awaiting_proceed()
    assert feed(client, PROCEED) == [ev.TlsRequested()]
    assert client.state is ClientState.TLS_HANDSHAKE
    assert (ClientState.AWAIT_FEATURES, ClientInput.TLS_PROCEED) not in TRANSITIONS


def test_drop_counters_are_keyed_by_the_reason_enum() -> None:
    client = _ready()
    feed(client, "<presence from='a@b/c'><priority>x</priority></presence>")
    feed(client, "<iq type='result' id='nobody-asked'/>")
    dropped = client.statistics().dropped
    assert dropped == {
        StanzaDropReason.MALFORMED_PRESENCE: 1,
        StanzaDropReason.UNEXPECTED_IQ_ANSWER: 1,
    }
    assert all(type(reason) is StanzaDropReason for reason in dropped)


def test_requests_remember_their_kind() -> None:
    client = _ready()
    roster = client.request_roster(1.0)
    ping = client.ping(1.0)
    assert {iq_id: p.kind for iq_id, p in client._timers.pending.items()} == {
        roster: IqKind.ROSTER_GET,
        ping: IqKind.PING,
    }
