"""The sans-IO XMPP client facade: one client-to-server stream (RFC 6120, RFC 6121).

Theory of operation.  :class:`XmppClient` is one client-to-server stream, h2-style: feed it what the
socket delivered (:meth:`~XmppClient.receive_data_untrusted`), get a list of
:mod:`gateway.xmpp.events` back, and write :meth:`~XmppClient.data_to_send` to the socket.  It never
touches a socket, a clock or TLS itself: time enters as ``now``, timers are a
:meth:`~XmppClient.next_deadline` query answered by :meth:`~XmppClient.handle_timer`, and STARTTLS
is a :class:`~gateway.xmpp.events.TlsRequested` event after which the adapter wraps the socket and
calls :meth:`~XmppClient.tls_established`.

The client is assembled from one module per idea:

- :mod:`gateway.xmpp.client_state`: the states, inputs and the one transition table; every
  received element is classified there and checked against the table before it is handled, and an
  input the table does not list ends the machine in ``FAILED`` (a ``<stream:error/>`` for the
  peer's fault, :class:`LocalXmppError` for ours);
- :mod:`gateway.xmpp.negotiation`: stream features, STARTTLS, SASL, bind and XEP-0198
  enable/resume, with the security policy (TLS required unless plaintext is allowed on loopback,
  PLAIN only over TLS, SCRAM server signatures verified);
- :mod:`gateway.xmpp.dispatch`: received messages, presence, subscriptions, roster pushes and
  answers to our requests turned into events, requests answered;
- :mod:`gateway.xmpp.timers`: negotiation timeout, keep-alive probes and request timeouts.

Once READY: messages, presence and subscriptions (RFC 6121 §3-§5), roster get and pushes
(RFC 6121 §2), receipts (XEP-0184), pings both ways (XEP-0199), client state indication
(XEP-0352) and disco#info (XEP-0030).  Stream management (XEP-0198,
:mod:`gateway.xmpp.stream_management`) is enabled with resumption when the server offers it;
with ``defer_inbound_acks`` the inbound count it reports is the application's
(:meth:`~XmppClient.acknowledge_inbound`, :meth:`~XmppClient.release_inbound_acknowledgements`).
Stanzas submitted before READY wait in a bounded outbox and go out once the session is up.

Outbound limits: a stanza larger than ``max_outbound_stanza_size``, or than the ``max-bytes`` the
server advertises in its features (XEP-0478), is refused before it is written
(:class:`~gateway.xmpp.errors.StanzaTooLargeError` at submission, or
:class:`~gateway.xmpp.events.StanzaDropped` for one already queued when the limit is learnt).  If
the server still ends the stream with ``<policy-violation/>``, the largest stanza in flight is the
likely cause: it is dropped (``StanzaDropped``) rather than resent on every new session, so that
what was queued behind it is delivered.

Restoring state: a client built with ``restore=`` (the previous connection's
:meth:`~XmppClient.restorable_state`) that gets a *fresh* session, not a resumed one, asks for
the roster again if the previous one had, and re-sends the last broadcast presence (RFC 6121 §4.2:
without an available presence the server sends messages for the bare JID to offline storage).
"""

from __future__ import annotations

import dataclasses
import weakref
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from gateway.xmpp import events as ev
from gateway.xmpp.client_state import (
    TRANSITIONS,
    ClientInput,
    ClientState,
    check_element,
)
from gateway.xmpp.dispatch import StanzaDispatcher
from gateway.xmpp.errors import (
    STREAM_NS,
    AuthenticationFailed,
    LocalXmppError,
    PeerStreamError,
    RemoteXmppError,
    StanzaError,
    StanzaTooLargeError,
    StreamCondition,
    StreamError,
    XmppError,
)
from gateway.xmpp.events import StanzaDropReason
from gateway.xmpp.jid import Jid
from gateway.xmpp.negotiation import (
    DEFAULT_MAX_OUTBOUND_STANZA_SIZE,
    ClientConfig,
    EncryptionRequiredError,
    FeaturesMissingError,
    NegotiatingStream,
    acknowledged_event,
)
from gateway.xmpp.parser import StanzaReceived, StreamClosed, StreamOpened
from gateway.xmpp.serializer import STREAM_CLOSE, serialize
from gateway.xmpp.stanzas import (
    CLIENT_NS,
    CSI_NS,
    PING_NS,
    RECEIPTS_NS,
    MessageStanzaType,
    PresenceShow,
    RosterItem,
    RosterSubscription,
    SubscriptionKind,
    build_message,
    build_presence,
    build_roster_query,
    build_subscription,
)
from gateway.xmpp.stream_management import DEFAULT_INBOUND_ACK_DELAY, SM_NS, ResumptionToken
from gateway.xmpp.timers import (
    DEFAULT_IQ_TIMEOUT,
    DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_NEGOTIATION_TIMEOUT,
    ClientTimers,
    IqKind,
)

__all__ = [
    "DEFAULT_IQ_TIMEOUT",
    "DEFAULT_KEEPALIVE_INTERVAL",
    "DEFAULT_KEEPALIVE_TIMEOUT",
    "DEFAULT_MAX_OUTBOUND_STANZA_SIZE",
    "DEFAULT_NEGOTIATION_TIMEOUT",
    "TRANSITIONS",
    "ClientConfig",
    "ClientInput",
    "ClientState",
    "ClientStatistics",
    "ConnectionLostError",
    "EncryptionRequiredError",
    "FeaturesMissingError",
    "RestorableState",
    "XmppClient",
]

_S = ClientState
_I = ClientInput
_STANZA_TAGS: Final = frozenset(f"{{{CLIENT_NS}}}{name}" for name in ("message", "presence", "iq"))
# Events that carry an inbound stanza's XEP-0198 number for the application to acknowledge.
_SEQUENCED_EVENTS: Final = (
    ev.MessageReceived,
    ev.ReceiptReceived,
    ev.PresenceReceived,
    ev.SubscriptionReceived,
)


# Stanzas whose sender resends them itself on a fresh session (see XmppClient.send_stanza). Kept
# by identity and weakly, so the mark travels with the element from one connection's client to
# the next and vanishes with it.
_RESENT_BY_APPLICATION: Final[weakref.WeakSet[ET.Element]] = weakref.WeakSet()


def resent_by_application(stanza: ET.Element) -> bool:
    """Whether ``stanza`` was submitted with ``resent_by_application=True``."""
    return stanza in _RESENT_BY_APPLICATION


class ConnectionLostError(RemoteXmppError):
    """The connection ended without ``</stream:stream>`` (or a keepalive went unanswered)."""


@dataclasses.dataclass(frozen=True, eq=False)
class RestorableState:
    """What a fresh session re-establishes for the application: its presence and roster interest."""

    presence: ET.Element | None = None  # the last broadcast presence sent
    roster_requested: bool = False


@dataclasses.dataclass(frozen=True)
class ClientStatistics:
    """Counters of one stream, for metrics."""

    stanzas_sent: int
    stanzas_received: int
    bytes_received: int
    dropped: dict[StanzaDropReason, int]
    unacknowledged: int


def _q(local: str, namespace: str = CLIENT_NS) -> str:
    return f"{{{namespace}}}{local}"


class XmppClient(NegotiatingStream):
    """One client-to-server XMPP stream, sans-IO; see the module docstring.

    ``resume`` is the :class:`ResumptionToken` of a previous connection to resume (XEP-0198 §5);
    ``restore`` what a fresh session re-establishes (see the module docstring).
    ``defer_key_derivation`` makes a SCRAM key derivation that misses the cache a
    :class:`~gateway.xmpp.events.KeyDerivationRequested` event for the adapter to run off the
    event loop, instead of running it inline.
    ``id_prefix`` and ``client_nonce`` make ids and the SCRAM nonce deterministic for tests.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        resume: ResumptionToken | None = None,
        restore: RestorableState | None = None,
        defer_key_derivation: bool = False,
        id_prefix: str | None = None,
        client_nonce: str | None = None,
    ) -> None:
        super().__init__(
            config,
            resume=resume,
            defer_key_derivation=defer_key_derivation,
            id_prefix=id_prefix,
            client_nonce=client_nonce,
        )
        self._restore = restore
        self._last_presence: ET.Element | None = None
        self._roster_requested = False
        self._poisoned = False  # a stanza was dropped after <policy-violation/>: do not resume
        self._timers = ClientTimers(
            iq_timeout=config.iq_timeout,
            keepalive_interval=config.keepalive_interval,
            ack_timeout=config.ack_timeout,
        )
        self._dispatcher = StanzaDispatcher(
            timers=self._timers,
            write=self._write_stanza,
            drop=self._drop,
            disco_identity=config.disco_identity,
        )
        self._sm.defer_inbound = config.defer_inbound_acks
        self._inbound_ack_due: float | None = None  # a deferred <a/> goes out by then
        self._stanzas_received = 0
        self._bytes_received = 0
        self._dropped: dict[StanzaDropReason, int] = {}
        self._element_handlers: dict[
            ClientInput, Callable[[ET.Element, float, list[ev.Event]], None]
        ] = {
            _I.FEATURES: lambda element, _now, events: self._on_features(element, events),
            _I.TLS_PROCEED: lambda _element, _now, events: self._on_tls_proceed(events),
            _I.TLS_FAILURE: _on_tls_failure,
            _I.SASL_CHALLENGE: lambda element, _now, events: self._on_sasl_challenge(
                element, events
            ),
            _I.SASL_SUCCESS: lambda element, _now, events: self._on_sasl_success(element, events),
            _I.SASL_FAILURE: _on_sasl_failure,
            _I.SM_ENABLED: self._on_stream_management_answer,
            _I.SM_RESUMED: self._on_stream_management_answer,
            _I.SM_FAILED: self._on_stream_management_answer,
            _I.SM_ACK: lambda element, _now, events: self._on_ack_nonza(element, events),
            _I.IQ: self._on_iq_element,
            _I.STANZA: self._on_stanza,
        }

    # -- public API: lifecycle ------------------------------------------------------------------

    def start(self, now: float, *, peer_is_loopback: bool = False) -> None:
        """Open the stream (RFC 6120 §4.2); ``peer_is_loopback`` gates ``allow_plaintext``."""
        self._peer_is_loopback = peer_is_loopback
        self._timers.started(now, self.config.negotiation_timeout)
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

    def data_to_send(self, now: float | None = None) -> bytes:
        """Bytes to write to the socket now (possibly empty).

        ``now`` starts the acknowledgement clock (``config.ack_timeout``) of the stanzas that
        go out; without it the clock starts at the next call that tells the time.
        """
        self._request_acknowledgement(now)
        data = bytes(self._output)
        self._output.clear()
        return data

    def data_to_send_pieces(self, now: float | None, max_piece: int) -> list[bytes]:
        """:meth:`data_to_send`, cut between elements into pieces of at most ``max_piece`` bytes
        (an element larger than that is a piece of its own).

        Written one piece per TLS record (``max_piece`` = 16384, the TLS plaintext limit), no
        element below that size ever spans two records, so a connection that dies mid-write
        leaves the server's parser between stanzas, never inside one.  That matters for
        Prosody 0.12, which parses a resumed stream with the old stream's parser (mod_c2s's
        ``session.data`` keeps the old parser after mod_smacks moves the session): a half
        stanza left there swallows everything the resumed stream sends (docs/upstream.md).
        """
        self._request_acknowledgement(now)
        data = bytes(self._output)
        ends = list(self._output.ends)
        self._output.clear()
        pieces: list[bytes] = []
        start = cut = 0
        for end in ends:
            if end - start > max_piece and cut > start:
                pieces.append(data[start:cut])
                start = cut
            cut = end
        if cut > start:
            pieces.append(data[start:cut])
        return pieces

    def _request_acknowledgement(self, now: float | None) -> None:
        if self.state is _S.READY and self._sm.enabled and self._sm.unacknowledged:
            if not self._sm.ack_requested:
                # XEP-0198 §4: ask for an ack once per batch of stanzas.
                self._output += serialize(ET.Element(_q("r", SM_NS)))
                self._sm.ack_requested = True
            self._timers.awaiting_ack(now)

    def resumption_token(self, now: float) -> ResumptionToken | None:
        """What a new connection needs to resume this session (XEP-0198 §5), if resumable.

        Stanzas still in the outbox (never sent) travel with it and go out after resumption.
        """
        if self._resume is not None:
            return self._resume  # the connection broke before the resumption completed
        if self._poisoned:
            return None  # the server ended the session for a stanza of ours: start afresh
        return self._sm.resumption_token(self.jid, now)

    def restorable_state(self) -> RestorableState:
        """What the next connection should re-establish if it gets a fresh session."""
        if self._restore is not None:  # this connection never got as far as restoring it
            presence = self._last_presence or self._restore.presence
            return RestorableState(
                presence, self._roster_requested or self._restore.roster_requested
            )
        return RestorableState(self._last_presence, self._roster_requested)

    @property
    def outbound_limit(self) -> int:
        """The largest stanza we may send: our configured cap, or the server's if it is lower."""
        limit = self.config.max_outbound_stanza_size
        if self._server_max_bytes is not None:
            limit = min(limit, self._server_max_bytes)
        return limit

    def unsent_stanzas(self) -> tuple[ET.Element, ...]:
        """Stanzas still waiting for the session (never written); a new connection sends them."""
        return tuple(self._outbox)

    def pending_stanzas(self) -> tuple[ET.Element, ...]:
        """Stanzas not known to have reached the server, for a fresh session to send again:
        unacknowledged plus never sent, less those the application resends itself."""
        unacknowledged = (
            self._resume.unacknowledged if self._resume is not None else self._sm.unacknowledged
        )
        return tuple(
            stanza
            for stanza in (*unacknowledged, *self._outbox)
            if stanza not in _RESENT_BY_APPLICATION
        )

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

    def send_stanza(self, stanza: ET.Element, *, resent_by_application: bool = False) -> None:
        """Send a stanza now if the session is up, else when it is (bounded outbox).

        With ``resent_by_application`` the stanza is resent only by XEP-0198 resumption: a
        fresh session (a failed resumption, a new stream) does not send it again, written or
        not, since the application holds it durably and resends it itself, after checking
        what the server already has (:mod:`gateway.xmpp.archive`), so the server never gets it
        twice. The mark stays on the element across the clients of later connections.
        """
        if stanza.tag not in _STANZA_TAGS:
            raise LocalXmppError(f"{stanza.tag} is not a jabber:client stanza")
        if self.state in (_S.CLOSING, _S.CLOSED, _S.FAILED):
            raise LocalXmppError(f"cannot send in state {self.state.name}")
        data = serialize(stanza)
        if len(data) > self.outbound_limit:
            raise StanzaTooLargeError(len(data), self.outbound_limit)
        if resent_by_application:
            _RESENT_BY_APPLICATION.add(stanza)
        if self.state is not _S.READY:
            if len(self._outbox) >= self.config.max_unacknowledged:
                raise LocalXmppError("the outbox is full; wait for the session")
            self._outbox.append(stanza)
            self._remember(stanza)
            return
        self._write_stanza(stanza, data)
        self._remember(stanza)

    def _remember(self, stanza: ET.Element) -> None:
        if _is_broadcast_presence(stanza):
            self._last_presence = stanza

    def send_message(
        self,
        to: Jid,
        body: str | None = None,
        *,
        type: MessageStanzaType = MessageStanzaType.CHAT,  # the RFC's attribute name
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
        self._roster_requested = True
        return self._send_iq("get", build_roster_query(), now, kind=IqKind.ROSTER_GET)

    def set_roster_item(self, item: RosterItem, now: float) -> str:
        """Add or update a contact (RFC 6121 §2.3); the server answers with a push."""
        return self._send_iq("set", build_roster_query(item), now, kind=IqKind.ROSTER_SET)

    def remove_roster_item(self, jid: Jid, now: float) -> str:
        """Remove a contact (RFC 6121 §2.5)."""
        item = RosterItem(jid=jid, subscription=RosterSubscription.REMOVE)
        return self._send_iq("set", build_roster_query(item), now, kind=IqKind.ROSTER_SET)

    def ping(self, now: float, *, to: Jid | None = None) -> str:
        """Send an XEP-0199 ping (to the server by default); answered by PingAnswered."""
        return self._send_iq("get", ET.Element(_q("ping", PING_NS)), now, to=to, kind=IqKind.PING)

    def send_iq(
        self, type: str, payload: ET.Element, now: float, *, to: Jid | None = None
    ) -> str:  # the RFC's attribute name
        """Send a get/set request; the answer is IqResultReceived or IqFailed (or IqTimedOut)."""
        if type not in ("get", "set"):
            raise LocalXmppError("a request is an iq of type get or set (RFC 6120 §8.2.3)")
        return self._send_iq(type, payload, now, to=to, kind=IqKind.GENERIC)

    def set_client_state(self, active: bool) -> bool:
        """Tell the server whether we are active (XEP-0352); False if it does not support CSI."""
        if self.state is not _S.READY:
            raise LocalXmppError("client state indication needs an established session")
        if not self.features.csi:
            return False
        self._output += serialize(ET.Element(_q("active" if active else "inactive", CSI_NS)))
        return True

    # -- public API: deferred inbound acknowledgement (XEP-0198 §4) -----------------------------

    def acknowledge_inbound(self, sequence: int) -> None:
        """The application is done with the inbound stanza whose event carried ``sequence``.

        Only with ``config.defer_inbound_acks``; every event with a non-zero ``sequence``
        (MessageReceived, ReceiptReceived, PresenceReceived, SubscriptionReceived) must be
        acknowledged, in any order, or ``h`` stops there.  Numbers not received on this stream
        are ignored.  Nothing is reported before :meth:`release_inbound_acknowledgements`.
        """
        self._sm.acknowledge_inbound(sequence)

    @property
    def inbound_acknowledged(self) -> int:
        """The inbound count done with, in order (what the application persists, then releases)."""
        return self._sm.inbound_acknowledged

    def release_inbound_acknowledgements(self, handled: int, now: float) -> None:
        """Allow ``<a h/>`` up to ``handled`` (a value of :attr:`inbound_acknowledged`).

        A gateway that resumes after a crash calls this only once ``handled`` is persisted, so
        the server never hears more than a restarted gateway will claim.  The ``<a/>`` goes out
        at once when enough is unreported, else within ``DEFAULT_INBOUND_ACK_DELAY`` seconds,
        and always in answer to the server's ``<r/>``.
        """
        self._sm.release_inbound(handled)
        unreported = self._sm.inbound_unreported()
        if unreported <= 0 or self.state is not _S.READY or not self._sm.enabled:
            return
        if unreported >= self._sm.inbound_ack_threshold:
            self._send_inbound_ack()
        elif self._inbound_ack_due is None:
            self._inbound_ack_due = now + DEFAULT_INBOUND_ACK_DELAY

    def resumption_checkpoint(self, now: float) -> ResumptionToken | None:
        """This stream's resumption id and counters to persist, with ``inbound_handled`` at
        :attr:`inbound_acknowledged` (not yet reported; release it once persisted), or None.

        The stanzas we sent are left out: a restarted process no longer has them.
        """
        if self._resume is not None or self._poisoned or self.state is not _S.READY:
            return None
        token = self._sm.resumption_token(self.jid, now)
        if token is None:
            return None
        return dataclasses.replace(
            token,
            inbound_handled=self._sm.inbound_acknowledged,
            unacknowledged=(),
            outbound_unknown=True,
        )

    def _send_inbound_ack(self) -> None:
        handled = self._sm.reported_inbound()
        self._output += serialize(ET.Element(_q("a", SM_NS), {"h": str(handled)}))
        self._inbound_ack_due = None

    # -- public API: input and timers -----------------------------------------------------------

    def receive_data_untrusted(self, data: bytes, now: float) -> list[ev.Event]:
        """Feed bytes from the peer (``b""`` means the connection ended); return the events.

        Total: a protocol violation by the peer ends in a StreamEnded event (and, where RFC 6120
        says so, a ``<stream:error/>`` in data_to_send), never an exception.
        """
        if self.state in (_S.CLOSED, _S.FAILED):
            raise LocalXmppError(f"the stream is over ({self.state.name})")
        if self.state is _S.IDLE:
            raise LocalXmppError("start() the stream first")
        events: list[ev.Event] = []
        if not data:
            clean = self.state is _S.CLOSING
            self._transition(_I.STREAM_CLOSED)
            events.append(
                ev.StreamEnded(None if clean else ConnectionLostError("connection closed"))
            )
            return events
        self._bytes_received += len(data)
        self._timers.received(now)
        try:
            for stream_event in self._parser.feed(data):
                if isinstance(stream_event, StreamOpened):
                    self._on_stream_opened(stream_event.version)
                elif isinstance(stream_event, StanzaReceived):
                    self._on_element(stream_event.element, now, events)
                elif isinstance(stream_event, StreamClosed):
                    self._on_stream_closed(events)
                if self.state in (_S.TLS_HANDSHAKE, _S.CLOSED, _S.FAILED):
                    break  # nothing may follow <proceed/> or the end of the stream
        except StreamError as error:
            self._fail(error, events, send_stream_error=True)
        except PeerStreamError as error:
            if error.condition is StreamCondition.POLICY_VIOLATION and self.state in (
                _S.READY,
                _S.CLOSING,
            ):
                self._drop_likely_offender(events)
            self._fail(error, events, send_stream_error=False)
        except (
            AuthenticationFailed,
            EncryptionRequiredError,
            FeaturesMissingError,
            StanzaError,
        ) as error:
            self._fail(error, events, send_stream_error=False)
        except RemoteXmppError as error:
            self._fail(
                StreamError(StreamCondition.UNDEFINED_CONDITION, str(error)),
                events,
                send_stream_error=True,
            )
        return events

    def connection_lost(self, reason: str) -> list[ev.Event]:
        """The adapter gave up on the socket (e.g. a write that could not complete in time)."""
        if self.state in (_S.IDLE, _S.CLOSED, _S.FAILED):
            return []
        self._transition(_I.STREAM_CLOSED)
        self._timers.pending.clear()
        return [ev.StreamEnded(ConnectionLostError(reason))]

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timer` must next be called, or None."""
        if self.state in (_S.IDLE, _S.CLOSED, _S.FAILED):
            return None
        deadline = self._timers.next_deadline(ready=self.state is _S.READY)
        if self._inbound_ack_due is not None and self.state is _S.READY:
            deadline = (
                self._inbound_ack_due if deadline is None else min(deadline, self._inbound_ack_due)
            )
        return deadline

    def handle_timer(self, now: float) -> list[ev.Event]:
        """Run what is due at ``now``: request timeouts, keepalive probes, dead-peer detection."""
        events: list[ev.Event] = []
        if self.state in (_S.IDLE, _S.CLOSED, _S.FAILED):
            return events
        if self._timers.negotiation_expired(now):
            self._fail(ConnectionLostError("stream negotiation timed out"), events, False)
            return events
        if self._timers.probe_expired(now):
            self._fail(ConnectionLostError("the server stopped answering"), events, False)
            return events
        self._timers.tell_time(now)
        if self.state is _S.READY and self._timers.ack_expired(now):
            reason = f"no acknowledgement within {self.config.ack_timeout:g} s"
            self._fail(ConnectionLostError(reason), events, False)
            return events
        events.extend(ev.IqTimedOut(iq_id) for iq_id in self._timers.take_expired_requests(now))
        if self._inbound_ack_due is not None and now >= self._inbound_ack_due:
            self._inbound_ack_due = None
            if self.state is _S.READY and self._sm.enabled and self._sm.inbound_unreported() > 0:
                self._send_inbound_ack()
        if self.state is _S.READY and self._timers.probe_due(now):
            # XEP-0198 §4 <r/> doubles as a keepalive; without SM an XEP-0199 ping to the server.
            if self._sm.enabled:
                self._output += serialize(ET.Element(_q("r", SM_NS)))
                self._sm.ack_requested = True
            else:
                self._send_iq("get", ET.Element(_q("ping", PING_NS)), now, kind=IqKind.KEEPALIVE)
            self._timers.probe_sent(now, self.config.keepalive_timeout)
        return events

    # -- received elements ----------------------------------------------------------------------

    def _on_element(self, element: ET.Element, now: float, events: list[ev.Event]) -> None:
        if element.tag == _q("error", STREAM_NS):
            raise PeerStreamError.from_element_untrusted(element)
        peer_input = check_element(self.state, element.tag)
        self._element_handlers[peer_input](element, now, events)

    def _on_iq_element(self, iq: ET.Element, now: float, events: list[ev.Event]) -> None:
        """An ``<iq/>`` is the bind result while binding (RFC 6120 §7.6.1), else a stanza."""
        if self.state is _S.AWAIT_BIND:
            self._on_bind_result(iq, now, events)
        else:
            self._on_stanza(iq, now, events)

    def _on_stanza(self, stanza: ET.Element, now: float, events: list[ev.Event]) -> None:
        self._transition(_I.STANZA)
        self._stanzas_received += 1
        sequence = self._sm.record_handled()
        produced = self._dispatcher.dispatch_untrusted(stanza, sequence, self.jid, now)
        if not any(isinstance(event, _SEQUENCED_EVENTS) for event in produced):
            # Consumed here (an answer, a ping, a push) or dropped: the application never sees
            # its number, so it is done with now, keeping h a count of every stanza (§4).
            self._sm.acknowledge_inbound(sequence)
        events.extend(produced)

    def _on_ack_nonza(self, element: ET.Element, events: list[ev.Event]) -> None:
        if element.tag == _q("r", SM_NS) and self._sm.enabled:
            self._send_inbound_ack()
        elif element.tag == _q("a", SM_NS) and self._sm.enabled:
            self._sm.ack_requested = False
            self._timers.ack_received()
            acknowledged = self._sm.acknowledge_untrusted(element.get("h"))
            if acknowledged:
                events.append(acknowledged_event(acknowledged))
        else:
            raise StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, "unexpected SM element")

    def _on_stream_closed(self, events: list[ev.Event]) -> None:
        clean = self.state is _S.CLOSING
        self._transition(_I.STREAM_CLOSED)
        if clean:
            events.append(ev.StreamEnded(None))
        else:
            self._output += STREAM_CLOSE  # RFC 6120 §4.4: answer the close
            events.append(ev.StreamEnded(ConnectionLostError("the server closed the stream")))

    # -- failure ----------------------------------------------------------------------------------

    def _drop_likely_offender(self, events: list[ev.Event]) -> None:
        """After ``<policy-violation/>``, drop the largest stanza in flight (see the module doc)."""
        in_flight = self._sm.unacknowledged
        if not in_flight:
            return
        sizes = [len(serialize(stanza)) for stanza in in_flight]
        index = max(range(len(sizes)), key=sizes.__getitem__)
        offender = in_flight[index]
        del in_flight[index]
        self._poisoned = True
        reason = StanzaDropReason.POLICY_VIOLATION
        self._drop(reason)
        events.append(ev.StanzaDropped(offender.get("id"), reason, sizes[index], offender))

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
        self._timers.pending.clear()
        events.append(ev.StreamEnded(error))

    # -- established session ---------------------------------------------------------------------

    def _session_ready(self, now: float, events: list[ev.Event], *, fresh: bool) -> None:
        self._timers.negotiated()
        outbox, self._outbox = self._outbox, []
        restore, self._restore = self._restore, None
        if fresh and restore is not None:
            # RFC 6121 §2.2 then §4.2: roster first, then presence, as at a first log-in.
            if restore.roster_requested and not self._roster_requested:
                self.request_roster(now)
            presence = restore.presence
            if presence is not None and not any(_is_broadcast_presence(s) for s in outbox):
                self.send_stanza(presence)
        for stanza in outbox:
            if fresh and stanza in _RESENT_BY_APPLICATION:
                continue  # its sender resends it once it knows the server lacks it
            data = serialize(stanza)
            if len(data) > self.outbound_limit:
                reason = StanzaDropReason.TOO_LARGE
                self._drop(reason)
                events.append(ev.StanzaDropped(stanza.get("id"), reason, len(data), stanza))
                continue
            self._write_stanza(stanza, data)

    def _write_stanza(self, stanza: ET.Element, data: bytes | None = None) -> None:
        if data is None:
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
        kind: IqKind,
    ) -> str:
        iq_id = self.next_id()
        iq = ET.Element(_q("iq"), {"type": type, "id": iq_id})
        if to is not None:
            iq.set("to", str(to))
        iq.append(payload)
        self.send_stanza(iq)
        self._timers.track(iq_id, kind, to, now)
        return iq_id

    def _drop(self, reason: StanzaDropReason) -> None:
        self._dropped[reason] = self._dropped.get(reason, 0) + 1


def _on_tls_failure(_element: ET.Element, _now: float, _events: list[ev.Event]) -> None:
    # RFC 6120 §5.4.2.2: the server closes the stream after <failure/>.
    raise EncryptionRequiredError("the server failed to start TLS")


def _on_sasl_failure(element: ET.Element, _now: float, _events: list[ev.Event]) -> None:
    raise AuthenticationFailed.from_failure_untrusted(element)


def _is_broadcast_presence(stanza: ET.Element) -> bool:
    """An undirected available or unavailable presence (RFC 6121 §4.2, §4.5)."""
    return (
        stanza.tag == _q("presence")
        and stanza.get("to") is None
        and stanza.get("type") in (None, "unavailable")
    )
