"""Address validation, path challenges and the anti-amplification limit (RFC 9000 §8, §9).

Until an address is validated the gateway sends it at most ``factor`` (3) times the bytes it
received from it (RFC 9000 §8.1): :class:`AddressValidator` keeps that budget per address. An
address becomes valid when the peer proves it receives there: a valid retry token, a handshake
message that depends on our previous answer (EDHOC message_3, or an authenticated record after
RESUMED), or a PATH_RESPONSE echoing our PATH_CHALLENGE (RFC 9000 §8.2). Memory is bounded: at
most ``max_addresses`` are tracked, least recent first out.

:class:`PathValidation` is one session's side of it: the challenges it awaits an answer to, the
timer that repeats an unanswered one with exponential back-off (a lost challenge or response must
not leave both ends waiting, RFC 9000 §8.2.1), and the datagrams the 3x budget holds back until
the peer sends more or is validated. While a challenge is outstanding, data leaves
:data:`PROBE_RESERVE` bytes of the budget unspent, so that the timer can always probe again.
The gateway (gateway_side.py) seals and sends what these decide; nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass

AMPLIFICATION_FACTOR = 3  # RFC 9000 §8.1
DEFAULT_MAX_ADDRESSES = 65536  # addresses whose byte counts are remembered
CHALLENGE_LENGTH = 8  # RFC 9000 §19.17
DEFAULT_MAX_HELD = 16  # datagrams held back per session by the amplification limit
DEFAULT_CHALLENGE_INTERVAL = 1.0  # seconds between PATH_CHALLENGEs to an unvalidated address
MAX_CHALLENGE_INTERVAL = 60.0  # back-off cap of the PATH_CHALLENGE timer (as MAX_RTO)
PROBE_RESERVE = 64  # bytes of 3x budget kept for PATH_CHALLENGEs: two probes of <= 32 bytes
MAX_OUTSTANDING_CHALLENGES = 3  # recent challenges whose response is still accepted


@dataclass(slots=True)
class AddressState:
    """Bytes exchanged with one address, and whether it is validated."""

    received: int = 0
    sent: int = 0
    validated: bool = False


class AddressValidator:
    """Per-address byte accounting and the 3x limit."""

    def __init__(
        self, *, factor: int = AMPLIFICATION_FACTOR, max_addresses: int = DEFAULT_MAX_ADDRESSES
    ) -> None:
        self.factor = factor
        self.max_addresses = max_addresses
        self._addresses: OrderedDict[Hashable, AddressState] = OrderedDict()

    def _state(self, address: Hashable) -> AddressState:
        """The state of ``address``, now the most recently used (created if unknown)."""
        addresses = self._addresses
        state = addresses.get(address)
        if state is not None:
            addresses.move_to_end(address)
            return state
        state = addresses[address] = AddressState()
        while len(addresses) > self.max_addresses:
            addresses.popitem(last=False)
        return state

    def received(self, address: Hashable, size: int) -> None:
        """Count bytes received from ``address``."""
        self._state(address).received += size

    def may_send(self, address: Hashable, size: int) -> bool:
        """True if sending ``size`` bytes keeps within the limit."""
        state = self._state(address)
        return state.validated or state.sent + size <= self.factor * state.received

    def sent(self, address: Hashable, size: int) -> None:
        """Count bytes sent to ``address``."""
        self._state(address).sent += size

    def spend(self, address: Hashable, size: int) -> bool:
        """Count ``size`` bytes as sent to ``address`` if the limit allows; False sends nothing."""
        state = self._state(address)
        if not (state.validated or state.sent + size <= self.factor * state.received):
            return False
        state.sent += size
        return True

    def validate(self, address: Hashable) -> None:
        """Mark ``address`` as proven."""
        self._state(address).validated = True

    def is_validated(self, address: Hashable) -> bool:
        """True once ``address`` is proven."""
        state = self._addresses.get(address)
        return state is not None and state.validated


class Admission(enum.Enum):
    """What the 3x budget decided for one outgoing datagram of a session."""

    SEND = "send"  # within the budget: send it now
    HELD = "held"  # over the budget: kept by the session until the budget grows
    DROPPED = "dropped"  # over the budget and the session's held queue is full


@dataclass(slots=True)
class PathValidation:
    """One session's path: outstanding challenges, their timer, and held-back datagrams.

    Every session has one and nearly all of them sit on a validated path for good, so the
    challenges are a tuple (at most :data:`MAX_OUTSTANDING_CHALLENGES`, empty: the shared empty
    tuple) and the held datagrams a queue created only when the 3x budget first holds one back.
    """

    max_held: int = DEFAULT_MAX_HELD
    challenges: tuple[bytes, ...] = ()  # oldest first
    challenge_sent: float = 0.0
    interval: float = DEFAULT_CHALLENGE_INTERVAL  # doubles per unanswered challenge
    deadline: float | None = None  # next PATH_CHALLENGE while validation is pending
    held: deque[bytes] | None = None  # oldest first; None while nothing is held

    @property
    def pending(self) -> bool:
        """True while a challenge awaits its response."""
        return bool(self.challenges)

    def _reserve(self) -> int:
        return PROBE_RESERVE if self.challenges else 0

    def admit(self, budget: AddressValidator, address: Hashable, datagram: bytes) -> Admission:
        """Decide whether ``datagram`` to ``address`` goes now, waits, or is dropped."""
        if budget.may_send(address, len(datagram) + self._reserve()):
            return Admission.SEND
        if self.held is None:
            self.held = deque()
        if len(self.held) < self.max_held:
            self.held.append(datagram)
            return Admission.HELD
        return Admission.DROPPED

    def next_releasable(self, budget: AddressValidator, address: Hashable) -> bytes | None:
        """The oldest held datagram if it now fits the budget (the caller sends it), else None."""
        held = self.held
        if held is None:
            return None
        if held and budget.may_send(address, len(held[0]) + self._reserve()):
            datagram = held.popleft()
            if not held:
                self.held = None
            return datagram
        return None

    def challenge(self, data: bytes, now: float) -> None:
        """Record a PATH_CHALLENGE sent with ``data``; back the timer off if one was unanswered."""
        self.challenges = (*self.challenges, data)[-MAX_OUTSTANDING_CHALLENGES:]
        if self.deadline is not None:
            self.interval = min(MAX_CHALLENGE_INTERVAL, self.interval * 2)
        self.challenge_sent = now
        self.deadline = now + self.interval

    def timer_due(self, now: float) -> bool:
        """True when an unanswered challenge should be repeated."""
        return self.deadline is not None and now >= self.deadline

    def on_authenticated_record(
        self, budget: AddressValidator, address: Hashable, now: float
    ) -> bool:
        """An authenticated record came from the session's own address; True: challenge again.

        With no challenge pending, the record itself proves the path (the first record after
        RESUMED); with one pending for longer than the interval, the last may have been lost.
        """
        if budget.is_validated(address):
            return False
        if not self.challenges:
            budget.validate(address)
            return False
        return now >= self.challenge_sent + DEFAULT_CHALLENGE_INTERVAL

    def on_response(self, budget: AddressValidator, address: Hashable, data: bytes) -> bool:
        """A PATH_RESPONSE from the session's address; True if it answered one of ours."""
        if data not in self.challenges:
            return False
        self.end()
        budget.validate(address)
        return True

    def moved(self) -> None:
        """The session moved to a new address: what was held and asked for the old one is void."""
        self.held = None
        self.end()

    def end(self) -> None:
        """Stop validating: no challenge outstanding, timer off, back-off reset."""
        self.challenges = ()
        self.deadline = None
        self.interval = DEFAULT_CHALLENGE_INTERVAL
