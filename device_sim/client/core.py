"""The device client (sans-IO): what firmware on a constrained device does, on the gateway's cores.

Theory of operation. A :class:`DeviceClient` is built from the provisioning file that
``impp-gateway enroll`` writes (docs/provisioning.md): the device's CCS credential and P-256 key,
the gateway's CCS credential and its endpoints. It drives one :class:`gateway.session.DeviceSession`
(docs/protocol.md §3: EDHOC method 3, suite 2, then protected records) and speaks the wire messages
of §6 over it. Nothing here parses XML or X.509 or does RSA; everything the device keeps is measured
by :meth:`DeviceClient.state_size`.

Messages. ``send_text`` returns the SendMessage id (a counter, §6.4) and keeps the message in the
outbox until its final DeliveryReport (§6.6; with ``want_report`` the gateway always sends one).
A text that wants its report goes in the compact form ``[id, to, text]`` of §6.4 (24 bytes for a
20-character text to a small alias, 5 fewer than the map form), any other in the map form.
The session layer retransmits records until acknowledged and, across a resumption or a new
handshake, sends again only the operations the gateway had not acknowledged (§3.5): the client
never resends on its own, so each unacknowledged id goes out exactly once per new session, and the
gateway's de-duplication by ``(device, id)`` absorbs the rare repeat. The gateway acknowledges a
record only once its operations are durable there (§3.5), so an acknowledged SendMessage is never
sent again: the client reports it as :class:`MessageAccepted` and keeps only its id in the outbox
(the body is dropped) until the DeliveryReport. Inbound IncomingMessages are shown once:
ids strictly increase per device (§6.5), so a sliding window (highest id plus a bitmap of the
:data:`DEDUPE_WINDOW` ids below it) drops repeats in constant memory. Acknowledgement of what
arrives is the session layer's record Ack (§6.1); nothing else is owed.

Refusals (§6.3, §8.1). A wire Error naming a SendMessage (its type and id) is surfaced as
:class:`OperationRefused`. The gateway acknowledges the refused operation's record too, so an
Error and an Ack arriving together are taken Error first (the acknowledgements of one batch of
session events are applied after its operations): the refused message keeps its body. A code that
means "later" (:data:`RETRYABLE`) sends the same SendMessage again, same id, after a back-off
(:data:`DEFAULT_RETRY_BACKOFF` doubling to :data:`MAX_RETRY_BACKOFF`), at most
:data:`DEFAULT_MAX_ATTEMPTS` times in all; any other code, the last attempt, or a body already
forgotten (the Ack came first, the Error's record was lost) ends it: FAILED
(:class:`DeliveryReported` with no reason) and out of the outbox.

Sleep (§6.13, §6.14). ``sleep`` sends Sleep, keeps the radio on until the session has nothing
unacknowledged (records are delivered in order, so a Sleep behind a lost record would wait) or
:data:`DEFAULT_SLEEP_DRAIN` seconds passed, then turns it off: no datagrams in or out, no session
timers, only the wake deadline. What was still unacknowledged, the Sleep itself included, goes
again in the resumed session ahead of the Wake. ``wake`` (or that deadline) resumes with the last
ticket in one round trip (or a full handshake without one), then sends Wake; the MissedSummary
announces the backlog.

States (:data:`TRANSITIONS`): UNPROVISIONED -> CONNECTING -> ESTABLISHED -> SLEEPING -> RESUMING ->
ESTABLISHED ...; any -> CLOSED; a handshake the gateway never answers -> FAILED; a channel that
gave up retransmitting while ESTABLISHED -> RESUMING (a ticket, or a full handshake). An input
the table does not list raises :class:`ClientError` and moves the client to FAILED, which refuses
all use.
"""

from __future__ import annotations

import enum
import random
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from device_sim.client.events import (
    BacklogAnnounced,
    ClientClosed,
    ClientEvent,
    Connected,
    DeliveryReported,
    MessageAccepted,
    MessageArrived,
    OperationRefused,
    PresenceChanged,
    Slept,
    Woke,
)
from gateway import edhoc, wire
from gateway.edhoc.crypto import Crypto
from gateway.enroll.provisioning import Provisioning
from gateway.session import (
    ChannelConfig,
    DeviceSession,
    DeviceSessionEstablished,
    DeviceSessionResumed,
    DeviceSessionState,
    EdhocInitiator,
    OperationAcknowledged,
    OperationReceived,
    SessionClosed,
    TicketReceived,
    WireCodec,
)
from gateway.session.record import AEAD_PARAMETERS
from gateway.session.replay import DEFAULT_REPLAY_WINDOW

DEDUPE_WINDOW = 64  # IncomingMessage ids remembered below the highest: one 8-byte bitmap
DEFAULT_SLEEP_DRAIN = 10.0  # seconds the radio stays on after Sleep for its acknowledgement
DEFAULT_MAX_OUTBOX = 16  # unreported SendMessages a device keeps; a few hundred bytes of RAM
STATE_BOUND_EMPTY_OUTBOX = 4096  # bytes; docs/device-budget.md "The device client"
INITIATOR_CONNECTION_ID = b"\x37"  # C_I: the device talks to one gateway, one byte suffices
# Per-session counters a device keeps besides keys: next send sequence number, highest received
# and next operation id (8 bytes each, §3.4's 62-bit numbers), the key phase (1).
_SESSION_COUNTER_BYTES = 8 + 8 + 8 + 1
GATEWAY_CLOSED_REASON = "closed by the gateway"  # DeviceSession's reason for a Close item
_RECONNECTING = frozenset({DeviceSessionState.HANDSHAKING, DeviceSessionState.RESUMING})
_COUNTER_BYTES = 8  # one 64-bit counter (the next SendMessage id, the highest IncomingMessage id)
# Error codes that mean "not now" (§8.1): the SendMessage is sent again after a back-off.
RETRYABLE = frozenset(
    {
        wire.ErrorCode.RATE_LIMITED,
        wire.ErrorCode.QUEUE_FULL,
        wire.ErrorCode.UPSTREAM_UNAVAILABLE,
        wire.ErrorCode.INTERNAL,
    }
)
DEFAULT_RETRY_BACKOFF = 5.0  # seconds before the first resend of a refused SendMessage
MAX_RETRY_BACKOFF = 300.0  # the back-off doubles per refusal up to this
DEFAULT_MAX_ATTEMPTS = 6  # sends of one SendMessage, the first included, before it FAILs


class ClientState(enum.Enum):
    """Lifecycle of the device client."""

    UNPROVISIONED = "unprovisioned"
    CONNECTING = "connecting"  # full handshake under way
    ESTABLISHED = "established"
    SLEEPING = "sleeping"  # radio off
    RESUMING = "resuming"  # woke: resumption (or a fallback handshake) under way
    CLOSED = "closed"
    FAILED = "failed"


class ClientInput(enum.Enum):
    """What moves the client state machine."""

    START = "start"
    OPENED = "opened"
    SLEEP = "sleep"
    WAKE = "wake"
    LOST = "lost"  # the gateway dropped the session while awake: reconnect
    CLOSE = "close"
    GIVE_UP = "give_up"


C = ClientState
In = ClientInput
TRANSITIONS: dict[tuple[ClientState, ClientInput], ClientState] = {
    (C.UNPROVISIONED, In.START): C.CONNECTING,
    (C.CONNECTING, In.OPENED): C.ESTABLISHED,
    (C.RESUMING, In.OPENED): C.ESTABLISHED,
    (C.ESTABLISHED, In.OPENED): C.ESTABLISHED,  # the session re-resumed after a gateway restart
    (C.ESTABLISHED, In.SLEEP): C.SLEEPING,
    (C.SLEEPING, In.WAKE): C.RESUMING,
    (C.ESTABLISHED, In.LOST): C.RESUMING,
    (C.CONNECTING, In.GIVE_UP): C.FAILED,
    (C.RESUMING, In.GIVE_UP): C.FAILED,
    (C.ESTABLISHED, In.GIVE_UP): C.FAILED,
    (C.CONNECTING, In.CLOSE): C.CLOSED,
    (C.ESTABLISHED, In.CLOSE): C.CLOSED,
    (C.SLEEPING, In.CLOSE): C.CLOSED,
    (C.RESUMING, In.CLOSE): C.CLOSED,
}


class ClientError(Exception):
    """The application used the client in a way its state does not allow (our misuse)."""


class OutboxFullError(ClientError):
    """``max_outbox`` messages await their reports; the client stays usable, try again later."""


@dataclass(frozen=True)
class StateSize:
    """Bytes of state the device must keep, by part (see :meth:`DeviceClient.state_size`)."""

    identity: int  # device kid, credential and private key; the gateway's credential
    session_keys: int  # both directions' secrets, AEAD keys and IVs
    session_counters: int  # sequence numbers, replay window, connection id, reset token
    ticket: int  # resumption ticket, its secret and lifetime
    message_counters: int  # next SendMessage id
    outbox: int  # encoded unaccepted SendMessages, and the ids of accepted unreported ones
    dedupe_window: int  # highest IncomingMessage id and the bitmap below it

    @property
    def total(self) -> int:
        """All parts together."""
        return (
            self.identity
            + self.session_keys
            + self.session_counters
            + self.ticket
            + self.message_counters
            + self.outbox
            + self.dedupe_window
        )


class InboundWindow:
    """Which IncomingMessage ids were shown: the highest and a bitmap of the ids below it."""

    def __init__(self, size: int = DEDUPE_WINDOW) -> None:
        self.size = size
        self.highest = -1
        self.bitmap = 0  # bit k set: id ``highest - 1 - k`` was shown

    def first_time(self, message_id: int) -> bool:
        """Record ``message_id``; False when it was shown before or is too old to tell."""
        if message_id > self.highest:
            shift = message_id - self.highest
            if self.highest >= 0:
                self.bitmap = ((self.bitmap << 1 | 1) << (shift - 1)) & ((1 << self.size) - 1)
            self.highest = message_id
            return True
        if message_id == self.highest:
            return False
        offset = self.highest - 1 - message_id
        if offset >= self.size or self.bitmap >> offset & 1:
            return False
        self.bitmap |= 1 << offset
        return True

    def byte_size(self) -> int:
        """Bytes a device keeps for this window."""
        return _COUNTER_BYTES + (self.size + 7) // 8


def _lookup(trusted: edhoc.Credential) -> Callable[[edhoc.IdCred], edhoc.Credential | None]:
    def lookup(id_cred: edhoc.IdCred) -> edhoc.Credential | None:
        return trusted if id_cred.matches(trusted) else None

    return lookup


def initiator_factory(
    provisioning: Provisioning,
    private_key: bytes | None = None,
    crypto: Crypto | None = None,
) -> Callable[[], EdhocInitiator]:
    """EDHOC initiator from a provisioning file: method 3, suite 2, CCS credentials only.

    ``private_key`` is the device's own P-256 scalar when it made its key pair
    (``enroll --device-key``), so the file holds none. ``crypto`` is the device's crypto
    provider (a metered one counts its work, device_sim/budget.py; device_sim/soft_p256.py is
    a device without P-256 hardware); by default EDHOC's own.
    """
    device = provisioning.device_edhoc_credential()
    if private_key is not None:
        device = device.with_private_key(private_key)
    if device.private_key is None:
        raise ClientError("the provisioning file holds no private key; pass it to the client")
    gateway = provisioning.gateway_edhoc_credential()

    def make() -> EdhocInitiator:
        return EdhocInitiator(
            edhoc.Initiator(
                method=edhoc.Method(provisioning.method),
                suites=[edhoc.CipherSuite(provisioning.suite)],
                c_i=INITIATOR_CONNECTION_ID,
                credential=device,
                credential_lookup=_lookup(gateway),
                crypto=crypto,
            )
        )

    return make


class DeviceClient:
    """One constrained device's client: session, outbox, inbound de-duplication, sleep and wake."""

    def __init__(
        self,
        *,
        config: ChannelConfig | None = None,
        rng: random.Random | None = None,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
        max_outbox: int = DEFAULT_MAX_OUTBOX,
        sleep_drain: float = DEFAULT_SLEEP_DRAIN,
        crypto: Crypto | None = None,
    ) -> None:
        self.sleep_drain = sleep_drain
        self.crypto = crypto  # the EDHOC crypto provider of every handshake (None: EDHOC's own)
        self._config = config
        self._rng = rng
        self._random_bytes = random_bytes
        self.max_outbox = max_outbox
        self.state = ClientState.UNPROVISIONED
        self.provisioning: Provisioning | None = None
        self._private_key_length = 0
        self.session: DeviceSession | None = None
        self.next_message_id = 1
        # Until the final DeliveryReport; None once the gateway acknowledged it (accepted: durable
        # there, never sent again, so only its id is kept).
        self.outbox: dict[int, wire.SendMessage | None] = {}
        self.retry_backoff = DEFAULT_RETRY_BACKOFF
        self.max_attempts = DEFAULT_MAX_ATTEMPTS
        self._retry_at: dict[int, float] = {}  # refused outbox messages, when to send again
        self._refusals: dict[int, int] = {}  # refusals so far, per outbox message
        self._failed_now: set[int] = set()  # refused for good in this batch of session events
        self._deferred: list[wire.Message] = []  # given to the session on wake
        self.inbound = InboundWindow()
        self.wake_at: float | None = None
        self.radio_off_at: float | None = None  # while SLEEPING: None once the radio is off
        self._now = 0.0  # the time of the input being handled, for reconnections it causes
        self.duplicates_dropped = 0
        self._codec = WireCodec()
        self._events: list[ClientEvent] = []
        self._outgoing: list[bytes] = []

    # ---- state machine -------------------------------------------------------------------------

    def _transition(self, what: ClientInput) -> None:
        target = TRANSITIONS.get((self.state, what))
        if target is None:
            previous = self.state
            self.state = ClientState.FAILED
            raise ClientError(f"{what.value} is not allowed in state {previous.value}")
        self.state = target

    def _require_session(self) -> DeviceSession:
        if self.session is None or self.state in (ClientState.CLOSED, ClientState.FAILED):
            previous = self.state
            if previous is not ClientState.CLOSED:
                self.state = ClientState.FAILED
            raise ClientError(f"not usable in state {previous.value}")
        return self.session

    # ---- application calls ---------------------------------------------------------------------

    def start(
        self, provisioning: Provisioning, now: float, *, private_key: bytes | None = None
    ) -> None:
        """Take the identity from ``provisioning`` and run the full handshake.

        ``private_key``: the device's own key when the file holds none (``enroll --device-key``).
        """
        self._transition(ClientInput.START)
        handshake_factory = initiator_factory(provisioning, private_key, self.crypto)
        self.provisioning = provisioning
        self._private_key_length = len(provisioning.device_private_key or private_key or b"")
        self.session = DeviceSession(
            handshake_factory=handshake_factory,
            codec=self._codec,
            config=self._config,
            rng=self._rng,
            random_bytes=self._random_bytes,
        )
        self.session.connect(now)

    def send_text(self, to: wire.ContactRef, text: str, *, want_report: bool = True) -> int:
        """Queue an instant message; returns its id (kept in the outbox until reported)."""
        self._require_session()
        if len(self.outbox) >= self.max_outbox:
            raise OutboxFullError("outbox full: wait for delivery reports")
        message_id = self.next_message_id
        message = wire.SendMessage(
            message_id, to, wire.TextContent(text), want_report, compact=True
        )
        self.next_message_id += 1
        if want_report:
            self.outbox[message_id] = message
        self._send(message)
        return message_id

    def set_presence(self, *, available: bool = True, show: wire.Show | None = None) -> None:
        """Tell the gateway the device's own presence (§6.7)."""
        self._require_session()
        self._send(wire.SetPresence(open=available, show=show))

    def sleep(self, duration: int, now: float) -> None:
        """Send Sleep, keep the radio on until it is acknowledged (at most ``sleep_drain``
        seconds), then off until ``now + duration`` (or ``wake``)."""
        self._transition(ClientInput.SLEEP)
        session = self._require_session()
        session.send_operation(wire.Sleep(duration))
        self.wake_at = now + duration
        self.radio_off_at = now + self.sleep_drain
        self._outgoing.extend(session.datagrams_to_send(now))
        self._collect(session)

    def _radio_on(self) -> bool:
        if self.state is ClientState.SLEEPING:
            return self.radio_off_at is not None
        return self.state in (ClientState.CONNECTING, ClientState.ESTABLISHED, ClientState.RESUMING)

    def _maybe_radio_off(self, now: float) -> None:
        """While draining before sleep: off once everything is acknowledged or the drain ends."""
        if self.state is not ClientState.SLEEPING or self.radio_off_at is None:
            return
        channel = self.session.channel if self.session is not None else None
        if channel is None or channel.idle or now >= self.radio_off_at:
            self.radio_off_at = None
            assert self.wake_at is not None
            self._events.append(Slept(self.wake_at))

    def wake(self, now: float) -> None:
        """Radio on: resume with the last ticket (or handshake), then send Wake."""
        self._transition(ClientInput.WAKE)
        session = self._require_session()
        self.wake_at = None
        self.radio_off_at = None
        with_ticket = session.ticket is not None
        if with_ticket:
            session.resume(now)
        else:
            session.connect(now)
        self._events.append(Woke(with_ticket))
        session.send_operation(wire.Wake())
        deferred, self._deferred = self._deferred, []
        for message in deferred:
            session.send_operation(message)

    def close(self) -> None:
        """End the session (best effort) and stop."""
        session = self._require_session()
        if self._radio_on():
            session.close()
            self._outgoing.extend(session.datagrams_to_send(0.0))
        self._transition(ClientInput.CLOSE)
        self._events.append(ClientClosed("closed by the application", failed=False))

    def _send(self, message: wire.Message) -> None:
        assert self.session is not None
        if self.state is ClientState.SLEEPING:
            self._deferred.append(message)
        else:
            self.session.send_operation(message)

    # ---- the I/O driver's side -----------------------------------------------------------------

    def receive_datagram(self, data: bytes, now: float) -> None:
        """One datagram from the gateway; ignored while the radio is off. Never raises for it."""
        if self.session is None or not self._radio_on():
            return
        self._now = now
        self.session.receive_datagram(data, now)
        self._collect(self.session)
        self._maybe_radio_off(now)

    def datagrams_to_send(self, now: float) -> list[bytes]:
        """Everything due now (nothing while the radio is off)."""
        if self.session is not None and self._radio_on():
            self._now = now
            self._outgoing.extend(self.session.datagrams_to_send(now))
            self._collect(self.session)
        out, self._outgoing = self._outgoing, []
        return out

    def next_deadline(self) -> float | None:
        """When :meth:`handle_timeout` has work: the wake time while asleep, else the session's."""
        if self.session is None or self.state in (ClientState.CLOSED, ClientState.FAILED):
            return None
        if self.state is ClientState.SLEEPING and self.radio_off_at is None:
            return self.wake_at
        deadlines = [self.session.next_deadline(), self.radio_off_at, *self._retry_at.values()]
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timeout(self, now: float) -> None:
        """Wake when the sleep is over; otherwise run the session's timers."""
        if self.session is None or self.state in (ClientState.CLOSED, ClientState.FAILED):
            return
        if self.state is ClientState.SLEEPING and self.radio_off_at is None:
            if self.wake_at is not None and now >= self.wake_at:
                self.wake(now)
            return
        self._now = now
        self._retry_due(now)
        self.session.handle_timeout(now)
        self._collect(self.session)
        self._maybe_radio_off(now)

    def _retry_due(self, now: float) -> None:
        """Send again the refused messages whose back-off is over (deferred while asleep)."""
        for message_id, at in sorted(self._retry_at.items(), key=lambda item: item[1]):
            if at > now:
                continue
            del self._retry_at[message_id]
            message = self.outbox.get(message_id)
            if message is not None:
                self._send(message)

    def events(self) -> list[ClientEvent]:
        """Events since the last call."""
        events, self._events = self._events, []
        return events

    # ---- what the session reported -------------------------------------------------------------

    def _collect(self, session: DeviceSession) -> None:
        acknowledged: list[wire.Message] = []  # applied after the batch: an Error goes first
        self._failed_now.clear()
        for event in session.events():
            if isinstance(event, DeviceSessionEstablished | DeviceSessionResumed):
                self._transition(ClientInput.OPENED)
                self._events.append(Connected(isinstance(event, DeviceSessionResumed)))
            elif isinstance(event, OperationReceived):
                self._on_operation(event.message)
            elif isinstance(event, OperationAcknowledged):
                acknowledged.append(event.message)
            elif isinstance(event, SessionClosed):
                self._on_closed(event.reason)
            elif isinstance(event, TicketReceived):
                pass  # the session keeps it for the next wake
        for message in acknowledged:
            self._on_acknowledged(message)
        self._failed_now.clear()
        if self.state is ClientState.ESTABLISHED and session.state in _RECONNECTING:
            self._transition(ClientInput.LOST)  # a proven REJECT: the session reconnects itself

    def _on_closed(self, reason: str) -> None:
        """Give up a connection attempt, accept the gateway's Close, reconnect after a link loss."""
        if self.state in (ClientState.CLOSED, ClientState.FAILED, ClientState.SLEEPING):
            return
        if self.state in (ClientState.CONNECTING, ClientState.RESUMING):
            self._transition(ClientInput.GIVE_UP)
            self._events.append(ClientClosed(reason, failed=True))
        elif reason == GATEWAY_CLOSED_REASON:
            self._transition(ClientInput.CLOSE)
            self._events.append(ClientClosed(reason, failed=False))
        else:
            # The channel gave up retransmitting (§3.5): reconnect; the outbox goes again.
            assert self.session is not None
            self._transition(ClientInput.LOST)
            now = self._now
            if self.session.ticket is not None:
                self.session.resume(now)
            else:
                self.session.connect(now)

    def _on_acknowledged(self, message: wire.Message) -> None:
        """The gateway holds ``message`` durably (§3.5): a SendMessage becomes accepted."""
        if not isinstance(message, wire.SendMessage):
            return
        if message.id in self._retry_at or message.id in self._failed_now:
            return  # refused, not accepted: kept for the resend, or failed
        if self.outbox.get(message.id) is not None:
            self.outbox[message.id] = None  # the body is no longer needed
        self._events.append(MessageAccepted(message.id))

    def accepted(self) -> set[int]:
        """Ids of SendMessages the gateway acknowledged that still await their report."""
        return {i for i, message in self.outbox.items() if message is None}

    def _on_operation(self, message: wire.Message) -> None:
        if isinstance(message, wire.IncomingMessage):
            if not self.inbound.first_time(message.id):
                self.duplicates_dropped += 1
                return
            content = message.content
            text = content.text if isinstance(content, wire.TextContent) else None
            self._events.append(MessageArrived(message.id, message.sender, text, message.timestamp))
        elif isinstance(message, wire.DeliveryReport):
            if message.id not in self.outbox:
                self.duplicates_dropped += 1  # a repeated report, or one for want_report=False
                if message.status is not wire.DeliveryStatus.FAILED:
                    return
            self.outbox.pop(message.id, None)
            self._refusals.pop(message.id, None)
            self._retry_at.pop(message.id, None)
            self._events.append(DeliveryReported(message.id, message.status, message.reason))
        elif isinstance(message, wire.PresenceNotification):
            self._events.append(PresenceChanged(message.contact, message.open, message.show))
        elif isinstance(message, wire.MissedSummary):
            self._events.append(BacklogAnnounced(message.messages, message.delivery_reports))
        elif isinstance(message, wire.Error):
            self._on_error(message)

    def _on_error(self, error: wire.Error) -> None:
        """Surface a refusal; resend a refused SendMessage later, or fail it (module docstring)."""
        names_message = (
            error.message_type == wire.MessageType.SEND_MESSAGE and error.message_id is not None
        )
        message_id = error.message_id if names_message else None
        if message_id is None:
            self._events.append(OperationRefused(None, error.code, error.message_type))
            return
        message = self.outbox.get(message_id)
        refusals = self._refusals.get(message_id, 0) + 1
        if message is not None and error.code in RETRYABLE and refusals < self.max_attempts:
            self._refusals[message_id] = refusals
            delay = min(self.retry_backoff * 2 ** (refusals - 1), MAX_RETRY_BACKOFF)
            retry_at = self._now + delay
            self._retry_at[message_id] = retry_at
            self._events.append(
                OperationRefused(message_id, error.code, error.message_type, retry_at)
            )
            return
        self._events.append(OperationRefused(message_id, error.code, error.message_type))
        self._failed_now.add(message_id)
        self._refusals.pop(message_id, None)
        self._retry_at.pop(message_id, None)
        if message_id in self.outbox:
            del self.outbox[message_id]
            self._events.append(DeliveryReported(message_id, wire.DeliveryStatus.FAILED, None))

    # ---- measurement ---------------------------------------------------------------------------

    def state_size(self) -> StateSize:
        """Bytes a device must keep, computed from the fields this client actually holds."""
        identity = 0
        if self.provisioning is not None:
            p = self.provisioning
            identity = len(p.device_kid) + len(p.device_credential) + len(p.gateway_credential)
            identity += self._private_key_length
        session_keys = session_counters = ticket = 0
        session = self.session
        if session is not None:
            if session.channel is not None:
                params = AEAD_PARAMETERS[session.channel.protection.algorithm]
                per_direction = 32 + params.key_length + params.nonce_length  # secret, key, IV
                session_keys = 2 * per_direction
            session_counters = (
                _SESSION_COUNTER_BYTES
                + (DEFAULT_REPLAY_WINDOW + 7) // 8
                + len(session.connection_id)
                + len(session._reset_token)
            )
            if session.ticket is not None:
                t = session.ticket
                ticket = len(t.ticket) + len(t.resumption_secret) + 4  # lifetime: uint32
        outbox = sum(
            _COUNTER_BYTES if m is None else len(self._codec.encode(m))
            for m in self.outbox.values()
        )
        outbox += sum(
            len(self._codec.encode(m))
            for m in self._deferred
            if not isinstance(m, wire.SendMessage)
        )  # deferred SendMessages are in the outbox already
        outbox += len(self._refusals) * (_COUNTER_BYTES + 1)  # a resend time, a refusal count
        return StateSize(
            identity=identity,
            session_keys=session_keys,
            session_counters=session_counters,
            ticket=ticket,
            message_counters=_COUNTER_BYTES,
            outbox=outbox,
            dedupe_window=self.inbound.byte_size(),
        )


__all__ = [
    "DEDUPE_WINDOW",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_OUTBOX",
    "DEFAULT_RETRY_BACKOFF",
    "DEFAULT_SLEEP_DRAIN",
    "MAX_RETRY_BACKOFF",
    "RETRYABLE",
    "STATE_BOUND_EMPTY_OUTBOX",
    "TRANSITIONS",
    "ClientError",
    "ClientInput",
    "ClientState",
    "DeviceClient",
    "InboundWindow",
    "OutboxFullError",
    "StateSize",
    "initiator_factory",
]
