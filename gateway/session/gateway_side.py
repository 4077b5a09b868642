"""The gateway's side: one demultiplexer over many device sessions (sans-IO).

Theory of operation. :class:`GatewaySessions` takes datagrams with their source address and
returns datagrams with their destination, events and a next deadline. It routes by packet kind:

* INITIAL (EDHOC message_1): rate-limited per address; above ``retry_threshold`` handshakes in
  progress, an INITIAL without a valid retry token gets a stateless RETRY (cookies.py) and leaves
  no state; otherwise a new handshake (gateway connection id = EDHOC C_R) answers with message_2.
  A repeated identical INITIAL gets the cached answer.
* HANDSHAKE (message_3, by connection id): completes the handshake; the address is validated,
  the channel opens and a resumption ticket is sent in it.
* RESUME: ticket, binder and replay checks (tickets.py); answered with RESUMED, no handshake.
* Protected records: by connection id to the session's channel (channel.py). An authenticated
  record that is the newest of its space from a new address moves the session there (NAT
  rebinding, RFC 9000 §9.3) and starts path validation with a PATH_CHALLENGE.

Every datagram to an address not yet validated passes the 3x anti-amplification check
(mobility.py); what would exceed it is held (bounded) until the peer sends more or is validated.
Bad datagrams are dropped and counted by :class:`DropReason`; nothing a peer sends raises.

Session states and their transition table (:data:`TRANSITIONS`): HANDSHAKING -> ESTABLISHED
(message_3 verified) -> CLOSED; RESUMED sessions start ESTABLISHED. Unauthenticated packets that
do not fit the state are dropped (counted UNEXPECTED) rather than failing the session, so that a
spoofed packet cannot end someone else's session.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import secrets
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from gateway.session.channel import ChannelState, SecureChannel
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
    LocalProtocolError,
    RemoteProtocolError,
)
from gateway.session.events import (
    Event,
    PathMigrated,
    PathValidated,
    SessionClosed,
    SessionEstablished,
    SessionResumed,
)
from gateway.session.gateway_config import (
    DEFAULT_CHALLENGE_INTERVAL,
    MAX_CHALLENGE_INTERVAL,
    MAX_OUTSTANDING_CHALLENGES,
    PROBE_RESERVE,
    TRANSITIONS,
    GatewayConfig,
    GatewayStatistics,
    Input,
    SessionState,
)
from gateway.session.handshake import HandshakeFailedError, ResponderHandshake
from gateway.session.mobility import CHALLENGE_LENGTH, AddressValidator
from gateway.session.packets import (
    HandshakeKind,
    HandshakePacket,
    ProtectedRecord,
    RejectReason,
    parse_initial_body_untrusted,
    parse_packet_untrusted,
)
from gateway.session.ratelimit import RateLimiter
from gateway.session.record import SUITE_AEAD, RecordProtection, SessionSecrets
from gateway.session.tickets import (
    NONCE_LENGTH,
    ResumeRequest,
    TicketKeyRing,
    TicketRejectedError,
    resumed_answer,
    resumed_master_secret,
)


@dataclass
class _Session:
    connection_id: bytes
    address: Hashable
    state: SessionState
    created: float
    last_activity: float
    handshake: ResponderHandshake | None = None
    channel: SecureChannel | None = None
    peer_identity: bytes = b""
    initial_key: tuple[Hashable, bytes] | None = None
    cached_reply: bytes | None = None
    challenges: deque[bytes] = field(default_factory=deque)
    challenge_sent: float = 0.0
    challenge_interval: float = DEFAULT_CHALLENGE_INTERVAL  # doubles per unanswered challenge
    challenge_deadline: float | None = None  # next PATH_CHALLENGE while validation is pending
    held: deque[bytes] = field(default_factory=deque)


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
        self._addresses = AddressValidator()
        self._tokens = RetryTokens()
        self._address_limit = RateLimiter(
            rate=self.config.address_rate, burst=self.config.address_burst
        )
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
            "resumptions": 0,
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
        except RemoteProtocolError as exc:
            self._drop(exc.reason)

    def mark_validated(self, address: Hashable) -> None:
        """Declare an address proven (stream transports: the TCP handshake did it)."""
        self._addresses.validate(address)

    def address_validated(self, address: Hashable) -> bool:
        """True once ``address`` is proven."""
        return self._addresses.is_validated(address)

    def send_operation(self, connection_id: bytes, message: object) -> int:
        """Queue a wire message to a device; returns the operation id."""
        session = self._sessions.get(connection_id)
        if session is None or session.channel is None:
            raise LocalProtocolError("no established session with that connection id")
        self._dirty.add(connection_id)
        return session.channel.send_operation(message)

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
                for event in session.channel.handle_timeout(now):
                    self._emit_event(session, event)
                if session.channel.state is not ChannelState.OPEN:
                    self._end(session, Input.CLOSE, "channel ended")
                    continue
            if session.challenge_deadline is not None and now >= session.challenge_deadline:
                self._challenge(session, now)  # unanswered: probe again (RFC 9000 §8.2.1)
            self._dirty.add(connection_id)

    def statistics(self) -> GatewayStatistics:
        """A frozen snapshot of the counters."""
        retransmissions = sum(
            s.channel.statistics().retransmissions
            for s in self._sessions.values()
            if s.channel is not None
        )
        established = sum(s.state is SessionState.ESTABLISHED for s in self._sessions.values())
        return GatewayStatistics(
            handshakes_in_progress=self._handshaking,
            sessions=established,
            retransmissions=retransmissions,
            dropped=dict(self._dropped),
            **self._counters,
        )

    # ---- internals: output ---------------------------------------------------------------------

    def _drop(self, reason: DropReason) -> None:
        self._dropped[reason.value] += 1

    def _send(self, data: bytes, address: Hashable) -> bool:
        if not self._addresses.may_send(address, len(data)):
            self._drop(DropReason.AMPLIFICATION_LIMITED)
            return False
        self._addresses.sent(address, len(data))
        self._outgoing.append((data, address))
        self._counters["datagrams_sent"] += 1
        self._counters["bytes_sent"] += len(data)
        return True

    def _send_session(self, session: _Session, data: bytes) -> None:
        # Datagrams need no order: whatever fits the 3x budget goes now, the rest waits for the
        # peer to send more or to be validated. While a PATH_CHALLENGE is outstanding, data
        # leaves PROBE_RESERVE bytes of the budget unspent, so that the challenge timer can
        # always probe again (a lost challenge must not leave both ends waiting, RFC 9000 §8.2.1).
        reserve = PROBE_RESERVE if session.challenges else 0
        if not self._addresses.may_send(session.address, len(data) + reserve):
            if len(session.held) < self.config.max_held:
                session.held.append(data)
                self._counters["amplification_held"] += 1
            else:
                self._drop(DropReason.AMPLIFICATION_LIMITED)
            return
        self._send(data, session.address)

    def _release_held(self, session: _Session) -> None:
        address = session.address
        reserve = PROBE_RESERVE if session.challenges else 0
        while session.held and self._addresses.may_send(address, len(session.held[0]) + reserve):
            self._send(session.held.popleft(), address)

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
            if session.challenge_deadline is not None:
                deadline = min(deadline, session.challenge_deadline)
        if deadline is not None and self._scheduled.get(connection_id) != deadline:
            self._scheduled[connection_id] = deadline
            heapq.heappush(self._timers, (deadline, connection_id))

    def _emit_event(self, session: _Session, event: Event) -> None:
        self._events.append((session.connection_id, event))

    def _end(self, session: _Session, what: Input, reason: str) -> None:
        next_state = TRANSITIONS.get((session.state, what))
        if next_state is None:
            raise LocalProtocolError(f"{what.value} not allowed in {session.state.value}")
        if session.state is SessionState.HANDSHAKING:
            self._handshaking -= 1
        if session.initial_key is not None:
            self._initials.pop(session.initial_key, None)
        session.state = next_state
        if session.channel is not None:
            session.channel.close()
        self._sessions.pop(session.connection_id, None)
        self._scheduled.pop(session.connection_id, None)
        self._emit_event(session, SessionClosed(reason))

    def _new_connection_id(self) -> bytes:
        for _ in range(64):
            candidate = self._random_bytes(self.config.cid_length)
            if candidate not in self._sessions:
                return candidate
        raise LocalProtocolError("no free connection id")

    def _reject(self, address: Hashable, reason: RejectReason, now: float) -> None:
        if self._address_limit.allow(address, now):
            self._send(
                HandshakePacket(HandshakeKind.REJECT, b"", bytes([reason])).encode(), address
            )

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
        if not self._address_limit.allow(address, now):
            raise RemoteProtocolError("INITIAL rate exceeded", reason=DropReason.RATE_LIMITED)
        token_valid = bool(token) and self._tokens.valid(token, address, now)
        if token_valid:
            self._addresses.validate(address)
        elif token:
            raise RemoteProtocolError("invalid retry token", reason=DropReason.COOKIE_REQUIRED)
        validated = token_valid or self._addresses.is_validated(address)
        if not validated and self._handshaking >= self.config.retry_threshold:
            retry = HandshakePacket(HandshakeKind.RETRY, b"", self._tokens.issue(address, now))
            self._counters["retries_sent"] += 1
            self._send(retry.encode(), address)
            raise RemoteProtocolError("under load: retry sent", reason=DropReason.COOKIE_REQUIRED)
        if self._handshaking >= self.config.max_handshakes:
            raise RemoteProtocolError("handshake capacity reached", reason=DropReason.RATE_LIMITED)
        if len(self._sessions) >= self.config.max_sessions + self.config.max_handshakes:
            raise RemoteProtocolError("session capacity reached", reason=DropReason.RATE_LIMITED)
        connection_id = self._new_connection_id()
        handshake = self._handshake_factory(connection_id)
        try:
            step = handshake.receive(message_1)
        except HandshakeFailedError as exc:
            if exc.reply is not None:
                self._send(
                    HandshakePacket(HandshakeKind.HANDSHAKE, b"", exc.reply).encode(), address
                )
            raise
        session = _Session(
            connection_id, address, SessionState.HANDSHAKING, now, now, handshake=handshake
        )
        session.initial_key = key
        self._sessions[connection_id] = session
        self._initials[key] = connection_id
        self._handshaking += 1
        if step.reply is not None:
            reply = HandshakePacket(HandshakeKind.HANDSHAKE, connection_id, step.reply).encode()
            session.cached_reply = reply
            self._send(reply, address)
        self._reschedule(connection_id)

    def _on_handshake(self, packet: HandshakePacket, address: Hashable, now: float) -> None:
        session = self._sessions.get(packet.connection_id)
        if session is None:
            raise RemoteProtocolError("unknown handshake", reason=DropReason.UNKNOWN_CONNECTION)
        if session.state is not SessionState.HANDSHAKING or session.handshake is None:
            raise RemoteProtocolError("handshake already complete", reason=DropReason.REPLAYED)
        try:
            step = session.handshake.receive(packet.body)
        except HandshakeFailedError:
            self._end(session, Input.CLOSE, "handshake failed")
            self._reject(address, RejectReason.HANDSHAKE_FAILED, now)  # the device starts over
            raise
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
        session.state = TRANSITIONS[(session.state, Input.HANDSHAKE_COMPLETED)]
        session.handshake = None
        session.cached_reply = None
        self._emit_event(session, SessionEstablished(session.connection_id, session.peer_identity))
        self._flush(session, now)

    def _open_channel(self, session: _Session, master: bytes, suite: int, now: float) -> None:
        aead = SUITE_AEAD.get(suite)
        if aead is None:
            raise RemoteProtocolError("suite without a record AEAD", reason=DropReason.UNEXPECTED)
        secrets_ = SessionSecrets.from_master(master, aead, is_gateway=True)
        session.channel = SecureChannel(
            RecordProtection(secrets_),
            codec=self.codec,
            peer_connection_id=b"",
            config=self.config.channel,
            rng=self._rng,
            now=now,
        )
        ticket, resumption_secret = self.ticket_keys.issue(
            session.peer_identity, suite, now, self.config.ticket_lifetime
        )
        session.channel.send_control(
            NewTicket(ticket, resumption_secret, self.config.ticket_lifetime), reliable=True
        )

    # ---- internals: resumption -----------------------------------------------------------------

    def _on_resume(
        self, packet: HandshakePacket, raw: bytes, address: Hashable, now: float
    ) -> None:
        request = ResumeRequest.parse_untrusted(packet, raw)
        cached = self._resume_answers.get(raw)
        if cached is not None:  # our RESUMED was lost (or this is a replay): same answer, no state
            self._send(cached[1], address)
            raise RemoteProtocolError("repeated RESUME", reason=DropReason.REPLAYED)
        if not self._address_limit.allow(address, now):
            raise RemoteProtocolError("RESUME rate exceeded", reason=DropReason.RATE_LIMITED)
        try:
            opened = self.ticket_keys.open_untrusted(request.ticket, now)
            request.verify(opened.resumption_secret)
            self.ticket_keys.mark_used(opened, now)
        except TicketRejectedError:
            self._reject(address, RejectReason.TICKET_REJECTED, now)
            raise
        if len(self._sessions) >= self.config.max_sessions + self.config.max_handshakes:
            raise RemoteProtocolError("session capacity reached", reason=DropReason.RATE_LIMITED)
        connection_id = self._new_connection_id()
        gateway_nonce = self._random_bytes(NONCE_LENGTH)
        answer = resumed_answer(request, opened.resumption_secret, connection_id, gateway_nonce)
        master = resumed_master_secret(
            opened.resumption_secret, request.device_nonce, gateway_nonce
        )
        session = _Session(connection_id, address, SessionState.ESTABLISHED, now, now)
        session.peer_identity = opened.identity
        self._sessions[connection_id] = session
        self._resume_answers[raw] = (connection_id, answer)
        if len(self._resume_answers) > self.config.max_handshakes:
            self._resume_answers.pop(next(iter(self._resume_answers)))
        self._send(answer, address)
        self._open_channel(session, master, opened.suite, now)
        self._counters["resumptions"] += 1
        self._emit_event(session, SessionResumed(connection_id, opened.identity))
        self._flush(session, now)

    # ---- internals: records --------------------------------------------------------------------

    def _on_record(self, record: ProtectedRecord, address: Hashable, now: float) -> None:
        session = self._sessions.get(record.header.connection_id)
        if session is None:
            self._reject(address, RejectReason.UNKNOWN_CONNECTION, now)
            raise RemoteProtocolError("unknown connection id", reason=DropReason.UNKNOWN_CONNECTION)
        if session.channel is None:
            raise RemoteProtocolError("record before handshake end", reason=DropReason.UNEXPECTED)
        stream = self.config.channel.stream  # TCP has its own flow control; a gap would be fatal
        if not stream and not self._device_limit.allow(session.connection_id, now):
            raise RemoteProtocolError("device record rate exceeded", reason=DropReason.RATE_LIMITED)
        try:
            result = session.channel.receive_record(record, now)
        finally:
            self._dirty.add(session.connection_id)
            if session.channel.state is not ChannelState.OPEN:
                self._end(session, Input.CLOSE, "protocol violation or integrity limit")
            self._release_held(session)
        session.last_activity = now
        if address != session.address:
            if result.newest:
                self._migrate(session, address, now)
        elif not self._addresses.is_validated(address):
            if not session.challenges:
                self._addresses.validate(address)  # first authenticated record after RESUMED
            elif now >= session.challenge_sent + DEFAULT_CHALLENGE_INTERVAL:
                self._challenge(session, now)  # the last one may have been lost (RFC 9000 §8.2.1)
        for event in result.events:
            self._emit_event(session, event)
        for item in result.control:
            if isinstance(item, PathChallenge):
                session.channel.send_control(PathResponse(item.data), reliable=False)
            elif isinstance(item, PathResponse):
                if item.data in session.challenges and address == session.address:
                    self._end_validation(session)
                    self._addresses.validate(address)
                    self._release_held(session)
                    self._emit_event(session, PathValidated(address))
            elif isinstance(item, Close):
                self._end(session, Input.CLOSE, "closed by the device")
                return

    def _migrate(self, session: _Session, address: Hashable, now: float) -> None:
        """RFC 9000 §9.3: move to the new address, validate it, respect the 3x limit meanwhile."""
        old = session.address
        session.address = address
        session.held.clear()
        self._end_validation(session)
        self._counters["migrations"] += 1
        self._emit_event(session, PathMigrated(old, address))
        if not self._addresses.is_validated(address):
            self._challenge(session, now)

    def _end_validation(self, session: _Session) -> None:
        session.challenges.clear()
        session.challenge_deadline = None
        session.challenge_interval = DEFAULT_CHALLENGE_INTERVAL

    def _challenge(self, session: _Session, now: float) -> None:
        """Send a fresh PATH_CHALLENGE (RFC 9000 §8.2.1); keep the last few acceptable.

        The challenge goes out at once, ahead of held data, from the budget the data left for
        it (:data:`PROBE_RESERVE`). Until a PATH_RESPONSE arrives a timer repeats it with
        exponential back-off (as RFC 6298 §5.5 backs off a retransmission), so a lost challenge
        or response cannot stall a device that has nothing more to send.
        """
        if session.channel is None or session.channel.state is not ChannelState.OPEN:
            return
        data = self._random_bytes(CHALLENGE_LENGTH)
        session.challenges.append(data)
        while len(session.challenges) > MAX_OUTSTANDING_CHALLENGES:
            session.challenges.popleft()
        if session.challenge_deadline is not None:
            session.challenge_interval = min(MAX_CHALLENGE_INTERVAL, session.challenge_interval * 2)
        session.challenge_sent = now
        session.challenge_deadline = now + session.challenge_interval
        self._send(session.channel.seal_probe(PathChallenge(data), now), session.address)
        self._dirty.add(session.connection_id)
