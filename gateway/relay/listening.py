"""Whether the device listens: the relay's one state machine of the device's reachability.

A device is AWAKE while it has a session and has not said Sleep. Sleep(d) makes it ASLEEP until
``d`` plus a grace (XEP-0352 inactive meanwhile); no Wake by then makes it OVERDUE. A session
that ends without Sleep (the radio lost, the battery gone) makes it DETACHED; no new session
within a grace makes it LOST. OVERDUE and LOST are *absent*: its watchers see it unavailable,
without a goodbye from the device (RFC 2779 §3.2.4, §3.2.5), while its upstream session stays,
so what is sent to it is still kept for it (§2.1.1). Whatever brings it back (Wake, Sleep, a new
session, any operation) restores its presence. Everything but AWAKE queues what arrives.

The transitions are one table; a pair it does not list is the caller's misuse
(:class:`~gateway.relay.LocalRelayError`), and CLOSED accepts nothing.
"""

from __future__ import annotations

import enum

from gateway.relay.errors import LocalRelayError

__all__ = ["Listening", "ListeningInput", "SleepState"]


class SleepState(enum.Enum):
    """Whether the device listens (see the module docstring)."""

    AWAKE = "awake"
    ASLEEP = "asleep"  # declared a sleep; its deadline runs
    OVERDUE = "overdue"  # silent past its declared sleep: unavailable to its watchers
    DETACHED = "detached"  # its session ended without Sleep; the link-lost deadline runs
    LOST = "lost"  # no new session within the grace: unavailable to its watchers
    CLOSED = "closed"


class ListeningInput(enum.Enum):
    """What moves the state: the device's word, its session, the clock, the service."""

    SLEEP = "sleep"
    WAKE = "wake"
    OVERSLEPT = "overslept"  # the running deadline passed
    LINK_LOST = "link-lost"
    LINK_UP = "link-up"
    BACK = "back"  # an overdue sleeper sent an operation
    CLOSE = "close"


_S, _I = SleepState, ListeningInput
_TRANSITIONS: dict[tuple[SleepState, ListeningInput], SleepState] = {
    (_S.AWAKE, _I.SLEEP): _S.ASLEEP,
    (_S.ASLEEP, _I.SLEEP): _S.ASLEEP,
    (_S.OVERDUE, _I.SLEEP): _S.ASLEEP,
    (_S.DETACHED, _I.SLEEP): _S.ASLEEP,
    (_S.LOST, _I.SLEEP): _S.ASLEEP,
    (_S.AWAKE, _I.WAKE): _S.AWAKE,
    (_S.ASLEEP, _I.WAKE): _S.AWAKE,
    (_S.OVERDUE, _I.WAKE): _S.AWAKE,
    (_S.DETACHED, _I.WAKE): _S.AWAKE,
    (_S.LOST, _I.WAKE): _S.AWAKE,
    (_S.ASLEEP, _I.OVERSLEPT): _S.OVERDUE,
    (_S.DETACHED, _I.OVERSLEPT): _S.LOST,
    (_S.AWAKE, _I.LINK_LOST): _S.DETACHED,
    (_S.ASLEEP, _I.LINK_LOST): _S.ASLEEP,  # a sleeper may drop its session; its deadline stands
    (_S.OVERDUE, _I.LINK_LOST): _S.OVERDUE,
    (_S.DETACHED, _I.LINK_LOST): _S.DETACHED,
    (_S.LOST, _I.LINK_LOST): _S.LOST,
    (_S.AWAKE, _I.LINK_UP): _S.AWAKE,
    (_S.ASLEEP, _I.LINK_UP): _S.ASLEEP,
    (_S.OVERDUE, _I.LINK_UP): _S.ASLEEP,  # reachable again, still asleep: a fresh grace
    (_S.DETACHED, _I.LINK_UP): _S.AWAKE,
    (_S.LOST, _I.LINK_UP): _S.AWAKE,
    (_S.OVERDUE, _I.BACK): _S.ASLEEP,
    (_S.AWAKE, _I.CLOSE): _S.CLOSED,
    (_S.ASLEEP, _I.CLOSE): _S.CLOSED,
    (_S.OVERDUE, _I.CLOSE): _S.CLOSED,
    (_S.DETACHED, _I.CLOSE): _S.CLOSED,
    (_S.LOST, _I.CLOSE): _S.CLOSED,
}

ABSENT = frozenset({SleepState.OVERDUE, SleepState.LOST})


class Listening:
    """The state and its one deadline (the sleep's in ASLEEP, the link-lost grace in DETACHED)."""

    __slots__ = ("deadline", "state")

    def __init__(self) -> None:
        self.state = SleepState.AWAKE
        self.deadline: float | None = None

    @property
    def absent(self) -> bool:
        """Whether watchers are told the device is unavailable, whatever its presence says."""
        return self.state in ABSENT

    def move(self, event: ListeningInput) -> SleepState:
        """Apply ``event``; return the state before it."""
        previous = self.state
        try:
            self.state = _TRANSITIONS[(previous, event)]
        except KeyError:
            raise LocalRelayError(f"{event.name} in state {previous.name}") from None
        return previous

    def next_deadline(self) -> float | None:
        """When the running deadline passes, if one runs in this state."""
        if self.state in (SleepState.ASLEEP, SleepState.DETACHED):
            return self.deadline
        return None
