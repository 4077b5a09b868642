"""The gateway's side: one demultiplexer over many device sessions (sans-IO).

Theory of operation. :class:`GatewaySessions` takes datagrams with their source address and
returns datagrams with their destination, events and a next deadline. An unauthenticated packet
that fails a cheap check (unknown connection id, a record's AEAD, message_3's AEAD under K_3, a
RESUME's ticket or binder) is dropped and counted and spends only a reply budget (REJECTs: per host
and global) or a per-host failure budget, never one that gates genuine work; a spent failure
budget never silences a session's (or half-open handshake's) own validated path. It routes by
packet kind:

* INITIAL (EDHOC message_1): rate-limited per host (hosts.py: IPv4 address or IPv6 /64); beyond
  that budget a stateless RETRY, and an INITIAL with a valid retry token has a budget of its own
  address, so spoofers of the host cannot lock a device out; a host
  holds at most ``max_handshakes_per_host`` half-open handshakes, and above ``retry_per_host`` of
  its own, or ``retry_threshold`` in all, an INITIAL without a valid retry token gets a stateless
  RETRY (cookies.py) and leaves no state. When the table is full, a newcomer evicts the oldest
  half-open handshake of the host holding the most, so one host cannot lock others out. A new
  handshake (gateway connection id = EDHOC C_R) answers with message_2; a repeated identical
  INITIAL gets the cached answer; a malformed one gets none.
* HANDSHAKE (message_3, by connection id): only a message_3 that decrypts spends the host's work
  budget; garbage spends a failure budget, and once that is spent only packets from the
  handshake's own address are tried; completes the handshake, the
  address is validated, the channel opens and a resumption ticket is sent in it. Garbage for a
  half-open handshake is dropped and the handshake stays (it times out if nothing valid comes).
* RESUME: ticket, binder and replay checks (tickets.py); only a verified RESUME spends the host's
  budget; answered with RESUMED, no handshake.
  The identity's previous sessions end: a device has one session.
* Protected records: by connection id to the session's channel (channel.py). Failures spend a
  per-host pre-authentication budget which, once spent, drops that host's records except those
  from a session's own validated address; the per-session limit is spent only by records that
  authenticate. An authenticated
  record that is the newest of its space from a new address moves the session there (NAT
  rebinding, RFC 9000 §9.3) and starts path validation with a PATH_CHALLENGE. A record for an
  unknown connection id is answered with REJECT carrying that id's reset token; one for a live id
  that does not authenticate with a REJECT of the same shape carrying a decoy (resets.py), so live
  and free ids look alike from outside and only the gateway can end a device's session. New
  sessions get ids whose token was never revealed (resets.py ``ConnectionIds``).

Acknowledgements (docs/protocol.md §3.5): with ``GatewayConfig.hold_acknowledgements`` a record
that carried operations is acknowledged only once the application called :meth:`release` for
the ``receipt`` of every :class:`~gateway.session.events.OperationReceived` it produced, so the
device may forget what the gateway acknowledged. Without it (the default, for callers that never
release) records are acknowledged on receipt. Both hold on streams (TCP) too, where acks are
cumulative and sent only when they advance; a stream session whose hold expired is told at once
with the REJECT that a retransmission would have drawn on UDP.

Every datagram to an address not yet validated passes the 3x anti-amplification check
(mobility.py); what would exceed it is held (bounded) until the peer sends more or is validated.
Bad datagrams are dropped and counted by :class:`DropReason`; nothing a peer sends raises.

Session states and their transition table (:data:`TRANSITIONS`): HANDSHAKING -> ESTABLISHED
(message_3 verified) -> CLOSED; RESUMED sessions start ESTABLISHED. Unauthenticated packets that
do not fit the state are dropped (counted UNEXPECTED) rather than failing the session, so that a
spoofed packet cannot end someone else's session.
"""

from __future__ import annotations

import functools
import hashlib
import heapq
import random
import secrets
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from gateway import wire
from gateway.session.channel import ACKNOWLEDGEMENT_HOLD_EXPIRED, ChannelState, SecureChannel
from gateway.session.codec import (
    Close,
    MessageCodec,
    NewTicket,
    PathChallenge,
    PathResponse,
)
from gateway.session.cookies import RetryTokens
from gateway.session.errors import (
    DropReason,
    DuplicateRecordError,
    LocalSessionError,
    RecordRejectedError,
    RemoteSessionError,
)
from gateway.session.events import (
    DeviceSessionEstablished,
    DeviceSessionResumed,
    Event,
    PathMigrated,
    PathValidated,
    SessionClosed,
)
from gateway.session.gateway_config import (
    TRANSITIONS,
    GatewayConfig,
    GatewayStatistics,
    Input,
    SessionState,
)
from gateway.session.handshake import HandshakeFailedError, ResponderHandshake
from gateway.session.hosts import host_of as _parse_host
from gateway.session.mobility import CHALLENGE_LENGTH, AddressValidator, Admission, PathValidation
from gateway.session.packets import (
    HandshakeKind,
    HandshakePacket,
    ProtectedRecord,
    RejectReason,
    parse_initial_body_untrusted,
    parse_packet_untrusted,
)
from gateway.session.ratelimit import RateLimiter
from gateway.session.record import MIN_TAG_LENGTH, SUITE_AEAD, RecordProtection, SessionSecrets
from gateway.session.resets import ConnectionIds, ResetTokens
from gateway.session.tickets import (
    NONCE_LENGTH,
    ResumeRequest,
    TicketKeyRing,
    TicketRejectedError,
    rejected_proof,
    resumed_answer,
    resumed_master_secret,
)

# Addresses whose host key is remembered: parsing an IP literal (ipaddress) costs more than the
# rest of a packet's routing, and each datagram needs the host of its source. A sender of many
# addresses only churns the cache: each miss costs the parse it costs without one.
HOST_CACHE_SIZE = 4096


@functools.lru_cache(maxsize=HOST_CACHE_SIZE)
def host_of(address: Hashable) -> Hashable:
    """hosts.host_of, remembered for the last :data:`HOST_CACHE_SIZE` addresses (it is pure)."""
    return _parse_host(address)


@dataclass
class _Session:
    connection_id: bytes
    address: Hashable
    state: SessionState
    created: float
    last_activity: float
    host: Hashable = None  # the host (hosts.py) whose half-open handshake this is
    handshake: ResponderHandshake | None = None
    channel: SecureChannel | None = None
    peer_identity: bytes = b""
    initial_key: tuple[Hashable, bytes] | None = None
    cached_reply: bytes | None = None
    path: PathValidation = field(default_factory=PathValidation)


class GatewaySessions:
    """Every device session of one gateway endpoint (UDP socket or TCP listener)."""

    def __init__(
        self,
        *,
        handshake_factory: Callable[[bytes], ResponderHandshake],
        codec: MessageCodec,
        ticket_keys: TicketKeyRing,
        config: GatewayConfig | None = None,
        rng: random.Random | None = None,
        random_bytes: Callable[[int], bytes] = secrets.token_bytes,
    ) -> None:
        self.config = config or GatewayConfig()
        self._random_bytes = random_bytes  # connection ids, nonces, path challenges
        self.codec = codec
        self.ticket_keys = ticket_keys
        self._handshake_factory = handshake_factory
        self._rng = rng or random.Random()  # noqa: S311 - timer jitter only
        self._sessions: dict[bytes, _Session] = {}
        self._initials: dict[tuple[Hashable, bytes], bytes] = {}
        self._resume_answers: dict[bytes, tuple[bytes, bytes]] = {}  # request -> (cid, answer)
        self._handshaking = 0
        self._host_handshakes: dict[Hashable, deque[bytes]] = {}  # host -> half-open, oldest first
        self._by_identity: dict[bytes, set[bytes]] = {}  # identity -> its established sessions
        self._addresses = AddressValidator()
        self._tokens = RetryTokens()
        self._resets = ResetTokens(ticket_keys.reset_key)
        self._ids = ConnectionIds(self.config.cid_length, random_bytes)
        self._validated_limit = RateLimiter(
            rate=self.config.validated_rate, burst=self.config.validated_burst
        )
        self._reject_limit = RateLimiter(
            rate=self.config.reject_rate, burst=self.config.reject_burst
        )
        self._global_reject_limit = RateLimiter(
            rate=self.config.global_reject_rate, burst=self.config.global_reject_burst, max_keys=1
        )
        self._address_limit = RateLimiter(
            rate=self.config.address_rate, burst=self.config.address_burst
        )
        self._handshake_limit = RateLimiter(
            rate=self.config.handshake_packet_rate, burst=self.config.handshake_packet_burst
        )
        self._handshake_failure_limit = RateLimiter(
            rate=self.config.handshake_packet_rate, burst=self.config.handshake_packet_burst
        )
        self._host_record_limit = RateLimiter(
            rate=self.config.host_record_rate, burst=self.config.host_record_burst
        )
        # A genuine record holds at least one plaintext byte and an 8-byte tag; anything shorter
        # gets no answer, which also keeps every REJECT within 3x of the record it answers.
        self._min_record = 1 + self.config.cid_length + 1 + 1 + MIN_TAG_LENGTH
        self._device_limit = RateLimiter(
            rate=self.config.device_rate, burst=self.config.device_burst
        )
        self._outgoing: list[tuple[bytes, Hashable]] = []
        self._events: list[tuple[bytes, Event]] = []
        self._dirty: set[bytes] = set()
        self._timers: list[tuple[float, bytes]] = []
        self._scheduled: dict[bytes, float] = {}
        self._dropped: dict[str, int] = {reason.value: 0 for reason in DropReason}
        self._counters = {
            "datagrams_received": 0,
            "datagrams_sent": 0,
            "bytes_received": 0,
            "bytes_sent": 0,
            "retries_sent": 0,
            "handshakes_completed": 0,
            "resumptions": 0,
            "acknowledgements_overdue": 0,
            "replaced": 0,
            "rejects_sent": 0,
            "handshakes_evicted": 0,
            "migrations": 0,
            "amplification_held": 0,
        }

    # ---- public API ----------------------------------------------------------------------------

    def receive_datagram(self, data: bytes, address: Hashable, now: float) -> None:
        """Process one datagram (or one deframed stream packet) from ``address``. Never raises."""
        self._counters["datagrams_received"] += 1
        self._counters["bytes_received"] += len(data)
        self._addresses.received(address, len(data))
        try:
            packet = parse_packet_untrusted(data, cid_length=self.config.cid_length)
            if isinstance(packet, ProtectedRecord):
                self._on_record(packet, address, now)
            elif packet.kind is HandshakeKind.INITIAL:
                self._on_initial(packet, address, now)
            elif packet.kind is HandshakeKind.HANDSHAKE:
                self._on_handshake(packet, address, now)
            elif packet.kind is HandshakeKind.RESUME:
                self._on_resume(packet, data, address, now)
            else:
                self._drop(DropReason.UNEXPECTED)
        except RemoteSessionError as exc:
            self._drop(exc.reason)

    @property
    def connection_ids(self) -> ConnectionIds:
        """The connection-id allocator (which ids are in use, free, or revealed)."""
        return self._ids

    def mark_validated(self, address: Hashable) -> None:
        """Declare an address proven (stream transports: the TCP handshake did it)."""
        self._addresses.validate(address)

    def address_validated(self, address: Hashable) -> bool:
        """True once ``address`` is proven."""
        return self._addresses.is_validated(address)

    def send_operation(self, connection_id: bytes, message: wire.Message) -> int:
        """Queue a wire message to a device; returns the operation id."""
        session = self._sessions.get(connection_id)
        if session is None or session.channel is None:
            raise LocalSessionError("no established session with that connection id")
        self._dirty.add(connection_id)
        return session.channel.send_operation(message)

    def release(self, connection_id: bytes, receipt: int, now: float) -> None:
        """The operation delivered with ``receipt`` is durable; acknowledge its record once every
        operation in it is. Idempotent; unknown sessions and receipts are ignored."""
        session = self._sessions.get(connection_id)
        if session is None or session.channel is None:
            return
        session.channel.release(receipt, now)
        self._dirty.add(connection_id)

    def close_session(self, connection_id: bytes, now: float) -> None:
        """End a session (tells the device, best effort)."""
        session = self._sessions.get(connection_id)
        if session is None:
            return
        if session.channel is not None and session.channel.state is ChannelState.OPEN:
            session.channel.send_control(Close(0), reliable=False)
            self._flush(session, now)
        self._end(session, Input.CLOSE, "closed by the gateway")

    def sessions(self) -> dict[bytes, bytes]:
        """Established sessions: connection id -> peer identity."""
        return {
            cid: s.peer_identity
            for cid, s in self._sessions.items()
            if s.state is SessionState.ESTABLISHED
        }

    def session_address(self, connection_id: bytes) -> Hashable | None:
        """The current address of a session."""
        session = self._sessions.get(connection_id)
        return session.address if session is not None else None

    def datagrams_to_send(self, now: float) -> list[tuple[bytes, Hashable]]:
        """Everything due to be sent now, with destinations."""
        for connection_id in list(self._dirty):
            session = self._sessions.get(connection_id)
            if session is not None:
                self._flush(session, now)
        self._dirty.clear()
        out, self._outgoing = self._outgoing, []
        return out

    def events(self) -> list[tuple[bytes, Event]]:
        """Events since the last call, each with its session's connection id."""
        events, self._events = self._events, []
        return events

    def next_deadline(self) -> float | None:
        """The earliest time :meth:`handle_timeout` has work."""
        for connection_id in list(self._dirty):
            self._reschedule(connection_id)
        while self._timers:
            deadline, connection_id = self._timers[0]
            if self._scheduled.get(connection_id) == deadline:
                return deadline
            heapq.heappop(self._timers)
        return None

    def handle_timeout(self, now: float) -> None:
        """Run every expired timer."""
        while self._timers and self._timers[0][0] <= now:
            deadline, connection_id = heapq.heappop(self._timers)
            if self._scheduled.get(connection_id) != deadline:
                continue
            del self._scheduled[connection_id]
            session = self._sessions.get(connection_id)
            if session is None:
                continue
            if session.state is SessionState.HANDSHAKING:
                if now >= session.created + self.config.handshake_timeout:
                    self._end(session, Input.TIMEOUT, "handshake timed out")
                    continue
            elif now >= session.last_activity + self.config.idle_timeout:
                self._end(session, Input.TIMEOUT, "idle")
                continue
            if session.channel is not None:
                overdue = False
                for event in session.channel.handle_timeout(now):
                    if isinstance(event, SessionClosed) and event.reason == (
                        ACKNOWLEDGEMENT_HOLD_EXPIRED
                    ):
                        self._counters["acknowledgements_overdue"] += 1
                        overdue = True
                    self._emit_event(session, event)
                if session.channel.state is not ChannelState.OPEN:
                    self._end(session, Input.CLOSE, "channel ended")
                    if overdue and self.config.channel.stream:
                        # No retransmission on a stream would draw the REJECT that tells the
                        # device (docs/protocol.md §3.5): send it now, so the device resumes
                        # and sends again what it holds.
                        self._reject_connection_id(session.address, connection_id, now)
                    continue
            if session.path.timer_due(now):
                self._challenge(session, now)  # unanswered: probe again (RFC 9000 §8.2.1)
            self._dirty.add(connection_id)

    def statistics(self) -> GatewayStatistics:
        """A frozen snapshot of the counters."""
        # Summed from the live counters: a snapshot per channel cost O(sessions) objects for
        # every scrape and status sample, most of a core at 10k sessions.
        established = retransmissions = held = 0
        for session in self._sessions.values():
            established += session.state is SessionState.ESTABLISHED
            channel = session.channel
            if channel is not None:
                retransmissions += channel.retransmission_count
                held += channel.records_held
        return GatewayStatistics(
            handshakes_in_progress=self._handshaking,
            sessions=established,
            retransmissions=retransmissions,
            acknowledgements_held=held,
            dropped=dict(self._dropped),
            **self._counters,
        )

    # ---- internals: output ---------------------------------------------------------------------

    def _drop(self, reason: DropReason) -> None:
        self._dropped[reason.value] += 1

    def _send(self, data: bytes, address: Hashable) -> bool:
        if not self._addresses.spend(address, len(data)):
            self._drop(DropReason.AMPLIFICATION_LIMITED)
            return False
        self._outgoing.append((data, address))
        self._counters["datagrams_sent"] += 1
        self._counters["bytes_sent"] += len(data)
        return True

    def _send_session(self, session: _Session, data: bytes) -> None:
        """Send what the 3x budget admits (datagrams need no order); the rest waits."""
        admission = session.path.admit(self._addresses, session.address, data)
        if admission is Admission.SEND:
            self._send(data, session.address)
        elif admission is Admission.HELD:
            self._counters["amplification_held"] += 1
        else:
            self._drop(DropReason.AMPLIFICATION_LIMITED)

    def _release_held(self, session: _Session) -> None:
        address = session.address
        while (datagram := session.path.next_releasable(self._addresses, address)) is not None:
            self._send(datagram, address)

    def _flush(self, session: _Session, now: float) -> None:
        channel = session.channel
        if channel is None:
            return
        for datagram in channel.datagrams_to_send(now):
            self._send_session(session, datagram)
        for event in channel.take_events():
            self._emit_event(session, event)
        self._reschedule(session.connection_id)

    def _reschedule(self, connection_id: bytes) -> None:
        session = self._sessions.get(connection_id)
        if session is None:
            return
        if session.state is SessionState.HANDSHAKING:
            deadline: float | None = session.created + self.config.handshake_timeout
        else:
            deadline = session.last_activity + self.config.idle_timeout
            if session.channel is not None:
                channel_deadline = session.channel.next_deadline()
                if channel_deadline is not None:
                    deadline = min(deadline, channel_deadline)
            if session.path.deadline is not None:
                deadline = min(deadline, session.path.deadline)
        if deadline is not None and self._scheduled.get(connection_id) != deadline:
            self._scheduled[connection_id] = deadline
            heapq.heappush(self._timers, (deadline, connection_id))

    def _emit_event(self, session: _Session, event: Event) -> None:
        self._events.append((session.connection_id, event))

    def _end(self, session: _Session, what: Input, reason: str) -> None:
        next_state = TRANSITIONS.get((session.state, what))
        if next_state is None:
            raise LocalSessionError(f"{what.value} not allowed in {session.state.value}")
        if session.state is SessionState.HANDSHAKING:
            self._handshaking -= 1
            self._forget_half_open(session)
        if session.initial_key is not None:
            self._initials.pop(session.initial_key, None)
        same_identity = self._by_identity.get(session.peer_identity)
        if same_identity is not None:
            same_identity.discard(session.connection_id)
            if not same_identity:
                del self._by_identity[session.peer_identity]
        session.state = next_state
        if session.channel is not None:
            session.channel.close()
        self._sessions.pop(session.connection_id, None)
        self._ids.release(session.connection_id)
        self._scheduled.pop(session.connection_id, None)
        self._emit_event(session, SessionClosed(reason))

    def _forget_half_open(self, session: _Session) -> None:
        pending = self._host_handshakes.get(session.host)
        if pending is not None:
            if session.connection_id in pending:
                pending.remove(session.connection_id)
            if not pending:
                del self._host_handshakes[session.host]

    def _new_connection_id(self) -> bytes:
        """A free connection id whose reset token was never revealed, while any is left."""
        return self._ids.allocate()

    def _reply_allowed(self, address: Hashable, now: float) -> bool:
        """The reply budget (REJECTs, RETRYs beyond the INITIAL budget): per host, then global.

        Unauthenticated packets that fail a cheap check spend only this budget, never one that
        gates genuine work (docs/security.md).
        """
        return self._reject_limit.allow(host_of(address), now) and (
            self._global_reject_limit.allow(None, now)
        )

    def _reject(self, address: Hashable, body: bytes, now: float) -> bool:
        packet = HandshakePacket(HandshakeKind.REJECT, b"", body).encode()
        if self._reply_allowed(address, now) and self._send(packet, address):
            self._counters["rejects_sent"] += 1
            return True
        return False

    def _reject_connection_id(self, address: Hashable, connection_id: bytes, now: float) -> None:
        """REJECT(unknown connection): the reset token of a free id, else the decoy.

        A free id counts as revealed only when the REJECT carrying its token was sent.
        """
        free = connection_id not in self._sessions
        token = (
            self._resets.token(connection_id, self._ids.epoch(connection_id))
            if free
            else self._resets.decoy(connection_id)
        )
        sent = self._reject(address, bytes([RejectReason.UNKNOWN_CONNECTION]) + token, now)
        if sent and free:
            self._ids.reveal(connection_id)

    def _replace_sessions_of(self, identity: bytes, keep: bytes) -> None:
        """End the other sessions of ``identity``: a device holds one session at a time.

        Called when a handshake or a resumption completes, both authenticated by the device's
        key and fresh, so nothing an attacker can replay ends a session here."""
        for connection_id in list(self._by_identity.get(identity, ())):
            old = self._sessions.get(connection_id)
            if connection_id != keep and old is not None:
                self._counters["replaced"] += 1
                self._end(old, Input.CLOSE, "replaced by a newer session")
        self._by_identity.setdefault(identity, set()).add(keep)

    def _admit_handshake(self, host: Hashable) -> None:
        """Make room for a half-open handshake of ``host``, or raise.

        At capacity, the oldest half-open handshake of the host holding the most goes, if that
        host holds more than ``host`` would after admission: whoever holds the table gives way
        to a newcomer, and the cost of holding it grows with every host the holder needs.
        """
        if self._handshaking < self.config.max_handshakes:
            return
        own = len(self._host_handshakes.get(host, ()))
        biggest = max(self._host_handshakes, key=lambda h: len(self._host_handshakes[h]))
        if len(self._host_handshakes[biggest]) <= own + 1:
            raise RemoteSessionError("handshake capacity reached", reason=DropReason.RATE_LIMITED)
        victim = self._sessions.get(self._host_handshakes[biggest][0])
        if victim is None:  # pragma: no cover - the index and the table change together
            raise LocalSessionError("half-open index out of step")
        self._counters["handshakes_evicted"] += 1
        self._end(victim, Input.CLOSE, "evicted for another host's handshake")

    # ---- internals: handshake ------------------------------------------------------------------

    def _on_initial(self, packet: HandshakePacket, address: Hashable, now: float) -> None:
        token, message_1 = parse_initial_body_untrusted(packet.body)
        key = (address, hashlib.sha256(message_1).digest())
        existing = self._initials.get(key)
        if existing is not None:  # the device resent message_1: our message_2 was lost
            session = self._sessions.get(existing)
            if session is not None and session.cached_reply is not None:
                self._send(session.cached_reply, address)
            self._drop(DropReason.REPLAYED)
            return
        host = host_of(address)
        token_valid = bool(token) and self._tokens.valid(token, address, now)
        if token_valid:
            # The address is proven: its own budget, which spoofers of its host cannot spend.
            if not self._validated_limit.allow(address, now):
                raise RemoteSessionError("INITIAL rate exceeded", reason=DropReason.RATE_LIMITED)
            self._addresses.validate(address)
        elif token:
            raise RemoteSessionError("invalid retry token", reason=DropReason.COOKIE_REQUIRED)
        elif not self._address_limit.allow(host, now):
            # Over the host's budget (perhaps spent by spoofers): a stateless RETRY, which only
            # a sender that reads this address's datagrams can echo.
            if not self._reply_allowed(address, now):
                raise RemoteSessionError("INITIAL rate exceeded", reason=DropReason.RATE_LIMITED)
            self._send_retry(address, now)
            raise RemoteSessionError("INITIAL rate exceeded", reason=DropReason.COOKIE_REQUIRED)
        validated = token_valid or self._addresses.is_validated(address)
        held_by_host = len(self._host_handshakes.get(host, ()))
        if held_by_host >= self.config.max_handshakes_per_host:
            raise RemoteSessionError("host holds its share", reason=DropReason.RATE_LIMITED)
        if not validated and (
            self._handshaking >= self.config.retry_threshold
            or held_by_host >= self.config.retry_per_host
        ):
            self._send_retry(address, now)
            raise RemoteSessionError("under load: retry sent", reason=DropReason.COOKIE_REQUIRED)
        self._admit_handshake(host)
        if len(self._sessions) >= self.config.max_sessions + self.config.max_handshakes:
            raise RemoteSessionError("session capacity reached", reason=DropReason.RATE_LIMITED)
        connection_id = self._new_connection_id()
        handshake = self._handshake_factory(connection_id)
        try:
            step = handshake.receive(message_1)
        except HandshakeFailedError as exc:
            if exc.reply is not None:  # only the suite error: the device must choose again
                self._send(
                    HandshakePacket(HandshakeKind.HANDSHAKE, b"", exc.reply).encode(), address
                )
            raise
        session = _Session(
            connection_id,
            address,
            SessionState.HANDSHAKING,
            now,
            now,
            handshake=handshake,
            path=PathValidation(max_held=self.config.max_held),
        )
        session.initial_key = key
        session.host = host
        self._sessions[connection_id] = session
        self._initials[key] = connection_id
        self._handshaking += 1
        self._host_handshakes.setdefault(host, deque()).append(connection_id)
        if step.reply is not None:
            reply = HandshakePacket(HandshakeKind.HANDSHAKE, connection_id, step.reply).encode()
            session.cached_reply = reply
            self._send(reply, address)
        self._reschedule(connection_id)

    def _send_retry(self, address: Hashable, now: float) -> None:
        retry = HandshakePacket(HandshakeKind.RETRY, b"", self._tokens.issue(address, now))
        if self._send(retry.encode(), address):
            self._counters["retries_sent"] += 1

    def _on_handshake(self, packet: HandshakePacket, address: Hashable, now: float) -> None:
        session = self._sessions.get(packet.connection_id)
        if session is None:
            raise RemoteSessionError("unknown handshake", reason=DropReason.UNKNOWN_CONNECTION)
        if session.state is not SessionState.HANDSHAKING or session.handshake is None:
            raise RemoteSessionError("handshake already complete", reason=DropReason.REPLAYED)
        host = host_of(address)
        # Failures (garbage) spend the host's failure budget; once it is spent, only packets
        # from the handshake's own address are still tried (one cheap AEAD each).
        if address != session.address and not self._handshake_failure_limit.has(host, now):
            raise RemoteSessionError("HANDSHAKE rate exceeded", reason=DropReason.RATE_LIMITED)
        if not self._handshake_limit.has(host, now):
            raise RemoteSessionError("HANDSHAKE rate exceeded", reason=DropReason.RATE_LIMITED)
        try:
            step = session.handshake.receive(packet.body)
        except HandshakeFailedError as exc:
            # Anyone who saw C_R can send this: drop it and keep the handshake, which completes
            # with the genuine message_3 or times out (a forger never learns which). Only a
            # message_3 that decrypted under K_3 (expensive checks ran) spends the work budget.
            if exc.authentic:
                self._handshake_limit.allow(host, now)
            else:
                self._handshake_failure_limit.allow(host, now)
            if not exc.alive:
                self._end(session, Input.CLOSE, "handshake failed")
            raise
        self._handshake_limit.allow(host, now)
        if step.reply is not None:
            self._send(
                HandshakePacket(
                    HandshakeKind.HANDSHAKE, session.connection_id, step.reply
                ).encode(),
                address,
            )
        if not step.complete:
            return
        handshake = session.handshake
        if session.address == address:
            self._addresses.validate(address)  # message_3 depends on the message_2 sent there
        session.address = address
        session.peer_identity = handshake.peer_identity
        self._open_channel(session, handshake.master_secret(), handshake.suite, now)
        if session.initial_key is not None:
            self._initials.pop(session.initial_key, None)
            session.initial_key = None
        self._handshaking -= 1
        self._forget_half_open(session)
        session.state = TRANSITIONS[(session.state, Input.HANDSHAKE_COMPLETED)]
        self._replace_sessions_of(session.peer_identity, session.connection_id)
        session.handshake = None
        session.cached_reply = None
        self._counters["handshakes_completed"] += 1
        self._emit_event(
            session, DeviceSessionEstablished(session.connection_id, session.peer_identity)
        )
        self._flush(session, now)

    def _open_channel(self, session: _Session, master: bytes, suite: int, now: float) -> None:
        aead = SUITE_AEAD.get(suite)
        if aead is None:
            raise RemoteSessionError("suite without a record AEAD", reason=DropReason.UNEXPECTED)
        secrets_ = SessionSecrets.from_master(master, aead, is_gateway=True)
        session.channel = SecureChannel(
            RecordProtection(secrets_),
            codec=self.codec,
            peer_connection_id=b"",
            config=self.config.channel,
            rng=self._rng,
            now=now,
            hold_acknowledgements=self.config.hold_acknowledgements,
            max_acknowledgement_hold=self.config.max_acknowledgement_hold,
        )
        ticket, resumption_secret = self.ticket_keys.issue(
            session.peer_identity, suite, now, self.config.ticket_lifetime
        )
        reset_token = self._resets.token(
            session.connection_id, self._ids.epoch(session.connection_id)
        )
        session.channel.send_control(
            NewTicket(ticket, resumption_secret, self.config.ticket_lifetime, reset_token),
            reliable=True,
        )

    # ---- internals: resumption -----------------------------------------------------------------

    def _on_resume(
        self, packet: HandshakePacket, raw: bytes, address: Hashable, now: float
    ) -> None:
        request = ResumeRequest.parse_untrusted(packet, raw)
        cached = self._resume_answers.get(raw)
        if cached is not None:  # our RESUMED was lost (or this is a replay): same answer, no state
            self._send(cached[1], address)
            raise RemoteSessionError("repeated RESUME", reason=DropReason.REPLAYED)
        if not self._address_limit.has(host_of(address), now):
            raise RemoteSessionError("RESUME rate exceeded", reason=DropReason.RATE_LIMITED)
        opened = self.ticket_keys.open_untrusted(request.ticket, now)
        request.verify(opened.resumption_secret)
        # Only a RESUME whose ticket opened and whose binder verified spends the budget.
        self._address_limit.allow(host_of(address), now)
        try:
            self.ticket_keys.mark_used(opened, now)
        except TicketRejectedError:
            # The binder verified, so the device holds the secret: REJECT(2) proves the gateway
            # does too (tickets.rejected_proof), and only then does the device give up the ticket.
            self._reject(
                address,
                bytes([RejectReason.TICKET_REJECTED])
                + rejected_proof(request, opened.resumption_secret),
                now,
            )
            raise
        if len(self._sessions) >= self.config.max_sessions + self.config.max_handshakes:
            raise RemoteSessionError("session capacity reached", reason=DropReason.RATE_LIMITED)
        connection_id = self._new_connection_id()
        gateway_nonce = self._random_bytes(NONCE_LENGTH)
        answer = resumed_answer(request, opened.resumption_secret, connection_id, gateway_nonce)
        master = resumed_master_secret(
            opened.resumption_secret, request.device_nonce, gateway_nonce
        )
        session = _Session(
            connection_id,
            address,
            SessionState.ESTABLISHED,
            now,
            now,
            path=PathValidation(max_held=self.config.max_held),
        )
        session.peer_identity = opened.identity
        self._sessions[connection_id] = session
        self._resume_answers[raw] = (connection_id, answer)
        if len(self._resume_answers) > self.config.max_handshakes:
            self._resume_answers.pop(next(iter(self._resume_answers)))
        self._send(answer, address)
        self._open_channel(session, master, opened.suite, now)
        self._counters["resumptions"] += 1
        self._replace_sessions_of(opened.identity, connection_id)
        self._emit_event(session, DeviceSessionResumed(connection_id, opened.identity))
        self._flush(session, now)

    # ---- internals: records --------------------------------------------------------------------

    def _on_record(self, record: ProtectedRecord, address: Hashable, now: float) -> None:
        connection_id = record.header.connection_id
        if len(record.header_bytes) + len(record.ciphertext) < self._min_record:
            raise RemoteSessionError("record shorter than any genuine one")
        stream = self.config.channel.stream  # TCP has its own flow control; a gap would be fatal
        host = host_of(address)
        session = self._sessions.get(connection_id)
        own_path = (
            session is not None
            and session.channel is not None
            and address == session.address
            and self._addresses.is_validated(address)
        )
        # The pre-auth host budget is spent by failures only; once spent it silences REJECTs
        # and migration candidates of that host, never a session's own validated path.
        if not stream and not own_path and not self._host_record_limit.has(host, now):
            raise RemoteSessionError("host record rate exceeded", reason=DropReason.RATE_LIMITED)
        if session is None or session.channel is None:
            # A half-open handshake's id is not live for records yet: answer as for a free id,
            # but with the decoy, whose token nobody will ever hold.
            if not stream:
                self._host_record_limit.allow(host, now)
            self._reject_connection_id(address, connection_id, now)
            raise RemoteSessionError("unknown connection id", reason=DropReason.UNKNOWN_CONNECTION)
        if not stream and not self._device_limit.has(connection_id, now):
            raise RemoteSessionError("device record rate exceeded", reason=DropReason.RATE_LIMITED)
        try:
            result = session.channel.receive_record(record, now)
        except DuplicateRecordError:
            raise  # authenticated: the device's own retransmission
        except RecordRejectedError:
            if not stream:
                self._host_record_limit.allow(host, now)
            self._reject_connection_id(address, connection_id, now)
            raise
        finally:
            self._dirty.add(session.connection_id)
            if session.channel.state is not ChannelState.OPEN:
                self._end(session, Input.CLOSE, "protocol violation")
            self._release_held(session)
        if not stream:
            self._device_limit.allow(connection_id, now)
        session.last_activity = now
        if address != session.address:
            if result.newest:
                self._migrate(session, address, now)
        elif session.path.on_authenticated_record(self._addresses, address, now):
            self._challenge(session, now)
        for event in result.events:
            self._emit_event(session, event)
        for item in result.control:
            if isinstance(item, PathChallenge):
                session.channel.send_control(PathResponse(item.data), reliable=False)
            elif isinstance(item, PathResponse):
                if address == session.address and session.path.on_response(
                    self._addresses, address, item.data
                ):
                    self._release_held(session)
                    self._emit_event(session, PathValidated(address))
            elif isinstance(item, Close):
                self._end(session, Input.CLOSE, "closed by the device")
                return

    def _migrate(self, session: _Session, address: Hashable, now: float) -> None:
        """RFC 9000 §9.3: move to the new address, validate it, respect the 3x limit meanwhile."""
        old = session.address
        session.address = address
        session.path.moved()
        self._counters["migrations"] += 1
        self._emit_event(session, PathMigrated(old, address))
        if not self._addresses.is_validated(address):
            self._challenge(session, now)

    def _challenge(self, session: _Session, now: float) -> None:
        """Send a fresh PATH_CHALLENGE (RFC 9000 §8.2.1) at once, ahead of held data.

        It spends the budget the data left for it (mobility.py's ``PROBE_RESERVE``); the path's
        timer repeats it with exponential back-off (as RFC 6298 §5.5 backs off a retransmission)
        until a PATH_RESPONSE arrives, so a lost challenge or response cannot stall a device that
        has nothing more to send.
        """
        if session.channel is None or session.channel.state is not ChannelState.OPEN:
            return
        data = self._random_bytes(CHALLENGE_LENGTH)
        session.path.challenge(data, now)
        self._send(session.channel.seal_probe(PathChallenge(data), now), session.address)
        self._dirty.add(session.connection_id)
