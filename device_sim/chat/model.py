"""The chat screen of one device, sans-IO: typed lines in, actions and rendered lines out.

Theory of operation. A person types lines; :meth:`ChatScreen.typed` parses one (``/msg alice
hello``, ``/presence away``, ``/approve bob``, ``/sleep 60``, ``/wake``, ``/quit``, or plain text to
the current conversation) and returns the :data:`Action` values the adapter hands to the device
(:class:`SendText`, :class:`SetOwnPresence`, :class:`AnswerSubscription`, :class:`Subscribe`,
:class:`Sleep`, :class:`Wake`, :class:`Quit`), writing what it did or why it refused to the
screen. :meth:`ChatScreen.on_event` takes the device client's events (a message arrived, a
delivery report, a contact's presence, a subscription request, sleep and wake, connection and
close) and writes them. :meth:`ChatScreen.take_lines` returns what was written since the last call:
a line-oriented terminal prints those; a full-screen one shows :attr:`ChatScreen.lines`.

Contacts are what the gateway names them: a ``ContactRef``, the gateway's alias number or an
address such as ``alice@example.org``. A ContactList (:class:`ContactsListed`) binds aliases to
addresses; the screen then keeps each contact under its address and shows the address wherever the
gateway used the alias. The person may type the address, the alias number, or any unambiguous local
part (``alice``) of a contact already seen (by message, presence, request or the contact list).

Everything from the network is text a stranger chose: before it is shown, control characters
(C0, DEL, C1: the bytes that make terminal escape sequences) are replaced, and each rendered line
is cut to :data:`MAX_LINE`, so a message cannot move the cursor, retitle the window or hide a line.
The state is bounded: :data:`MAX_CONTACTS` contacts, :data:`MAX_LINES` lines of history, and
:data:`MAX_PENDING` unanswered subscription requests; the oldest go first.

Time is the ``now`` argument (seconds); lines are stamped with it as ``mm:ss`` since the start.
"""

from __future__ import annotations

import unicodedata
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from device_sim.client.events import (
    BacklogAnnounced,
    ClientClosed,
    ClientEvent,
    Connected,
    DeliveryReported,
    MessageArrived,
    PresenceChanged,
    Slept,
    Woke,
)
from gateway import wire

__all__ = [
    "HELP",
    "MAX_CONTACTS",
    "MAX_LINE",
    "MAX_LINES",
    "MAX_PENDING",
    "Action",
    "AnswerSubscription",
    "ChatScreen",
    "CommandError",
    "ContactPresence",
    "ContactsListed",
    "Quit",
    "SendText",
    "SetOwnPresence",
    "Sleep",
    "Subscribe",
    "SubscriptionRequested",
    "Wake",
    "parse_show",
    "safe_text",
]

MAX_CONTACTS = 1024
MAX_LINES = 1000
MAX_PENDING = 64
MAX_LINE = 500  # characters of one rendered line
MAX_SLEEP = 7 * 24 * 3600  # seconds: a week; longer sleeps are PSM, not a chat client's business

HELP = (
    "commands: /msg CONTACT TEXT | TEXT (to the current contact) | /presence "
    "available|chat|away|xa|dnd|offline [note] | /subscribe CONTACT | /approve CONTACT | "
    "/deny CONTACT | /contacts | /sleep SECONDS | /wake | /help | /quit"
)


@dataclass(frozen=True)
class SubscriptionRequested(ClientEvent):
    """Someone asks to see the device's presence; answer with /approve or /deny."""

    sender: wire.ContactRef
    note: str | None = None


@dataclass(frozen=True)
class ContactsListed(ClientEvent):
    """The gateway bound aliases to addresses (a ContactList, docs/protocol.md §6.12)."""

    contacts: tuple[wire.Contact, ...]
    complete: bool


@dataclass(frozen=True)
class SendText:
    """Send ``text`` to ``to``."""

    to: wire.ContactRef
    text: str = field(repr=False)


@dataclass(frozen=True)
class SetOwnPresence:
    """Change the device's own presence; ``available=False`` is offline."""

    available: bool
    show: wire.Show | None
    note: str | None = None


@dataclass(frozen=True)
class AnswerSubscription:
    """Approve or deny ``contact``'s request to see the device's presence."""

    contact: wire.ContactRef
    approve: bool


@dataclass(frozen=True)
class Subscribe:
    """Ask to see ``contact``'s presence."""

    contact: wire.ContactRef


@dataclass(frozen=True)
class Sleep:
    """Sleep (radio off) for ``seconds``, or until :class:`Wake`."""

    seconds: int


@dataclass(frozen=True)
class Wake:
    """Wake now."""


@dataclass(frozen=True)
class Quit:
    """Close the session and leave."""


Action = SendText | SetOwnPresence | AnswerSubscription | Subscribe | Sleep | Wake | Quit


class CommandError(ValueError):
    """A typed line that is not a command, or names no known contact; the message says why."""


@dataclass
class ContactPresence:
    """What the screen knows of a contact: presence, if any was seen."""

    available: bool | None = None
    show: wire.Show = wire.Show.AVAILABLE


_SHOWS: dict[str, tuple[bool, wire.Show | None]] = {
    "available": (True, wire.Show.AVAILABLE),
    "online": (True, wire.Show.AVAILABLE),
    "chat": (True, wire.Show.CHAT),
    "away": (True, wire.Show.AWAY),
    "xa": (True, wire.Show.EXTENDED_AWAY),
    "dnd": (True, wire.Show.DO_NOT_DISTURB),
    "offline": (False, None),
}
_SHOW_NAMES = {
    wire.Show.AVAILABLE: "available",
    wire.Show.CHAT: "free for chat",
    wire.Show.AWAY: "away",
    wire.Show.EXTENDED_AWAY: "away for long",
    wire.Show.DO_NOT_DISTURB: "busy (do not disturb)",
}


def parse_show(word: str) -> tuple[bool, wire.Show | None]:
    """``available``, ``chat``, ``away``, ``xa``, ``dnd`` or ``offline`` as (open, show)."""
    try:
        return _SHOWS[word.lower()]
    except KeyError:
        raise CommandError(f"unknown presence {word!r}: one of {', '.join(_SHOWS)}") from None


def safe_text(text: str, limit: int = MAX_LINE) -> str:
    """``text`` with control characters replaced by U+FFFD and cut to ``limit`` characters."""
    cut = text[: limit + 1]
    cleaned = "".join(
        "\ufffd" if unicodedata.category(c) == "Cc" or c in "\u2028\u2029" else c for c in cut
    )
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "\u2026"


def _contact_name(contact: wire.ContactRef) -> str:
    return f"#{contact}" if isinstance(contact, int) else safe_text(contact, 200)


MAX_ALIASES = 4096  # alias bindings kept; the gateway binds at most the device's roster


class ChatScreen:
    """The screen and command model of one device's chat (see the module docstring)."""

    def __init__(self, own_name: str = "device") -> None:
        self.own_name = own_name
        self.lines: deque[str] = deque(maxlen=MAX_LINES)
        self._new: list[str] = []
        self.contacts: OrderedDict[wire.ContactRef, ContactPresence] = OrderedDict()
        self.pending: OrderedDict[wire.ContactRef, None] = OrderedDict()
        self.current: wire.ContactRef | None = None
        self.state = "connecting"
        self.own_presence = "available"
        self.finished = False
        self._sent: dict[int, str] = {}  # message id -> contact name, until its report
        self._announced = False
        self.aliases: dict[int, str] = {}  # alias -> address, from ContactLists

    # ---- output --------------------------------------------------------------------------------

    def write(self, now: float, text: str) -> None:
        """Add one line, stamped with ``now``."""
        minutes, seconds = divmod(int(max(0.0, now)), 60)
        line = f"{minutes:02d}:{seconds:02d} {text}"
        self.lines.append(line)
        self._new.append(line)

    def take_lines(self) -> list[str]:
        """Lines written since the last call."""
        new, self._new = self._new, []
        return new

    @property
    def prompt(self) -> str:
        """The input prompt: who, in which state, talking to whom."""
        to = f" to {_contact_name(self.current)}" if self.current is not None else ""
        return f"[{self.own_name} {self.state}, {self.own_presence}{to}]> "

    # ---- contacts ------------------------------------------------------------------------------

    def canonical(self, contact: wire.ContactRef) -> wire.ContactRef:
        """The address an alias is bound to (the alias itself if unbound)."""
        if isinstance(contact, int):
            return self.aliases.get(contact, contact)
        return contact

    def name(self, contact: wire.ContactRef) -> str:
        """How a contact is shown: its address when known, else ``#alias``."""
        return _contact_name(self.canonical(contact))

    def _know(self, contact: wire.ContactRef) -> ContactPresence:
        contact = self.canonical(contact)
        known = self.contacts.get(contact)
        if known is None:
            known = ContactPresence()
            self.contacts[contact] = known
            while len(self.contacts) > MAX_CONTACTS:
                self.contacts.popitem(last=False)
        return known

    def resolve(self, name: str) -> wire.ContactRef:
        """The contact ``name`` means: an address, ``#N`` or N (alias), or a unique local part."""
        if not name:
            raise CommandError("which contact?")
        alias = name[1:] if name.startswith("#") else name
        if alias.isdigit() and alias.isascii():
            number = int(alias)
            if number > 0xFFFFFFFF:
                raise CommandError(f"alias {name} is out of range")
            return number
        if "@" in name:
            return name
        matches = [
            c
            for c in self.contacts
            if isinstance(c, str) and c.split("@", 1)[0].lower() == name.lower()
        ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            listed = ", ".join(str(m) for m in matches)
            raise CommandError(f"{name!r} is ambiguous: {listed}")
        raise CommandError(f"no contact {name!r} seen yet: type the address (name@domain)")

    # ---- input ---------------------------------------------------------------------------------

    def typed(self, line: str, now: float) -> list[Action]:
        """One typed line: the actions to take (none if it was refused, with the reason shown)."""
        try:
            actions = self._parse(line.strip())
        except CommandError as error:
            self.write(now, f"! {error}")
            return []
        for action in actions:
            self._echo(action, now)
        return actions

    def _parse(self, line: str) -> list[Action]:
        if not line:
            return []
        if not line.startswith("/"):
            if self.current is None:
                raise CommandError("no current contact: /msg CONTACT TEXT first")
            return [SendText(self.current, line)]
        command, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        command = command.lower()
        if command in ("msg", "m"):
            name, _, text = rest.partition(" ")
            if not text.strip():
                raise CommandError("usage: /msg CONTACT TEXT")
            contact = self.resolve(name)
            self.current = contact
            return [SendText(contact, text.strip())]
        if command == "presence":
            word, _, note = rest.partition(" ")
            available, show = parse_show(word or "available")
            return [SetOwnPresence(available, show, note.strip() or None)]
        if command in ("approve", "deny"):
            contact = self.resolve(rest) if rest else self._only_pending()
            return [AnswerSubscription(contact, approve=command == "approve")]
        if command == "subscribe":
            return [Subscribe(self.resolve(rest))]
        if command == "sleep":
            if not (rest.isdigit() and rest.isascii()) or not 0 < int(rest) <= MAX_SLEEP:
                raise CommandError(f"usage: /sleep SECONDS (1 to {MAX_SLEEP})")
            return [Sleep(int(rest))]
        if command == "wake":
            return [Wake()]
        if command in ("quit", "exit"):
            return [Quit()]
        if command == "contacts":
            self._list_contacts()
            return []
        if command == "help":
            self._new.append(HELP)
            self.lines.append(HELP)
            return []
        raise CommandError(f"unknown command /{command}; /help lists them")

    def _only_pending(self) -> wire.ContactRef:
        if len(self.pending) == 1:
            return next(iter(self.pending))
        if not self.pending:
            raise CommandError("no subscription request is waiting")
        raise CommandError("several requests wait: say whose")

    def _list_contacts(self) -> None:
        if not self.contacts:
            self._new.append("no contacts seen yet")
            return
        for contact, presence in self.contacts.items():
            if presence.available is None:
                state = "presence unknown"
            elif presence.available:
                state = _SHOW_NAMES.get(presence.show, "available")
            else:
                state = "offline"
            waiting = " (asks to see your presence)" if contact in self.pending else ""
            line = f"  {_contact_name(contact)}: {state}{waiting}"
            self._new.append(line)
            self.lines.append(line)

    def _echo(self, action: Action, now: float) -> None:
        if isinstance(action, SendText):
            self.write(now, f"{self.own_name} -> {_contact_name(action.to)}: {action.text}")
        elif isinstance(action, SetOwnPresence):
            self.own_presence = (
                "offline"
                if not action.available
                else _SHOW_NAMES.get(action.show or wire.Show.AVAILABLE, "available")
            )
            note = f" ({action.note})" if action.note else ""
            self.write(now, f"your presence: {self.own_presence}{note}")
        elif isinstance(action, AnswerSubscription):
            self.pending.pop(action.contact, None)
            verb = "approved" if action.approve else "denied"
            self.write(now, f"{verb} {_contact_name(action.contact)}'s subscription request")
        elif isinstance(action, Subscribe):
            self.write(now, f"asked to see {_contact_name(action.contact)}'s presence")
        elif isinstance(action, Quit):
            self.write(now, "closing the session")

    def sent(self, message_id: int, to: wire.ContactRef) -> None:
        """The device accepted a message under ``message_id``: remember it for its report."""
        self._sent[message_id] = _contact_name(to)
        while len(self._sent) > MAX_CONTACTS:
            self._sent.pop(next(iter(self._sent)))

    def refused(self, now: float, reason: str) -> None:
        """The device refused an action (outbox full, not connected): say so."""
        self.write(now, f"! {safe_text(reason, 200)}")

    # ---- events --------------------------------------------------------------------------------

    def on_event(self, event: ClientEvent, now: float) -> list[Action]:
        """Show one event of the device client; the actions it calls for.

        The first connection announces the device as available (:class:`SetOwnPresence`): XMPP
        servers deliver messages for the bare address only to available resources (RFC 6121
        §8.5.2.1), so a device that never says it is there receives nothing.
        """
        if isinstance(event, Connected) and not self._announced:
            self._announced = True
            self._show_event(event, now)
            return [SetOwnPresence(True, None)]
        self._show_event(event, now)
        return []

    def _show_event(self, event: ClientEvent, now: float) -> None:
        if isinstance(event, MessageArrived):
            sender = self.name(event.sender)
            self._know(event.sender)
            if self.current is None:
                self.current = self.canonical(event.sender)
            text = safe_text(event.text) if event.text is not None else "(a message without text)"
            self.write(now, f"{sender}: {text}")
        elif isinstance(event, DeliveryReported):
            to = self._sent.pop(event.message_id, None)
            what = f"message {event.message_id}" + (f" to {to}" if to else "")
            if event.status is wire.DeliveryStatus.DELIVERED:
                self.write(now, f"{what} delivered")
            elif event.status is wire.DeliveryStatus.FAILED:
                self.write(now, f"{what} FAILED ({_reason(event.reason)})")
            else:
                self.write(now, f"{what} passed on (no receipt expected)")
        elif isinstance(event, PresenceChanged):
            presence = self._know(event.contact)
            presence.available, presence.show = event.available, event.show
            state = _SHOW_NAMES.get(event.show, "available") if event.available else "offline"
            self.write(now, f"{self.name(event.contact)} is {state}")
        elif isinstance(event, SubscriptionRequested):
            self._know(event.sender)
            self.pending[self.canonical(event.sender)] = None
            while len(self.pending) > MAX_PENDING:
                self.pending.popitem(last=False)
            name = self.name(event.sender)
            note = f' ("{safe_text(event.note, 200)}")' if event.note else ""
            self.write(
                now,
                f"{name} asks to see your presence{note}: /approve {name} or /deny {name}",
            )
        elif isinstance(event, ContactsListed):
            self._bind(event)
        elif isinstance(event, Connected):
            self.state = "online"
            how = "resumed with a ticket" if event.resumed else "EDHOC handshake done"
            self.write(now, f"connected to the gateway ({how})")
        elif isinstance(event, Slept):
            self.state = "asleep"
            self.write(now, f"radio off; waking at {_stamp(event.wake_at)} or on /wake")
        elif isinstance(event, Woke):
            self.state = "waking"
            self.write(now, "radio on: resuming the session")
        elif isinstance(event, BacklogAnnounced):
            self.write(
                now,
                f"while asleep the gateway kept {event.messages} message(s) and "
                f"{event.delivery_reports} delivery report(s)",
            )
        elif isinstance(event, ClientClosed):
            self.state = "failed" if event.failed else "closed"
            self.finished = True
            self.write(now, f"session {self.state}: {safe_text(event.reason, 200)}")

    def _bind(self, event: ContactsListed) -> None:
        if event.complete:
            self.aliases.clear()
        for contact in event.contacts:
            if contact.subscription is wire.SubscriptionState.REMOVED:
                self.aliases.pop(contact.alias, None)
                continue
            if contact.alias in self.aliases or len(self.aliases) < MAX_ALIASES:
                self.aliases[contact.alias] = contact.address
            self._know(contact.address)
            moved = self.contacts.pop(contact.alias, None)  # seen under its alias before
            if moved is not None and moved.available is not None:
                self.contacts[contact.address] = moved


def _stamp(at: float) -> str:
    minutes, seconds = divmod(int(max(0.0, at)), 60)
    return f"{minutes:02d}:{seconds:02d}"


def _reason(reason: wire.FailureReason | int | None) -> str:
    if isinstance(reason, wire.FailureReason):
        return reason.name.lower().replace("_", " ")
    return "unknown reason" if reason is None else f"reason {reason}"
