"""The XMPP client's states, its inputs and the one transition table (RFC 6120 §4-§7).

Theory of operation.  :class:`ClientState` is where the stream is in its life; a
:class:`ClientInput` is either an element the peer sent (classified by :func:`element_input`
from its tag alone) or a step the client decided to take (sending ``<starttls/>``, ``<auth/>``,
a bind request...).  :data:`TRANSITIONS` lists every allowed ``(state, input)`` pair and the state
it leads to; nothing else decides whether an input is allowed::

    IDLE -> AWAIT_STREAM_HEADER -> AWAIT_FEATURES -> AWAIT_TLS_PROCEED -> TLS_HANDSHAKE
         -> AWAIT_STREAM_HEADER -> AWAIT_FEATURES -> AUTHENTICATING
         -> AWAIT_STREAM_HEADER -> AWAIT_FEATURES -> AWAIT_BIND -> AWAIT_STREAM_MANAGEMENT -> READY
                                                 \\-> AWAIT_STREAM_MANAGEMENT (resume) -> READY

A received element the table does not accept in the current state is the peer's fault
(``<unsupported-stanza-type/>``, :func:`check_element`); any other unlisted peer input is a
``<policy-violation/>``, and an unlisted step of our own is our bug (:class:`LocalXmppError`,
:func:`next_state`).  Some element inputs lead back to the state they arrive in: the element is
accepted, and what the client does with it (one of its own steps, or a failure) moves the machine.
"""

from __future__ import annotations

import enum
from typing import Final

from gateway.xmpp.errors import STREAM_NS, LocalXmppError, StreamCondition, StreamError
from gateway.xmpp.stanzas import CLIENT_NS, SASL_NS, TLS_NS
from gateway.xmpp.stream_management import SM_NS

__all__ = [
    "LIVE_STATES",
    "LOCAL_INPUTS",
    "TRANSITIONS",
    "ClientInput",
    "ClientState",
    "check_element",
    "element_input",
    "next_state",
]


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
    FEATURES = enum.auto()  # peer <stream:features/>
    STARTTLS_SENT = enum.auto()
    TLS_PROCEED = enum.auto()  # peer <proceed/>
    TLS_FAILURE = enum.auto()  # peer <failure/> to <starttls/>
    TLS_ESTABLISHED = enum.auto()  # adapter finished the handshake
    AUTH_SENT = enum.auto()
    SASL_CHALLENGE = enum.auto()  # peer <challenge/>
    SASL_SUCCESS = enum.auto()  # peer <success/>, verified
    SASL_FAILURE = enum.auto()  # peer SASL <failure/>
    RESUME_SENT = enum.auto()
    BIND_SENT = enum.auto()
    BOUND = enum.auto()  # peer bind result, no stream management to enable
    ENABLE_SENT = enum.auto()  # peer bind result, <enable/> sent
    SM_ENABLED = enum.auto()  # peer <enabled/>
    SM_FAILED = enum.auto()  # peer XEP-0198 <failed/>, to <enable/> or to <resume/>
    SM_ENABLE_FAILED = enum.auto()  # peer <failed/> to <enable/>
    SM_RESUMED = enum.auto()  # peer <resumed/>
    SM_RESUME_FAILED = enum.auto()  # peer <failed/> to <resume/>, bind sent
    SM_ACK = enum.auto()  # peer XEP-0198 <r/> or <a/>
    IQ = enum.auto()  # peer <iq/>: the bind result while binding, else a stanza
    STANZA = enum.auto()  # peer <message/> or <presence/>; any stanza handled once established
    CLOSE = enum.auto()  # we sent </stream:stream>
    STREAM_CLOSED = enum.auto()  # peer </stream:stream> or end of the connection
    FAILURE = enum.auto()  # a protocol error on either side


_S = ClientState
_I = ClientInput
LIVE_STATES: Final = frozenset(_S) - {_S.IDLE, _S.CLOSED, _S.FAILED}

# (state, input) -> next state.  Anything not listed is a protocol error.
TRANSITIONS: Final[dict[tuple[ClientState, ClientInput], ClientState]] = {
    (_S.IDLE, _I.START): _S.AWAIT_STREAM_HEADER,
    (_S.AWAIT_STREAM_HEADER, _I.STREAM_OPENED): _S.AWAIT_FEATURES,
    (_S.AWAIT_FEATURES, _I.FEATURES): _S.AWAIT_FEATURES,
    (_S.AWAIT_FEATURES, _I.STARTTLS_SENT): _S.AWAIT_TLS_PROCEED,
    (_S.AWAIT_TLS_PROCEED, _I.TLS_PROCEED): _S.TLS_HANDSHAKE,
    (_S.AWAIT_TLS_PROCEED, _I.TLS_FAILURE): _S.AWAIT_TLS_PROCEED,
    (_S.TLS_HANDSHAKE, _I.TLS_ESTABLISHED): _S.AWAIT_STREAM_HEADER,
    (_S.AWAIT_FEATURES, _I.AUTH_SENT): _S.AUTHENTICATING,
    (_S.AUTHENTICATING, _I.SASL_CHALLENGE): _S.AUTHENTICATING,
    (_S.AUTHENTICATING, _I.SASL_SUCCESS): _S.AWAIT_STREAM_HEADER,
    (_S.AUTHENTICATING, _I.SASL_FAILURE): _S.AUTHENTICATING,
    (_S.AWAIT_FEATURES, _I.RESUME_SENT): _S.AWAIT_STREAM_MANAGEMENT,
    (_S.AWAIT_FEATURES, _I.BIND_SENT): _S.AWAIT_BIND,
    (_S.AWAIT_BIND, _I.IQ): _S.AWAIT_BIND,
    (_S.AWAIT_BIND, _I.BOUND): _S.READY,
    (_S.AWAIT_BIND, _I.ENABLE_SENT): _S.AWAIT_STREAM_MANAGEMENT,
    (_S.AWAIT_STREAM_MANAGEMENT, _I.SM_ENABLED): _S.READY,
    (_S.AWAIT_STREAM_MANAGEMENT, _I.SM_FAILED): _S.AWAIT_STREAM_MANAGEMENT,
    (_S.AWAIT_STREAM_MANAGEMENT, _I.SM_ENABLE_FAILED): _S.READY,
    (_S.AWAIT_STREAM_MANAGEMENT, _I.SM_RESUMED): _S.READY,
    (_S.AWAIT_STREAM_MANAGEMENT, _I.SM_RESUME_FAILED): _S.AWAIT_BIND,
    **{(state, _I.SM_ACK): state for state in (_S.READY, _S.CLOSING)},
    **{(state, _I.IQ): state for state in (_S.READY, _S.CLOSING)},
    **{(state, _I.STANZA): state for state in (_S.READY, _S.CLOSING)},
    **{(state, _I.CLOSE): _S.CLOSING for state in LIVE_STATES - {_S.CLOSING}},
    **{(state, _I.STREAM_CLOSED): _S.CLOSED for state in LIVE_STATES},
    **{(state, _I.FAILURE): _S.FAILED for state in LIVE_STATES | {_S.IDLE}},
}

# Inputs that are our own decisions: a missing transition for them is our bug.
LOCAL_INPUTS: Final = frozenset(
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


def _q(local: str, namespace: str) -> str:
    return f"{{{namespace}}}{local}"


# What a first-level element is, by its qualified tag alone (the state decides if it is allowed).
_ELEMENT_INPUTS: Final[dict[str, ClientInput]] = {
    _q("features", STREAM_NS): _I.FEATURES,
    _q("proceed", TLS_NS): _I.TLS_PROCEED,
    _q("failure", TLS_NS): _I.TLS_FAILURE,
    _q("challenge", SASL_NS): _I.SASL_CHALLENGE,
    _q("success", SASL_NS): _I.SASL_SUCCESS,
    _q("failure", SASL_NS): _I.SASL_FAILURE,
    _q("enabled", SM_NS): _I.SM_ENABLED,
    _q("resumed", SM_NS): _I.SM_RESUMED,
    _q("failed", SM_NS): _I.SM_FAILED,
    _q("r", SM_NS): _I.SM_ACK,
    _q("a", SM_NS): _I.SM_ACK,
    _q("iq", CLIENT_NS): _I.IQ,
    _q("message", CLIENT_NS): _I.STANZA,
    _q("presence", CLIENT_NS): _I.STANZA,
}


def element_input(tag: str) -> ClientInput | None:
    """The input a received first-level element with this qualified ``tag`` is, if any."""
    return _ELEMENT_INPUTS.get(tag)


def check_element(state: ClientState, tag: str) -> ClientInput:
    """The input of a received element, if :data:`TRANSITIONS` accepts it in ``state``.

    Raises :class:`StreamError` ``<unsupported-stanza-type/>`` otherwise (RFC 6120 §4.9.3.24).
    """
    peer_input = element_input(tag)
    if peer_input is None or (state, peer_input) not in TRANSITIONS:
        raise StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, _unexpected(state, tag))
    return peer_input


def _unexpected(state: ClientState, tag: str) -> str:
    """The ``<text/>`` of the stream error for an element ``state`` does not accept."""
    if state is _S.AUTHENTICATING:
        return "unexpected element in SASL"
    if tag.startswith(f"{{{SM_NS}}}") and state in _SM_STATES:
        return "unexpected SM element"
    return f"unexpected element in state {state.name.lower()}"


_SM_STATES: Final = frozenset({_S.AWAIT_STREAM_MANAGEMENT, _S.READY, _S.CLOSING})


def next_state(state: ClientState, event: ClientInput) -> ClientState:
    """The state ``event`` leads to from ``state``; raises if the table does not list it."""
    target = TRANSITIONS.get((state, event))
    if target is None:
        if event in LOCAL_INPUTS:
            raise LocalXmppError(f"{event.name} is not allowed in {state.name}")
        raise StreamError(
            StreamCondition.POLICY_VIOLATION,
            f"unexpected {event.name.lower()} in state {state.name.lower()}",
        )
    return target
