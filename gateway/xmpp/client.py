"""The sans-IO XMPP client: stream negotiation, stanzas, acks and timers (RFC 6120, RFC 6121).

Theory of operation.  :class:`XmppClient` is one client-to-server stream, h2-style: feed it what the
socket delivered (:meth:`~XmppClient.receive_data_untrusted`), get a list of
:mod:`gateway.xmpp.events` back, and write :meth:`~XmppClient.data_to_send` to the socket.  It never
touches a socket, a clock or TLS itself: time enters as ``now``, timers are a
:meth:`~XmppClient.next_deadline` query answered by :meth:`~XmppClient.handle_timer`, and STARTTLS
is a :class:`~gateway.xmpp.events.TlsRequested` event after which the adapter wraps the socket and
calls :meth:`~XmppClient.tls_established`.

Negotiation (RFC 6120 §4.3, §5, §6, §7) walks the states of :class:`ClientState` through the one
:data:`TRANSITIONS` table; an input the table does not list is the peer's fault (a
``<stream:error/>``) or ours (:class:`LocalProtocolError`), and the machine ends in ``FAILED``::

    IDLE -> AWAIT_STREAM_HEADER -> AWAIT_FEATURES -> AWAIT_TLS_PROCEED -> TLS_HANDSHAKE
         -> AWAIT_STREAM_HEADER -> AWAIT_FEATURES -> AUTHENTICATING
         -> AWAIT_STREAM_HEADER -> AWAIT_FEATURES -> AWAIT_BIND -> AWAIT_STREAM_MANAGEMENT -> READY
                                                 \\-> AWAIT_STREAM_MANAGEMENT (resume) -> READY

Security policy: the stream must be TLS-protected (RFC 6120 §5.3.1) unless ``allow_plaintext`` is
set *and* the adapter says the peer is on loopback; SASL picks SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN,
PLAIN only over TLS (RFC 6120 §13.8), and a SCRAM server must prove knowledge of the password
(RFC 5802 §3 ServerSignature) before ``<success/>`` counts.

Once READY: messages, presence and subscriptions (RFC 6121 §3-§5), roster get and pushes
(RFC 6121 §2, pushes accepted only from our own account, §2.1.6), receipts (XEP-0184), pings both
ways (XEP-0199), client state indication (XEP-0352), answers to disco#info (XEP-0030) and
``service-unavailable`` for any other request (RFC 6120 §8.4).  Stream management (XEP-0198,
:mod:`gateway.xmpp.stream_management`) is enabled with resumption when the server offers it.
Stanzas submitted before READY wait in a bounded outbox and go out once the session is up.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import enum
import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from typing import Final

from gateway.xmpp import events as ev
from gateway.xmpp.errors import (
    STREAM_NS,
    AuthenticationFailed,
    LocalProtocolError,
    PeerStreamError,
    RemoteProtocolError,
    StanzaError,
    StanzaErrorCondition,
    StanzaErrorType,
    StreamCondition,
    StreamError,
    XmppError,
)
from gateway.xmpp.jid import Jid, JidError
from gateway.xmpp.parser import (
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_STANZA_SIZE,
    StanzaReceived,
    StreamClosed,
    StreamOpened,
    XmlStreamParser,
)
from gateway.xmpp.sasl import ScramClient, ScramState, plain_initial_response, select_mechanism
from gateway.xmpp.serializer import STREAM_CLOSE, serialize, stream_header
from gateway.xmpp.stanzas import (
    CLIENT_NS,
    CSI_NS,
    DISCO_INFO_NS,
    PING_NS,
    RECEIPTS_NS,
    ROSTER_NS,
    MessageType,
    PresenceShow,
    RosterItem,
    RosterSubscription,
    StanzaParseError,
    SubscriptionKind,
    build_message,
    build_presence,
    build_roster_query,
    build_subscription,
    parse_message_untrusted,
    parse_presence_untrusted,
    parse_roster_query_untrusted,
)
from gateway.xmpp.stream_management import (
    DEFAULT_MAX_UNACKNOWLEDGED,
    SM_NS,
    ResumptionToken,
    StreamManagement,
)

__all__ = [
    "DEFAULT_IQ_TIMEOUT",
    "DEFAULT_KEEPALIVE_INTERVAL",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_NEGOTIATION_TIMEOUT",
    "TRANSITIONS",
    "ClientConfig",
    "ClientInput",
    "ClientState",
    "ClientStatistics",
    "ConnectionLostError",
    "EncryptionRequiredError",
    "XmppClient",
]

TLS_NS: Final = "urn:ietf:params:xml:ns:xmpp-tls"  # RFC 6120 §5.4
SASL_NS: Final = "urn:ietf:params:xml:ns:xmpp-sasl"  # RFC 6120 §6.4
BIND_NS: Final = "urn:ietf:params:xml:ns:xmpp-bind"  # RFC 6120 §7
PREAPPROVAL_NS: Final = "urn:xmpp:features:pre-approval"  # RFC 6121 §3.4

# A request nobody answers within this many seconds is reported as IqTimedOut.
DEFAULT_IQ_TIMEOUT: Final = 60.0
# Silence after which we probe the server: under the ~5 minute idle timeout of common NATs.
DEFAULT_KEEPALIVE_INTERVAL: Final = 240.0
# How long the probe may stay unanswered before the connection is declared dead.
DEFAULT_KEEPALIVE_TIMEOUT: Final = 60.0
# From our stream header to a usable session; a GPRS-class link needs a few round trips of ~1 s.
DEFAULT_NEGOTIATION_TIMEOUT: Final = 60.0


class EncryptionRequiredError(RemoteProtocolError):
    """The server offers no STARTTLS and plaintext is not allowed here (RFC 6120 §5.3.1)."""


class ConnectionLostError(RemoteProtocolError):
    """The connection ended without ``</stream:stream>`` (or a keepalive went unanswered)."""


class ClientState(enum.Enum):
    """Where the stream is in its life (RFC 6120 §4-§7)."""

    IDLE = enum.auto()
    AWAIT_STREAM_HEADER = enum.auto()
    AWAIT_FEATURES = enum.auto()
    AWAIT_TLS_PROCEED = enum.auto()
    TLS_HANDSHAKE = enum.auto()
    AUTHENTICATING = enum.auto()
    AWAIT_BIND = enum.auto()
    AWAIT_STREAM_MANAGEMENT = enum.auto()
    READY = enum.auto()
    CLOSING = enum.auto()
    CLOSED = enum.auto()
    FAILED = enum.auto()


class ClientInput(enum.Enum):
    """What can happen to the machine: peer input, or a step we decided to take."""

    START = enum.auto()  # we sent our stream header
    STREAM_OPENED = enum.auto()  # peer header
    STARTTLS_SENT = enum.auto()
    TLS_PROCEED = enum.auto()  # peer <proceed/>
    TLS_ESTABLISHED = enum.auto()  # adapter finished the handshake
    AUTH_SENT = enum.auto()
    SASL_CHALLENGE = enum.auto()  # peer <challenge/>
    SASL_SUCCESS = enum.auto()  # peer <success/>, verified
    RESUME_SENT = enum.auto()
    BIND_SENT = enum.auto()
    BOUND = enum.auto()  # peer bind result, no stream management to enable
    ENABLE_SENT = enum.auto()  # peer bind result, <enable/> sent
    SM_ENABLED = enum.auto()  # peer <enabled/>
    SM_ENABLE_FAILED = enum.auto()  # peer <failed/> to <enable/>
    SM_RESUMED = enum.auto()  # peer <resumed/>
    SM_RESUME_FAILED = enum.auto()  # peer <failed/> to <resume/>, bind sent
    STANZA = enum.auto()  # a stanza or an ack nonza in an established session
    CLOSE = enum.auto()  # we sent </stream:stream>
    STREAM_CLOSED = enum.auto()  # peer </stream:stream> or end of the connection
    FAILURE = enum.auto()  # a protocol error on either side


_S = ClientState
_I = ClientInput
_LIVE: Final = frozenset(_S) - {_S.IDLE, _S.CLOSED, _S.FAILED}

# (state, input) -> next state.  Anything not listed is a protocol error.
TRANSITIONS: Final[dict[tuple[ClientState, ClientInput], ClientState]] = {
    (_S.IDLE, _I.START): _S.AWAIT_STREAM_HEADER,
    (_S.AWAIT_STREAM_HEADER, _I.STREAM_OPENED): _S.AWAIT_FEATURES,
    (_S.AWAIT_FEATURES, _I.STARTTLS_SENT): _S.AWAIT_TLS_PROCEED,
    (_S.AWAIT_TLS_PROCEED, _I.TLS_PROCEED): _S.TLS_HANDSHAKE,
    (_S.TLS_HANDSHAKE, _I.TLS_ESTABLISHED): _S.AWAIT_STREAM_HEADER,
    (_S.AWAIT_FEATURES, _I.AUTH_SENT): _S.AUTHENTICATING,
    (_S.AUTHENTICATING, _I.SASL_CHALLENGE): _S.AUTHENTICATING,
    (_S.AUTHENTICATING, _I.SASL_SUCCESS): _S.AWAIT_STREAM_HEADER,
    (_S.AWAIT_FEATURES, _I.RESUME_SENT): _S.AWAIT_STREAM_MANAGEMENT,
    (_S.AWAIT_FEATURES, _I.BIND_SENT): _S.AWAIT_BIND,
    (_S.AWAIT_BIND, _I.BOUND): _S.READY,
    (_S.AWAIT_BIND, _I.ENABLE_SENT): _S.AWAIT_STREAM_MANAGEMENT,
    (_S.AWAIT_STREAM_MANAGEMENT, _I.SM_ENABLED): _S.READY,
    (_S.AWAIT_STREAM_MANAGEMENT, _I.SM_ENABLE_FAILED): _S.READY,
    (_S.AWAIT_STREAM_MANAGEMENT, _I.SM_RESUMED): _S.READY,
    (_S.AWAIT_STREAM_MANAGEMENT, _I.SM_RESUME_FAILED): _S.AWAIT_BIND,
    (_S.READY, _I.STANZA): _S.READY,
    (_S.CLOSING, _I.STANZA): _S.CLOSING,
    **{(state, _I.CLOSE): _S.CLOSING for state in _LIVE - {_S.CLOSING}},
    **{(state, _I.STREAM_CLOSED): _S.CLOSED for state in _LIVE},
    **{(state, _I.FAILURE): _S.FAILED for state in _LIVE | {_S.IDLE}},
}

# Inputs that are our own decisions: a missing transition for them is our bug.
_LOCAL_INPUTS: Final = frozenset(
    {
        _I.START,
        _I.STARTTLS_SENT,
        _I.TLS_ESTABLISHED,
        _I.AUTH_SENT,
        _I.RESUME_SENT,
        _I.BIND_SENT,
        _I.CLOSE,
    }
)
_SUBSCRIPTION_TYPES: Final = frozenset(str(kind) for kind in SubscriptionKind)
_STANZA_TAGS: Final = frozenset(f"{{{CLIENT_NS}}}{name}" for name in ("message", "presence", "iq"))


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """One account's upstream settings.  ``password`` never appears in reprs or logs."""

    jid: Jid
    password: str = dataclasses.field(repr=False)
    resource: str | None = None  # None: the server picks one (RFC 6120 §7.6.2.1)
    allow_plaintext: bool = False  # only honoured on loopback
    lang: str | None = "en"
    stream_management: bool = True
    resend_after_failed_resumption: bool = True
    iq_timeout: float = DEFAULT_IQ_TIMEOUT
    keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    negotiation_timeout: float = DEFAULT_NEGOTIATION_TIMEOUT
    max_stanza_size: int = DEFAULT_MAX_STANZA_SIZE
    max_depth: int = DEFAULT_MAX_DEPTH
    max_unacknowledged: int = DEFAULT_MAX_UNACKNOWLEDGED
    # XEP-0030 §3.1 identity we announce: the gateway is a client acting for a device.
    disco_identity: tuple[str, str, str] = ("client", "phone", "trio IMPP gateway")


@dataclasses.dataclass(frozen=True)
class ClientStatistics:
    """Counters of one stream, for metrics."""

    stanzas_sent: int
    stanzas_received: int
    bytes_received: int
    dropped: dict[str, int]
    unacknowledged: int


@dataclasses.dataclass
class _PendingIq:
    kind: str  # 'roster-get', 'roster-set', 'ping', 'generic'
    to: Jid | None
    sent_at: float
    deadline: float


@dataclasses.dataclass
class _Features:
    starttls: bool = False
    mechanisms: tuple[str, ...] = ()
    bind: bool = False
    stream_management: bool = False
    csi: bool = False
    preapproval: bool = False


def _q(local: str, namespace: str = CLIENT_NS) -> str:
    return f"{{{namespace}}}{local}"


class XmppClient:
    """One client-to-server XMPP stream, sans-IO; see the module docstring.

    ``resume`` is the :class:`ResumptionToken` of a previous connection to resume (XEP-0198 §5).
    ``id_prefix`` and ``client_nonce`` make ids and the SCRAM nonce deterministic for tests.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        resume: ResumptionToken | None = None,
        id_prefix: str | None = None,
        client_nonce: str | None = None,
    ) -> None:
        self.config = config
        self.state = ClientState.IDLE
        self.jid: Jid = config.jid
        self.tls_active = False
        self.authenticated = False
        self.features = _Features()
        self._resume = resume
        self._client_nonce = client_nonce
        self._id_prefix = id_prefix if id_prefix is not None else secrets.token_hex(4) + "-"
        self._id_counter = 0
        self._parser = XmlStreamParser(
            max_stanza_size=config.max_stanza_size,
            max_depth=config.max_depth,
            content_namespaces=frozenset({CLIENT_NS}),
        )
        self._output = bytearray()
        self._outbox: list[ET.Element] = []
        self._sm = StreamManagement(max_unacknowledged=config.max_unacknowledged)
        self._scram: ScramClient | None = None
        self._mechanism: str | None = None
        self._server_verified = False
        self._bind_id: str | None = None
        self._pending: dict[str, _PendingIq] = {}
        self._peer_is_loopback = False
        self._last_received = 0.0
        self._keepalive_deadline: float | None = None
        self._negotiation_deadline: float | None = None
        self._stanzas_sent = 0
        self._stanzas_received = 0
        self._bytes_received = 0
        self._dropped: dict[str, int] = {}

    # -- public API: lifecycle ------------------------------------------------------------------

    def start(self, now: float, *, peer_is_loopback: bool = False) -> None:
        """Open the stream (RFC 6120 §4.2); ``peer_is_loopback`` gates ``allow_plaintext``."""
        self._peer_is_loopback = peer_is_loopback
        self._last_received = now
        self._negotiation_deadline = now + self.config.negotiation_timeout
        self._transition(_I.START)
        self._send_header()

    def tls_established(self) -> None:
        """The adapter finished the TLS handshake: restart the stream (RFC 6120 §5.4.3.3)."""
        self._transition(_I.TLS_ESTABLISHED)
        self.tls_active = True
        self._parser.reset()
        self._send_header()

    def close(self) -> None:
        """Close our stream (RFC 6120 §4.4); wait for the peer's close (a StreamEnded event).

        A clean close ends a stream-managed session: the server will not keep it for resumption.
        """
        if self.state in (_S.CLOSING, _S.CLOSED, _S.FAILED, _S.IDLE):
            return
        self._transition(_I.CLOSE)
        self._output += STREAM_CLOSE

    def data_to_send(self) -> bytes:
        """Bytes to write to the socket now (possibly empty)."""
        if (
            self.state is _S.READY
            and self._sm.enabled
            and self._sm.unacknowledged
            and not self._sm.ack_requested
        ):
            # XEP-0198 §4: ask for an ack once per batch of stanzas.
            self._output += serialize(ET.Element(_q("r", SM_NS)))
            self._sm.ack_requested = True
        data = bytes(self._output)
        self._output.clear()
        return data

    def resumption_token(self, now: float) -> ResumptionToken | None:
        """What a new connection needs to resume this session (XEP-0198 §5), if resumable.

        Stanzas still in the outbox (never sent) travel with it and go out after resumption.
        """
        if self._resume is not None:
            return self._resume  # the connection broke before the resumption completed
        return self._sm.resumption_token(self.jid, now)

    def unsent_stanzas(self) -> tuple[ET.Element, ...]:
        """Stanzas still waiting for the session (never written); a new connection sends them."""
        return tuple(self._outbox)

    def pending_stanzas(self) -> tuple[ET.Element, ...]:
        """Stanzas not known to have reached the server: unacknowledged plus never sent."""
        if self._resume is not None:
            return (*self._resume.unacknowledged, *self._outbox)
        return (*self._sm.unacknowledged, *self._outbox)

    def statistics(self) -> ClientStatistics:
        """A snapshot of the counters."""
        return ClientStatistics(
            stanzas_sent=self._stanzas_sent,
            stanzas_received=self._stanzas_received,
            bytes_received=self._bytes_received,
            dropped=dict(self._dropped),
            unacknowledged=len(self._sm.unacknowledged),
        )

    # -- public API: stanzas --------------------------------------------------------------------

    def next_id(self) -> str:
        """A fresh stanza id, unique within this client."""
        self._id_counter += 1
        return f"{self._id_prefix}{self._id_counter}"

    def send_stanza(self, stanza: ET.Element) -> None:
        """Send a stanza now if the session is up, else when it is (bounded outbox)."""
        if stanza.tag not in _STANZA_TAGS:
            raise LocalProtocolError(f"{stanza.tag} is not a jabber:client stanza")
        if self.state in (_S.CLOSING, _S.CLOSED, _S.FAILED):
            raise LocalProtocolError(f"cannot send in state {self.state.name}")
        if self.state is not _S.READY:
            if len(self._outbox) >= self.config.max_unacknowledged:
                raise LocalProtocolError("the outbox is full; wait for the session")
            self._outbox.append(stanza)
            return
        self._write_stanza(stanza)

    def send_message(
        self,
        to: Jid,
        body: str | None = None,
        *,
        type: MessageType = MessageType.CHAT,  # the RFC's attribute name
        id: str | None = None,  # the RFC's attribute name
        bodies: Sequence[tuple[str | None, str]] = (),
        subject: str | None = None,
        thread: str | None = None,
        lang: str | None = None,
        request_receipt: bool = False,
        extensions: Iterable[ET.Element] = (),
    ) -> str:
        """Send a message (RFC 6121 §5); returns its id (the key of receipts and errors)."""
        message_id = id if id is not None else self.next_id()
        self.send_stanza(
            build_message(
                to,
                id=message_id,
                body=body,
                type=type,
                bodies=bodies,
                subject=subject,
                thread=thread,
                lang=lang,
                request_receipt=request_receipt,
                extensions=extensions,
            )
        )
        return message_id

    def send_receipt(self, to: Jid, message_id: str) -> None:
        """Confirm delivery of ``message_id`` to its sender (XEP-0184 §5.2)."""
        message = ET.Element(_q("message"), {"to": str(to), "id": self.next_id()})
        ET.SubElement(message, _q("received", RECEIPTS_NS), {"id": message_id})
        self.send_stanza(message)

    def send_presence(
        self,
        *,
        to: Jid | None = None,
        available: bool = True,
        show: PresenceShow | None = None,
        status: str | None = None,
        statuses: Sequence[tuple[str | None, str]] = (),
        priority: int | None = None,
        lang: str | None = None,
        extensions: Iterable[ET.Element] = (),
    ) -> None:
        """Broadcast (or, with ``to``, direct) our availability (RFC 6121 §4.2, §4.6)."""
        self.send_stanza(
            build_presence(
                to=to,
                available=available,
                show=show,
                status=status,
                statuses=statuses,
                priority=priority,
                lang=lang,
                extensions=extensions,
            )
        )

    def send_subscription(self, to: Jid, kind: SubscriptionKind) -> None:
        """Subscribe, approve (also pre-approve, RFC 6121 §3.4), unsubscribe or cancel (§3)."""
        self.send_stanza(build_subscription(to, kind))

    @property
    def supports_preapproval(self) -> bool:
        """Whether the server announced subscription pre-approval (RFC 6121 §3.4.1)."""
        return self.features.preapproval

    def request_roster(self, now: float) -> str:
        """Ask for the roster (RFC 6121 §2.1.3); the answer is a RosterReceived event."""
        return self._send_iq("get", build_roster_query(), now, kind="roster-get")

    def set_roster_item(self, item: RosterItem, now: float) -> str:
        """Add or update a contact (RFC 6121 §2.3); the server answers with a push."""
        return self._send_iq("set", build_roster_query(item), now, kind="roster-set")

    def remove_roster_item(self, jid: Jid, now: float) -> str:
        """Remove a contact (RFC 6121 §2.5)."""
        item = RosterItem(jid=jid, subscription=RosterSubscription.REMOVE)
        return self._send_iq("set", build_roster_query(item), now, kind="roster-set")

    def ping(self, now: float, *, to: Jid | None = None) -> str:
        """Send an XEP-0199 ping (to the server by default); answered by PingAnswered."""
        return self._send_iq("get", ET.Element(_q("ping", PING_NS)), now, to=to, kind="ping")

    def send_iq(
        self, type: str, payload: ET.Element, now: float, *, to: Jid | None = None
    ) -> str:  # the RFC's attribute name
        """Send a get/set request; the answer is IqResultReceived or IqFailed (or IqTimedOut)."""
        if type not in ("get", "set"):
            raise LocalProtocolError("a request is an iq of type get or set (RFC 6120 §8.2.3)")
        return self._send_iq(type, payload, now, to=to, kind="generic")

    def set_client_state(self, active: bool) -> bool:
        """Tell the server whether we are active (XEP-0352); False if it does not support CSI."""
        if self.state is not _S.READY:
            raise LocalProtocolError("client state indication needs an established session")
        if not self.features.csi:
            return False
        self._output += serialize(ET.Element(_q("active" if active else "inactive", CSI_NS)))
        return True

    # -- public API: input and timers -----------------------------------------------------------

    def receive_data_untrusted(self, data: bytes, now: float) -> list[ev.Event]:
        """Feed bytes from the peer (``b""`` means the connection ended); return the events.

        Total: a protocol violation by the peer ends in a StreamEnded event (and, where RFC 6120
        says so, a ``<stream:error/>`` in data_to_send), never an exception.
        """
        if self.state in (_S.CLOSED, _S.FAILED):
            raise LocalProtocolError(f"the stream is over ({self.state.name})")
        if self.state is _S.IDLE:
            raise LocalProtocolError("start() the stream first")
        events: list[ev.Event] = []
        if not data:
            clean = self.state is _S.CLOSING
            self._transition(_I.STREAM_CLOSED)
            events.append(
                ev.StreamEnded(None if clean else ConnectionLostError("connection closed"))
            )
            return events
        self._bytes_received += len(data)
        self._last_received = now
        self._keepalive_deadline = None
        try:
            for stream_event in self._parser.feed(data):
                if isinstance(stream_event, StreamOpened):
                    self._on_stream_opened(stream_event)
                elif isinstance(stream_event, StanzaReceived):
                    self._on_element(stream_event.element, now, events)
                elif isinstance(stream_event, StreamClosed):
                    self._on_stream_closed(events)
                if self.state in (_S.TLS_HANDSHAKE, _S.CLOSED, _S.FAILED):
                    break  # nothing may follow <proceed/> or the end of the stream
        except StreamError as error:
            self._fail(error, events, send_stream_error=True)
        except (
            PeerStreamError,
            AuthenticationFailed,
            EncryptionRequiredError,
            StanzaError,
        ) as error:
            self._fail(error, events, send_stream_error=False)
        except RemoteProtocolError as error:
            self._fail(
                StreamError(StreamCondition.UNDEFINED_CONDITION, str(error)),
                events,
                send_stream_error=True,
            )
        return events

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or None."""
        if self.state in (_S.IDLE, _S.CLOSED, _S.FAILED):
            return None
        deadlines = [pending.deadline for pending in self._pending.values()]
        if self._negotiation_deadline is not None:
            deadlines.append(self._negotiation_deadline)
        if self._keepalive_deadline is not None:
            deadlines.append(self._keepalive_deadline)
        elif self.state is _S.READY:
            deadlines.append(self._last_received + self.config.keepalive_interval)
        return min(deadlines) if deadlines else None

    def handle_timer(self, now: float) -> list[ev.Event]:
        """Run what is due at ``now``: request timeouts, keepalive probes, dead-peer detection."""
        events: list[ev.Event] = []
        if self.state in (_S.IDLE, _S.CLOSED, _S.FAILED):
            return events
        if self._negotiation_deadline is not None and now >= self._negotiation_deadline:
            self._fail(ConnectionLostError("stream negotiation timed out"), events, False)
            return events
        if self._keepalive_deadline is not None and now >= self._keepalive_deadline:
            self._fail(ConnectionLostError("the server stopped answering"), events, False)
            return events
        for iq_id, pending in list(self._pending.items()):
            if now >= pending.deadline:
                del self._pending[iq_id]
                events.append(ev.IqTimedOut(iq_id))
        if (
            self.state is _S.READY
            and self._keepalive_deadline is None
            and now >= self._last_received + self.config.keepalive_interval
        ):
            # XEP-0198 §4 <r/> doubles as a keepalive; without SM an XEP-0199 ping to the server.
            if self._sm.enabled:
                self._output += serialize(ET.Element(_q("r", SM_NS)))
                self._sm.ack_requested = True
            else:
                self._send_iq("get", ET.Element(_q("ping", PING_NS)), now, kind="keepalive")
            self._keepalive_deadline = now + self.config.keepalive_timeout
        return events

    # -- the state machine ----------------------------------------------------------------------

    def _transition(self, event: ClientInput) -> None:
        next_state = TRANSITIONS.get((self.state, event))
        if next_state is None:
            if event in _LOCAL_INPUTS:
                raise LocalProtocolError(f"{event.name} is not allowed in {self.state.name}")
            raise StreamError(
                StreamCondition.POLICY_VIOLATION,
                f"unexpected {event.name.lower()} in state {self.state.name.lower()}",
            )
        self.state = next_state

    def _fail(self, error: XmppError, events: list[ev.Event], send_stream_error: bool) -> None:
        if self.state in (_S.CLOSED, _S.FAILED):
            return
        # Nothing can be written before our header or in the middle of a TLS handshake.
        can_write = self.state not in (_S.IDLE, _S.TLS_HANDSHAKE)
        self.state = TRANSITIONS[(self.state, _I.FAILURE)]
        if can_write:
            if send_stream_error and isinstance(error, StreamError):
                self._output += serialize(error.to_element())  # RFC 6120 §4.9.1.1
            self._output += STREAM_CLOSE
        self._pending.clear()
        events.append(ev.StreamEnded(error))

    def _send_header(self) -> None:
        self._output += stream_header(
            to=self.config.jid.domain,
            from_=str(self.config.jid.bare) if self.tls_active else None,
            lang=self.config.lang,
        )

    def _on_stream_opened(self, opened: StreamOpened) -> None:
        self._transition(_I.STREAM_OPENED)
        if opened.version is None or not opened.version.startswith("1."):
            raise StreamError(StreamCondition.UNSUPPORTED_VERSION, "XMPP 1.0 is required")

    def _on_stream_closed(self, events: list[ev.Event]) -> None:
        clean = self.state is _S.CLOSING
        self._transition(_I.STREAM_CLOSED)
        if clean:
            events.append(ev.StreamEnded(None))
        else:
            self._output += STREAM_CLOSE  # RFC 6120 §4.4: answer the close
            events.append(ev.StreamEnded(ConnectionLostError("the server closed the stream")))

    def _on_element(self, element: ET.Element, now: float, events: list[ev.Event]) -> None:
        tag = element.tag
        if tag == _q("error", STREAM_NS):
            raise PeerStreamError.from_element_untrusted(element)
        state = self.state
        if state is _S.AWAIT_FEATURES and tag == _q("features", STREAM_NS):
            self._on_features(element, events)
        elif state is _S.AWAIT_TLS_PROCEED and tag == _q("proceed", TLS_NS):
            self._transition(_I.TLS_PROCEED)
            events.append(ev.TlsRequested())
        elif state is _S.AWAIT_TLS_PROCEED and tag == _q("failure", TLS_NS):
            # RFC 6120 §5.4.2.2: the server closes the stream after <failure/>.
            raise EncryptionRequiredError("the server failed to start TLS")
        elif state is _S.AUTHENTICATING:
            self._on_sasl(element, events)
        elif state is _S.AWAIT_BIND and tag == _q("iq"):
            self._on_bind_result(element, events)
        elif state is _S.AWAIT_STREAM_MANAGEMENT and tag.startswith(f"{{{SM_NS}}}"):
            self._on_stream_management_answer(element, now, events)
        elif state in (_S.READY, _S.CLOSING) and tag.startswith(f"{{{SM_NS}}}"):
            self._on_ack_nonza(element, events)
        elif state in (_S.READY, _S.CLOSING) and tag in _STANZA_TAGS:
            self._transition(_I.STANZA)
            self._stanzas_received += 1
            sequence = self._sm.record_handled()
            self._on_stanza(element, sequence, now, events)
        else:
            raise StreamError(
                StreamCondition.UNSUPPORTED_STANZA_TYPE,
                f"unexpected element in state {state.name.lower()}",
            )

    # -- negotiation ----------------------------------------------------------------------------

    def _on_features(self, features_element: ET.Element, events: list[ev.Event]) -> None:
        features = _Features()
        for child in features_element:
            if child.tag == _q("starttls", TLS_NS):
                features.starttls = True
            elif child.tag == _q("mechanisms", SASL_NS):
                features.mechanisms = tuple(
                    (mechanism.text or "").strip()
                    for mechanism in child.findall(_q("mechanism", SASL_NS))
                )
            elif child.tag == _q("bind", BIND_NS):
                features.bind = True
            elif child.tag == _q("sm", SM_NS):
                features.stream_management = True
            elif child.tag == _q("csi", CSI_NS):
                features.csi = True
            elif child.tag == _q("sub", PREAPPROVAL_NS):
                features.preapproval = True
        self.features = features
        if not self.tls_active and not self.authenticated:
            if features.starttls:
                self._transition(_I.STARTTLS_SENT)
                self._output += serialize(ET.Element(_q("starttls", TLS_NS)))
                return
            if not (self.config.allow_plaintext and self._peer_is_loopback):
                raise EncryptionRequiredError(
                    "the server does not offer STARTTLS (RFC 6120 §5.3.1)"
                )
        if not self.authenticated:
            self._start_sasl(features)
            return
        if self._resume is not None and not features.stream_management:
            # XEP-0198 §5: the new stream cannot resume; as with <failed/>, hand back what the
            # old one never had acknowledged, so that the fresh session sends it again.
            unacknowledged, self._resume = self._resume.unacknowledged, None
            events.append(ev.ResumptionFailed(unacknowledged))
            if self.config.resend_after_failed_resumption:
                self._outbox[:0] = unacknowledged
        if self._resume is not None and features.stream_management:
            self._sm.restore(self._resume)
            self._transition(_I.RESUME_SENT)
            resume = ET.Element(
                _q("resume", SM_NS),
                {"previd": self._resume.session_id, "h": str(self._resume.inbound_handled)},
            )
            self._output += serialize(resume)
            return
        if not features.bind:
            raise StreamError(StreamCondition.UNSUPPORTED_FEATURE, "the server offers no bind")
        self._send_bind()

    def _start_sasl(self, features: _Features) -> None:
        mechanism = select_mechanism(features.mechanisms, tls_active=self.tls_active)
        username = self.config.jid.local
        if username is None:
            raise LocalProtocolError("the account JID has no localpart")
        if mechanism == "PLAIN":
            initial = plain_initial_response(username, self.config.password)
        else:
            self._scram = ScramClient(
                mechanism, username, self.config.password, client_nonce=self._client_nonce
            )
            initial = self._scram.client_first()
        self._mechanism = mechanism
        self._transition(_I.AUTH_SENT)
        auth = ET.Element(_q("auth", SASL_NS), {"mechanism": mechanism})
        auth.text = base64.b64encode(initial).decode("ascii")
        self._output += serialize(auth)

    def _on_sasl(self, element: ET.Element, events: list[ev.Event]) -> None:
        tag = element.tag
        if tag == _q("failure", SASL_NS):
            raise AuthenticationFailed.from_failure_untrusted(element)
        if tag == _q("challenge", SASL_NS):
            self._transition(_I.SASL_CHALLENGE)
            payload = _sasl_payload_untrusted(element)
            response = ET.Element(_q("response", SASL_NS))
            if self._scram is None:
                raise AuthenticationFailed("unexpected challenge to PLAIN")
            if self._server_verified:
                raise AuthenticationFailed("a challenge after the server's final message")
            if self._scram.state is ScramState.FIRST_SENT:
                response.text = base64.b64encode(self._scram.receive_server_first(payload)).decode()
            else:
                self._scram.verify_server_final(payload)  # RFC 6120 §6.3.10 via a challenge
                self._server_verified = True
            self._output += serialize(response)
            return
        if tag == _q("success", SASL_NS):
            payload = _sasl_payload_untrusted(element)
            if self._scram is not None and not self._server_verified:
                if self._scram.state is not ScramState.FINAL_SENT:
                    # RFC 5802 §3: success before our proof cannot carry a valid verifier.
                    raise AuthenticationFailed("SASL success before the SCRAM exchange finished")
                self._scram.verify_server_final(payload)  # raises if absent or wrong
                self._server_verified = True
            self._transition(_I.SASL_SUCCESS)
            self.authenticated = True
            self._parser.reset()  # RFC 6120 §6.4.6: the stream restarts
            self._send_header()
            events.append(ev.Authenticated(self._mechanism or ""))
            return
        raise StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, "unexpected element in SASL")

    def _send_bind(self) -> None:
        self._bind_id = self.next_id()
        iq = ET.Element(_q("iq"), {"type": "set", "id": self._bind_id})
        bind = ET.SubElement(iq, _q("bind", BIND_NS))
        if self.config.resource is not None:
            ET.SubElement(bind, _q("resource", BIND_NS)).text = self.config.resource
        self._transition(_I.BIND_SENT)
        self._output += serialize(iq)

    def _on_bind_result(self, iq: ET.Element, events: list[ev.Event]) -> None:
        if iq.get("id") != self._bind_id:
            raise StreamError(StreamCondition.POLICY_VIOLATION, "an iq before binding completed")
        if iq.get("type") == "error":
            raise StanzaError.from_element_untrusted(iq)
        jid_element = iq.find(f"{_q('bind', BIND_NS)}/{_q('jid', BIND_NS)}")
        if iq.get("type") != "result" or jid_element is None:
            raise StreamError(StreamCondition.INVALID_XML, "a bind result without a JID")
        try:
            bound = Jid.parse_untrusted((jid_element.text or "").strip())
        except JidError as exc:
            raise StreamError(StreamCondition.INVALID_XML, "the bound JID is invalid") from exc
        if bound.bare != self.config.jid.bare or bound.resource is None:
            raise StreamError(StreamCondition.INVALID_XML, "the server bound another account")
        self.jid = bound
        if self.config.stream_management and self.features.stream_management:
            self._transition(_I.ENABLE_SENT)
            self._output += serialize(ET.Element(_q("enable", SM_NS), {"resume": "true"}))
            return
        self._transition(_I.BOUND)
        events.append(ev.SessionEstablished(self.jid, False, False))
        self._session_ready()

    def _on_stream_management_answer(
        self, element: ET.Element, now: float, events: list[ev.Event]
    ) -> None:
        tag = element.tag
        resuming = self._resume is not None and self._sm.session_id == self._resume.session_id
        if tag == _q("enabled", SM_NS) and not resuming:
            self._transition(_I.SM_ENABLED)
            self._sm.enable_untrusted(element)
            events.append(ev.SessionEstablished(self.jid, True, self._sm.resumable))
            self._session_ready()
        elif tag == _q("failed", SM_NS) and not resuming:
            self._transition(_I.SM_ENABLE_FAILED)
            events.append(ev.SessionEstablished(self.jid, False, False))
            self._session_ready()
        elif tag == _q("resumed", SM_NS) and resuming:
            assert self._resume is not None  # for mypy: resuming implies it
            if element.get("previd") != self._resume.session_id:
                raise StreamError(StreamCondition.INVALID_XML, "resumed another session")
            self._transition(_I.SM_RESUMED)
            self.jid = self._resume.jid
            acknowledged = self._sm.acknowledge_untrusted(element.get("h"))
            if acknowledged:
                events.append(_acknowledged(acknowledged))
            resent = list(self._sm.unacknowledged)
            for stanza in resent:  # XEP-0198 §5: resend what the server did not handle
                self._output += serialize(stanza)
                self._stanzas_sent += 1
            self._resume = None
            events.append(ev.SessionResumed(self.jid, len(resent)))
            self._session_ready()
        elif tag == _q("failed", SM_NS) and resuming:
            handled = element.get("h")
            if handled is not None:
                acknowledged = self._sm.acknowledge_untrusted(handled)
                if acknowledged:
                    events.append(_acknowledged(acknowledged))
            unacknowledged = self._sm.take_unacknowledged()
            self._sm.reset()
            self._resume = None
            events.append(ev.ResumptionFailed(unacknowledged))
            if self.config.resend_after_failed_resumption:
                self._outbox[:0] = unacknowledged
            if not self.features.bind:
                raise StreamError(StreamCondition.UNSUPPORTED_FEATURE, "the server offers no bind")
            self._bind_id = self.next_id()
            iq = ET.Element(_q("iq"), {"type": "set", "id": self._bind_id})
            bind = ET.SubElement(iq, _q("bind", BIND_NS))
            if self.config.resource is not None:
                ET.SubElement(bind, _q("resource", BIND_NS)).text = self.config.resource
            self._transition(_I.SM_RESUME_FAILED)
            self._output += serialize(iq)
        else:
            raise StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, "unexpected SM element")

    def _session_ready(self) -> None:
        self._negotiation_deadline = None
        outbox, self._outbox = self._outbox, []
        for stanza in outbox:
            self._write_stanza(stanza)

    # -- established session ---------------------------------------------------------------------

    def _write_stanza(self, stanza: ET.Element) -> None:
        data = serialize(stanza)
        self._sm.record_sent(stanza)
        self._output += data
        self._stanzas_sent += 1

    def _send_iq(
        self,
        type: str,  # the RFC's attribute name
        payload: ET.Element,
        now: float,
        *,
        to: Jid | None = None,
        kind: str,
    ) -> str:
        iq_id = self.next_id()
        iq = ET.Element(_q("iq"), {"type": type, "id": iq_id})
        if to is not None:
            iq.set("to", str(to))
        iq.append(payload)
        self.send_stanza(iq)
        self._pending[iq_id] = _PendingIq(kind, to, now, now + self.config.iq_timeout)
        return iq_id

    def _on_ack_nonza(self, element: ET.Element, events: list[ev.Event]) -> None:
        if element.tag == _q("r", SM_NS) and self._sm.enabled:
            answer = ET.Element(_q("a", SM_NS), {"h": str(self._sm.inbound_handled)})
            self._output += serialize(answer)
        elif element.tag == _q("a", SM_NS) and self._sm.enabled:
            self._sm.ack_requested = False
            acknowledged = self._sm.acknowledge_untrusted(element.get("h"))
            if acknowledged:
                events.append(_acknowledged(acknowledged))
        else:
            raise StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, "unexpected SM element")

    def _drop(self, reason: str) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + 1

    def _on_stanza(
        self, stanza: ET.Element, sequence: int, now: float, events: list[ev.Event]
    ) -> None:
        try:
            if stanza.tag == _q("message"):
                self._on_message(stanza, sequence, events)
            elif stanza.tag == _q("presence"):
                self._on_presence(stanza, sequence, events)
            else:
                self._on_iq(stanza, now, events)
        except (StanzaParseError, JidError):
            # A malformed stanza is dropped and counted; the stream goes on (STYLE rule 8).
            self._drop(f"malformed-{stanza.tag.rpartition('}')[2]}")

    def _on_message(self, element: ET.Element, sequence: int, events: list[ev.Event]) -> None:
        message = parse_message_untrusted(element)
        if message.type is MessageType.ERROR:
            error = StanzaError.from_element_untrusted(element)
            events.append(ev.MessageFailed(message.id, message.from_, error))
            return
        received = element.find(_q("received", RECEIPTS_NS))
        if received is not None and message.body is None:
            receipt_id = received.get("id")
            if receipt_id:
                events.append(ev.ReceiptReceived(message.from_, receipt_id, sequence))
            else:
                self._drop("receipt-without-id")
            return
        events.append(ev.MessageReceived(message, sequence))

    def _on_presence(self, element: ET.Element, sequence: int, events: list[ev.Event]) -> None:
        presence_type = element.get("type")
        if presence_type == "error":
            error = StanzaError.from_element_untrusted(element)
            sender = element.get("from")
            from_ = Jid.parse_untrusted(sender) if sender is not None else None
            events.append(ev.PresenceFailed(from_, error))
        elif presence_type in (None, "unavailable"):
            events.append(ev.PresenceReceived(parse_presence_untrusted(element), sequence))
        elif presence_type in _SUBSCRIPTION_TYPES:
            sender = element.get("from")
            if sender is None:
                self._drop("subscription-without-from")
                return
            from_jid = Jid.parse_untrusted(sender).bare
            events.append(
                ev.SubscriptionReceived(from_jid, SubscriptionKind(presence_type), sequence)
            )
        else:
            self._drop("presence-type")  # probes are the server's business (RFC 6121 §4.3)

    def _is_from_server_or_self(self, sender: str | None) -> bool:
        if sender is None:
            return True
        jid = Jid.parse_untrusted(sender)
        return jid in (self.jid, self.jid.bare, Jid(None, self.jid.domain))

    def _on_iq(self, iq: ET.Element, now: float, events: list[ev.Event]) -> None:
        iq_type = iq.get("type")
        iq_id = iq.get("id")
        if iq_id is None:
            self._drop("iq-without-id")
            return
        if iq_type in ("result", "error"):
            self._on_iq_answer(iq, iq_id, iq_type, now, events)
            return
        if iq_type not in ("get", "set") or len(iq) != 1:
            self._reply_error(iq, StanzaErrorType.MODIFY, StanzaErrorCondition.BAD_REQUEST)
            return
        payload = iq[0]
        sender = iq.get("from")
        if iq_type == "set" and payload.tag == _q("query", ROSTER_NS):
            if not self._is_from_server_or_self(sender):
                self._drop("roster-push-not-from-server")  # RFC 6121 §2.1.6: ignore it
                return
            items, version = parse_roster_query_untrusted(payload)
            if len(items) != 1:
                self._reply_error(iq, StanzaErrorType.MODIFY, StanzaErrorCondition.BAD_REQUEST)
                return
            self._reply_result(iq)
            events.append(ev.RosterPushed(items[0], version))
        elif iq_type == "get" and payload.tag == _q("ping", PING_NS):
            self._reply_result(iq)  # XEP-0199 §4.1, §4.2
        elif iq_type == "get" and payload.tag == _q("query", DISCO_INFO_NS):
            if payload.get("node") is not None:
                self._reply_error(iq, StanzaErrorType.CANCEL, StanzaErrorCondition.ITEM_NOT_FOUND)
            else:
                self._reply_result(iq, self._disco_info())
        else:
            # RFC 6120 §8.4: a request we do not understand gets service-unavailable.
            self._reply_error(iq, StanzaErrorType.CANCEL, StanzaErrorCondition.SERVICE_UNAVAILABLE)

    def _on_iq_answer(
        self, iq: ET.Element, iq_id: str, iq_type: str, now: float, events: list[ev.Event]
    ) -> None:
        pending = self._pending.get(iq_id)
        if pending is None:
            self._drop("unexpected-iq-answer")
            return
        sender = iq.get("from")
        if pending.to is None:
            expected = self._is_from_server_or_self(sender)
        else:
            expected = sender is not None and Jid.parse_untrusted(sender) == pending.to
        if not expected:
            self._drop("iq-answer-from-elsewhere")  # RFC 6120 §8.1.2.1: possible spoofing
            return
        del self._pending[iq_id]
        from_ = Jid.parse_untrusted(sender) if sender is not None else None
        if iq_type == "error":
            events.append(ev.IqFailed(iq_id, from_, StanzaError.from_element_untrusted(iq)))
            return
        payload = iq[0] if len(iq) else None
        if pending.kind == "roster-get":
            if payload is None:
                # RFC 6121 §2.6.3: an empty result means "your cached roster is current".
                events.append(ev.RosterReceived((), None))
            else:
                items, version = parse_roster_query_untrusted(payload)
                events.append(ev.RosterReceived(items, version))
        elif pending.kind == "ping":
            events.append(ev.PingAnswered(iq_id, now - pending.sent_at))
        elif pending.kind != "keepalive":
            events.append(ev.IqResultReceived(iq_id, from_, payload))

    def _disco_info(self) -> ET.Element:
        """What we support, for XEP-0030 §3.1."""
        query = ET.Element(_q("query", DISCO_INFO_NS))
        category, kind, name = self.config.disco_identity
        ET.SubElement(
            query, _q("identity", DISCO_INFO_NS), {"category": category, "type": kind, "name": name}
        )
        for feature in sorted((DISCO_INFO_NS, PING_NS, RECEIPTS_NS)):
            ET.SubElement(query, _q("feature", DISCO_INFO_NS), {"var": feature})
        return query

    def _reply_result(self, request: ET.Element, payload: ET.Element | None = None) -> None:
        reply = ET.Element(_q("iq"), {"type": "result", "id": request.get("id", "")})
        sender = request.get("from")
        if sender is not None:
            reply.set("to", sender)
        if payload is not None:
            reply.append(payload)
        self._write_stanza(reply)

    def _reply_error(
        self,
        request: ET.Element,
        error_type: StanzaErrorType,
        condition: StanzaErrorCondition,
    ) -> None:
        """RFC 6120 §8.3.1: an error reply carries the request's id, to the sender."""
        reply = ET.Element(_q("iq"), {"type": "error", "id": request.get("id", "")})
        sender = request.get("from")
        if sender is not None:
            reply.set("to", sender)
        reply.append(StanzaError(error_type, condition).to_element())
        self._write_stanza(reply)


def _acknowledged(stanzas: list[ET.Element]) -> ev.StanzasAcknowledged:
    return ev.StanzasAcknowledged(len(stanzas), tuple(stanza.get("id") for stanza in stanzas))


def _sasl_payload_untrusted(element: ET.Element) -> bytes:
    """The base64 content of a SASL element (RFC 6120 §6.4.2: '=' is an empty payload)."""
    text = "".join((element.text or "").split())
    if text in ("", "="):
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuthenticationFailed("the server sent invalid base64 in SASL") from exc
