"""Replay helpers: drive an XmppClient through recorded server lines without a socket.

The SCRAM-SHA-256 exchange is the example of RFC 7677 §3 (user "user", password "pencil", client
nonce "rOprNGfwEbeRWgbNEkqO"), so a recorded login verifies the server signature for real.
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

from gateway.xmpp import events as ev
from gateway.xmpp.client import ClientConfig, XmppClient
from gateway.xmpp.jid import Jid
from gateway.xmpp.parser import StanzaReceived, StreamOpened, XmlStreamParser

# RFC 7677 §3 example exchange.
CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

DOMAIN = "example.net"
ACCOUNT = Jid("user", DOMAIN)
FULL_JID = "user@example.net/gw"

SERVER_HEADER = (
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
    "xmlns:stream='http://etherx.jabber.org/streams' from='example.net' id='s1' "
    "version='1.0' xml:lang='en'>"
)
FEATURES_TLS = (
    "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    "</stream:features>"
)
FEATURES_SASL = (
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
    "<mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-256</mechanism>"
    "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
)
FEATURES_BOUND = (
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
    "<sm xmlns='urn:xmpp:sm:3'/><csi xmlns='urn:xmpp:csi:0'/>"
    "<sub xmlns='urn:xmpp:features:pre-approval'/></stream:features>"
)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def make_client(**overrides: object) -> XmppClient:
    """A client for user@example.net with password 'pencil' and deterministic ids."""
    settings: dict[str, object] = {"jid": ACCOUNT, "password": "pencil", "resource": "gw"}
    settings.update(overrides)
    resume = settings.pop("resume", None)
    config = ClientConfig(**settings)  # type: ignore[arg-type]
    return XmppClient(
        config,
        resume=resume,  # type: ignore[arg-type]
        id_prefix="c",
        client_nonce=CLIENT_NONCE,
    )


class ServerView:
    """Parses what the client sends, as the server would (one parser per stream restart)."""

    def __init__(self) -> None:
        self.parser = XmlStreamParser(inherit_stream_lang=False)

    def read(self, client: XmppClient) -> list[ET.Element | dict[str, str]]:
        """The client's pending output as elements (a stream header becomes its attributes)."""
        out: list[ET.Element | dict[str, str]] = []
        for event in self.parser.feed(client.data_to_send()):
            if isinstance(event, StreamOpened):
                out.append(event.attributes)
            elif isinstance(event, StanzaReceived):
                out.append(event.element)
        return out

    def restart(self, *, mid_stream: bool = False) -> None:
        """Expect a new client header, or (``mid_stream``) pretend it was already read."""
        self.parser.reset()
        if mid_stream:
            self.parser.feed(
                b"<stream:stream xmlns='jabber:client' "
                b"xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"
            )


Shape = tuple[str, tuple[tuple[str, str], ...], str, tuple["Shape", ...]]


def canonical(xml: str | ET.Element) -> Shape:
    """An element's structure (Clark names, attributes, text, children), not its bytes."""
    element = ET.fromstring(xml) if isinstance(xml, str) else xml
    return (
        element.tag,
        tuple(sorted(element.attrib.items())),
        (element.text or "").strip(),
        tuple(canonical(child) for child in element),
    )


def expect(
    client: XmppClient, server: ServerView, *expected: str
) -> list[ET.Element | dict[str, str]]:
    """Assert that the client sent exactly ``expected`` elements (namespaces written out)."""
    sent = [item for item in server.read(client) if isinstance(item, ET.Element)]
    assert [canonical(e) for e in sent] == [canonical(x) for x in expected]
    return list(sent)


def feed(client: XmppClient, text: str, now: float = 0.0) -> list[ev.Event]:
    return client.receive_data_untrusted(text.encode(), now)


PROCEED = "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
CHALLENGE = f"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{b64(SERVER_FIRST)}</challenge>"
SUCCESS = f"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{b64(SERVER_FINAL)}</success>"


def reach_sasl(client: XmppClient, *, start: float = 0.0) -> list[ev.Event]:
    """Start ``client`` and walk it through STARTTLS to the SASL features (its <auth/> is out)."""
    client.start(start)
    events = feed(client, SERVER_HEADER + FEATURES_TLS)
    events += feed(client, PROCEED)
    client.tls_established()
    events += feed(client, SERVER_HEADER + FEATURES_SASL)
    return events


def authenticate(client: XmppClient, *, start: float = 0.0) -> list[ev.Event]:
    """:func:`reach_sasl`, then the RFC 7677 SCRAM exchange to ``<success/>`` (stream restarts)."""
    events = reach_sasl(client, start=start)
    events += feed(client, CHALLENGE)
    events += feed(client, SUCCESS)
    return events


def login(client: XmppClient, server: ServerView, *, sm: bool = True) -> list[ev.Event]:
    """Walk a client from IDLE to READY through STARTTLS, SCRAM-SHA-256, bind and SM enable."""
    client.start(0.0)
    header = server.read(client)
    assert header
    assert isinstance(header[0], dict)
    assert header[0]["to"] == DOMAIN
    events = feed(client, SERVER_HEADER + FEATURES_TLS)
    expect(client, server, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    events += feed(client, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    assert events == [ev.TlsRequested()]
    client.tls_established()
    server.restart()
    assert isinstance(server.read(client)[0], dict)
    events += feed(client, SERVER_HEADER + FEATURES_SASL)
    expect(
        client,
        server,
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>"
        + b64(b"n,,n=user,r=" + CLIENT_NONCE.encode())
        + "</auth>",
    )
    events += feed(
        client,
        f"<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{b64(SERVER_FIRST)}</challenge>",
    )
    expect(
        client,
        server,
        f"<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{b64(CLIENT_FINAL)}</response>",
    )
    events += feed(
        client, f"<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>{b64(SERVER_FINAL)}</success>"
    )
    server.restart()
    assert isinstance(server.read(client)[0], dict)
    features = FEATURES_BOUND if sm else FEATURES_BOUND.replace("<sm xmlns='urn:xmpp:sm:3'/>", "")
    events += feed(client, SERVER_HEADER + features)
    expect(
        client,
        server,
        "<iq xmlns='jabber:client' type='set' id='c1'>"
        "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>gw</resource></bind></iq>",
    )
    events += feed(
        client,
        "<iq type='result' id='c1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
        f"<jid>{FULL_JID}</jid></bind></iq>",
    )
    if sm:
        expect(client, server, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
        events += feed(client, "<enabled xmlns='urn:xmpp:sm:3' id='sm-1' resume='true' max='300'/>")
    return events
