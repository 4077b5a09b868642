"""The EDHOC state machines of both roles as one transition table (RFC 9528 Appendix I).

An input that the table does not list for the current state is refused and moves the machine to
ERROR, which accepts nothing. One exception protects completed sessions: a stray or replayed
handshake message arriving after COMPLETED is refused without destroying the keys (a forged
datagram must not tear down an authenticated session; RFC 9528 §7 leaves duplicates to the caller).
"""

from __future__ import annotations

from enum import Enum


class Role(Enum):
    """Which side of the handshake."""

    INITIATOR = "initiator"
    RESPONDER = "responder"


class State(Enum):
    """Where a handshake is."""

    START = "start"
    WAIT_MESSAGE_2 = "wait-message-2"  # initiator: message_1 sent
    RECEIVED_MESSAGE_1 = "received-message-1"  # responder: message_1 accepted
    WAIT_MESSAGE_3 = "wait-message-3"  # responder: message_2 sent
    VERIFIED_MESSAGE_2 = "verified-message-2"  # initiator: responder authenticated
    COMPLETED = "completed"  # PRK_out known; exporter usable
    CONFIRMED = "confirmed"  # message_4 sent (responder) or verified (initiator)
    ERROR = "error"  # terminal


class Input(Enum):
    """What the caller asks the machine to do."""

    SEND_MESSAGE_1 = "send-message-1"
    RECEIVE_MESSAGE_1 = "receive-message-1"
    SEND_MESSAGE_2 = "send-message-2"
    RECEIVE_MESSAGE_2 = "receive-message-2"
    SEND_MESSAGE_3 = "send-message-3"
    RECEIVE_MESSAGE_3 = "receive-message-3"
    SEND_MESSAGE_4 = "send-message-4"
    RECEIVE_MESSAGE_4 = "receive-message-4"
    EXPORT = "export"
    KEY_UPDATE = "key-update"


_KEYS_READY = (State.COMPLETED, State.CONFIRMED)

TRANSITIONS: dict[tuple[Role, State, Input], State] = {
    (Role.INITIATOR, State.START, Input.SEND_MESSAGE_1): State.WAIT_MESSAGE_2,
    (Role.INITIATOR, State.WAIT_MESSAGE_2, Input.RECEIVE_MESSAGE_2): State.VERIFIED_MESSAGE_2,
    (Role.INITIATOR, State.VERIFIED_MESSAGE_2, Input.SEND_MESSAGE_3): State.COMPLETED,
    (Role.INITIATOR, State.COMPLETED, Input.RECEIVE_MESSAGE_4): State.CONFIRMED,
    (Role.RESPONDER, State.START, Input.RECEIVE_MESSAGE_1): State.RECEIVED_MESSAGE_1,
    (Role.RESPONDER, State.RECEIVED_MESSAGE_1, Input.SEND_MESSAGE_2): State.WAIT_MESSAGE_3,
    (Role.RESPONDER, State.WAIT_MESSAGE_3, Input.RECEIVE_MESSAGE_3): State.COMPLETED,
    (Role.RESPONDER, State.COMPLETED, Input.SEND_MESSAGE_4): State.CONFIRMED,
}
for _role in Role:
    for _state in _KEYS_READY:
        TRANSITIONS[(_role, _state, Input.EXPORT)] = _state
        TRANSITIONS[(_role, _state, Input.KEY_UPDATE)] = _state

RECEIVE_INPUTS = frozenset(
    {
        Input.RECEIVE_MESSAGE_1,
        Input.RECEIVE_MESSAGE_2,
        Input.RECEIVE_MESSAGE_3,
        Input.RECEIVE_MESSAGE_4,
    }
)


def next_state(role: Role, state: State, event: Input) -> State | None:
    """The state after ``event``, or ``None`` when the table does not allow it."""
    return TRANSITIONS.get((role, state, event))


def keeps_keys(state: State) -> bool:
    """True for states whose keys survive a refused input (see the module docstring)."""
    return state in _KEYS_READY
