"""In-band registration of a new account (XEP-0077), for ``impp-gateway enroll --register``.

Theory of operation. :class:`InBandRegistration` is a sans-IO client of one stream that creates
an account and goes no further: stream header, ``<starttls/>`` (RFC 6120 §5; plaintext only when
the configuration allows it and the peer is on loopback), the restarted stream's features, which
must announce ``<register xmlns='http://jabber.org/features/iq-register'/>`` (XEP-0077 §4), an
``<iq type='get'/>`` for the registration fields (§3.1), an ``<iq type='set'/>`` with the
username and password when those are all the server asks for, and the closing of the stream. It
never authenticates: enrollment then logs in with the new password as for any account, so the
stored credential comes from a real SCRAM exchange.

States, one transition each: HEADER_SENT -> (STARTTLS_SENT -> TLS -> HEADER_SENT) ->
FIELDS_REQUESTED -> SUBMITTED -> DONE; any peer fault or refusal raises
:class:`RegistrationError` and leaves the machine FAILED. Network bytes go through the project's
hardened stream parser (``gateway.xmpp.parser``) with its size and depth caps.
"""

from __future__ import annotations

import enum
import ssl
import xml.etree.ElementTree as ET
from typing import Final, NoReturn

import trio

from gateway.config import UpstreamDomain
from gateway.jid import Jid
from gateway.xmpp.errors import STREAM_NS, PeerStreamError, XmppError
from gateway.xmpp.net.connection import UpstreamUnreachableError, connect_tcp, is_loopback
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver
from gateway.xmpp.net.tls import TrustStore, create_client_context
from gateway.xmpp.parser import StanzaReceived, StreamClosed, StreamOpened, XmlStreamParser
from gateway.xmpp.serializer import STREAM_CLOSE, serialize, stream_header

__all__ = [
    "DEFAULT_REGISTRATION_TIMEOUT",
    "InBandRegistration",
    "RegistrationError",
    "RegistrationState",
    "register_account",
]

CLIENT_NS: Final = "jabber:client"
TLS_NS: Final = "urn:ietf:params:xml:ns:xmpp-tls"  # RFC 6120 §5.4
REGISTER_NS: Final = "jabber:iq:register"  # XEP-0077 §3
REGISTER_FEATURE_NS: Final = "http://jabber.org/features/iq-register"  # XEP-0077 §4
DEFAULT_REGISTRATION_TIMEOUT: Final = 60.0
_RECEIVE_SIZE: Final = 16 * 1024
# A registration exchange is a few small elements; nothing legitimate comes near this.
_MAX_STANZA: Final = 64 * 1024
# Fields a registration form may list that we fill in (username, password) or may ignore.
_FILLED: Final = frozenset({"username", "password"})
_IGNORABLE: Final = frozenset({"instructions", "registered"})


class RegistrationError(Exception):
    """The account could not be created; the message says why and what to do."""

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


class RegistrationState(enum.Enum):
    """Where an :class:`InBandRegistration` stands."""

    IDLE = enum.auto()
    HEADER_SENT = enum.auto()
    STARTTLS_SENT = enum.auto()
    TLS_REQUESTED = enum.auto()
    FIELDS_REQUESTED = enum.auto()
    SUBMITTED = enum.auto()
    DONE = enum.auto()
    FAILED = enum.auto()


def _q(local: str, namespace: str = CLIENT_NS) -> str:
    return f"{{{namespace}}}{local}"


class InBandRegistration:
    """The client side of one XEP-0077 registration; see the module docstring."""

    def __init__(
        self, jid: Jid, password: str, *, allow_plaintext: bool = False, peer_is_loopback: bool
    ) -> None:
        if jid.local is None:
            raise RegistrationError(f"{jid} has no user part to register")
        self.jid = jid
        self.state = RegistrationState.IDLE
        self.tls_active = False
        self._password: str | None = password
        self._plaintext_allowed = allow_plaintext and peer_is_loopback
        self._parser = XmlStreamParser(
            max_stanza_size=_MAX_STANZA, content_namespaces=frozenset({CLIENT_NS})
        )
        self._output = bytearray()

    def __repr__(self) -> str:
        return f"<InBandRegistration {self.jid} {self.state.name}>"

    def start(self) -> None:
        """Open the stream."""
        self._expect(RegistrationState.IDLE)
        self._send_header()

    def data_to_send(self) -> bytes:
        """Bytes to write to the socket now."""
        data, self._output = bytes(self._output), bytearray()
        return data

    def tls_established(self) -> None:
        """The adapter finished the TLS handshake: restart the stream (RFC 6120 §5.4.3.3)."""
        self._expect(RegistrationState.TLS_REQUESTED)
        self.tls_active = True
        self._parser.reset()
        self._send_header()

    def receive_data_untrusted(self, data: bytes) -> None:
        """Feed bytes from the server; raises :class:`RegistrationError` on any fault."""
        if self.state in (RegistrationState.DONE, RegistrationState.FAILED):
            return
        if not data:
            self._fail("the server closed the connection during registration")
        try:
            stream_events = self._parser.feed(data)
        except XmppError as exc:
            self._fail(f"the server sent a malformed stream: {exc}")
        for event in stream_events:
            if isinstance(event, StreamOpened):
                continue
            if isinstance(event, StreamClosed):
                self._fail("the server closed the stream during registration")
            if isinstance(event, StanzaReceived):
                self._on_element(event.element)
            if self.state in (RegistrationState.DONE, RegistrationState.TLS_REQUESTED):
                return

    # -- internals ----------------------------------------------------------------------------

    def _expect(self, *states: RegistrationState) -> None:
        if self.state not in states:
            raise RegistrationError(f"registration step out of order ({self.state.name})")

    def _fail(self, message: str, *, conflict: bool = False) -> NoReturn:
        self.state = RegistrationState.FAILED
        self._password = None
        raise RegistrationError(message, conflict=conflict)

    def _send_header(self) -> None:
        self._output += stream_header(to=self.jid.domain, lang="en")
        self.state = RegistrationState.HEADER_SENT

    def _on_element(self, element: ET.Element) -> None:
        if element.tag == _q("error", STREAM_NS):
            self._fail(
                f"the server ended the stream: {PeerStreamError.from_element_untrusted(element)}"
            )
        if self.state is RegistrationState.HEADER_SENT and element.tag == _q("features", STREAM_NS):
            self._on_features(element)
        elif self.state is RegistrationState.STARTTLS_SENT and element.tag == _q("proceed", TLS_NS):
            self.state = RegistrationState.TLS_REQUESTED
        elif self.state is RegistrationState.FIELDS_REQUESTED and element.tag == _q("iq"):
            self._on_fields(element)
        elif self.state is RegistrationState.SUBMITTED and element.tag == _q("iq"):
            self._on_result(element)
        else:
            self._fail(f"unexpected <{element.tag}> during registration ({self.state.name})")

    def _on_features(self, features: ET.Element) -> None:
        if not self.tls_active:
            if features.find(_q("starttls", TLS_NS)) is not None:
                self._output += serialize(ET.Element(_q("starttls", TLS_NS)))
                self.state = RegistrationState.STARTTLS_SENT
                return
            if not self._plaintext_allowed:
                self._fail(
                    "the server offers no STARTTLS; a password is never sent without TLS "
                    "(allow_plaintext = true is honoured for a loopback server only)"
                )
        if features.find(_q("register", REGISTER_FEATURE_NS)) is None:
            self._fail(
                f"the server of {self.jid.domain} does not offer in-band registration "
                "(XEP-0077); create the account there (Prosody: allow_registration = true, or "
                "prosodyctl adduser) and enroll without --register"
            )
        iq = ET.Element(_q("iq"), {"type": "get", "id": "reg1"})
        ET.SubElement(iq, _q("query", REGISTER_NS))
        self._output += serialize(iq)
        self.state = RegistrationState.FIELDS_REQUESTED

    def _on_fields(self, iq: ET.Element) -> None:
        if iq.get("id") != "reg1" or iq.get("type") != "result":
            self._fail(f"the server refused to list its registration fields: {_iq_error(iq)}")
        query = iq.find(_q("query", REGISTER_NS))
        if query is None:
            self._fail("the server's registration answer holds no jabber:iq:register query")
        if query.find(_q("registered", REGISTER_NS)) is not None:
            self._fail(f"{self.jid} is already registered", conflict=True)
        fields = {child.tag.rpartition("}")[2] for child in query if "}" in child.tag}
        extra = fields - _FILLED - _IGNORABLE - {"x"}
        # XEP-0077 §6: a data form (x) may accompany the legacy fields, as an alternative.
        if not fields >= _FILLED or extra:
            asked = ", ".join(sorted(fields)) or "nothing"
            self._fail(
                f"the server asks for more than a username and password ({asked}); "
                "register the account with an XMPP client, then enroll without --register"
            )
        password = self._password
        assert self.jid.local is not None
        assert password is not None
        submit = ET.Element(_q("iq"), {"type": "set", "id": "reg2"})
        query = ET.SubElement(submit, _q("query", REGISTER_NS))
        ET.SubElement(query, _q("username", REGISTER_NS)).text = self.jid.local
        ET.SubElement(query, _q("password", REGISTER_NS)).text = password
        self._password = None
        self._output += serialize(submit)
        self.state = RegistrationState.SUBMITTED

    def _on_result(self, iq: ET.Element) -> None:
        if iq.get("id") != "reg2":
            self._fail("the server answered an iq we did not send")
        if iq.get("type") != "result":
            error = iq.find(_q("error"))
            conflict = (
                error is not None
                and error.find("{urn:ietf:params:xml:ns:xmpp-stanzas}conflict") is not None
            )
            if conflict:
                self._fail(f"{self.jid} already exists; enroll without --register", conflict=True)
            self._fail(f"the server refused the registration: {_iq_error(iq)}")
        self._output += STREAM_CLOSE
        self.state = RegistrationState.DONE


def _iq_error(iq: ET.Element) -> str:
    """The stanza error's condition and text (RFC 6120 §8.3), shortened, for a message."""
    error = iq.find(_q("error"))
    if error is None:
        return f"type {iq.get('type')!r}"
    conditions = [child.tag.rpartition("}")[2] for child in error if "stanzas" in child.tag]
    text = error.findtext("{urn:ietf:params:xml:ns:xmpp-stanzas}text") or ""
    condition = next((c for c in conditions if c != "text"), "undefined-condition")
    return condition + (f" ({text[:200]})" if text else "")


async def register_account(
    upstream: UpstreamDomain,
    jid: Jid,
    password: str,
    *,
    time_limit: float = DEFAULT_REGISTRATION_TIMEOUT,
) -> None:
    """Create ``jid`` with ``password`` on its server; raises :class:`RegistrationError`."""
    static: dict[str, list[ServerAddress]] = {}
    if upstream.server_host is not None and upstream.server_port is not None:
        static[upstream.domain] = [ServerAddress(upstream.server_host, upstream.server_port)]
    trust = TrustStore(
        ca_file=upstream.trust.ca_file, use_system_store=upstream.trust.ca_file is None
    )
    with trio.move_on_after(time_limit) as scope:
        try:
            stream, address = await connect_tcp(jid.domain, ServerResolver(static_hosts=static))
        except UpstreamUnreachableError as exc:
            raise RegistrationError(f"cannot reach the server of {jid.domain}: {exc}") from exc
        await _run(stream, upstream, jid, password, trust, is_loopback(address.host))
    if scope.cancelled_caught:
        raise RegistrationError(
            f"the server of {jid.domain} did not finish the registration in {time_limit:.0f} s"
        )


async def _run(
    stream: trio.abc.Stream,
    upstream: UpstreamDomain,
    jid: Jid,
    password: str,
    trust: TrustStore,
    loopback: bool,
) -> None:
    registration = InBandRegistration(
        jid, password, allow_plaintext=upstream.allow_plaintext, peer_is_loopback=loopback
    )
    try:
        registration.start()
        while registration.state is not RegistrationState.DONE:
            await stream.send_all(registration.data_to_send())
            data = await stream.receive_some(_RECEIVE_SIZE)
            registration.receive_data_untrusted(bytes(data))
            if registration.state is RegistrationState.TLS_REQUESTED:
                tls = trio.SSLStream(
                    stream, create_client_context(trust), server_hostname=jid.domain
                )
                try:
                    await tls.do_handshake()
                except (trio.BrokenResourceError, ssl.SSLError, OSError) as exc:
                    reason = exc.__cause__ if exc.__cause__ is not None else exc
                    raise RegistrationError(
                        f"TLS with the server of {jid.domain} failed: {reason}; its certificate "
                        f'must chain to trust = "{upstream.trust}"'
                    ) from exc
                stream = tls
                registration.tls_established()
        await stream.send_all(registration.data_to_send())
    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
        raise RegistrationError(f"the connection to {jid.domain} broke: {exc}") from exc
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(1.0):
            await trio.aclose_forcefully(stream)
