"""Address validation and the anti-amplification limit (RFC 9000 §8, §9).

Until an address is validated the gateway sends it at most ``factor`` (3) times the bytes it
received from it (RFC 9000 §8.1). An address becomes valid when the peer proves it receives there:
a valid retry token, a handshake message that depends on our previous answer (EDHOC message_3,
or an authenticated record after RESUMED), or a PATH_RESPONSE echoing our PATH_CHALLENGE
(RFC 9000 §8.2). Memory is bounded: at most ``max_addresses`` are tracked, least recent first out.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

AMPLIFICATION_FACTOR = 3  # RFC 9000 §8.1
DEFAULT_MAX_ADDRESSES = 65536  # addresses whose byte counts are remembered
CHALLENGE_LENGTH = 8  # RFC 9000 §19.17


@dataclass
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
        state = self._addresses.pop(address, None) or AddressState()
        self._addresses[address] = state
        while len(self._addresses) > self.max_addresses:
            self._addresses.popitem(last=False)
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

    def validate(self, address: Hashable) -> None:
        """Mark ``address`` as proven."""
        self._state(address).validated = True

    def is_validated(self, address: Hashable) -> bool:
        """True once ``address`` is proven."""
        state = self._addresses.get(address)
        return state is not None and state.validated


def new_challenge() -> bytes:
    """Unpredictable PATH_CHALLENGE data (RFC 9000 §8.2.1)."""
    return secrets.token_bytes(CHALLENGE_LENGTH)
