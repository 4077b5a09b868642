"""The device's contact list: stable small aliases, roster state, versions and deltas.

Aliases play the part of MQTT-SN's predefined topic ids: a gateway-assigned integer of one to
three CBOR bytes stands for an address of tens of bytes. An alias, once given to a contact, stays
bound to it (the service keeps the table in the store: :class:`PersistAlias`) until the contact
leaves the roster (a REMOVED entry, :class:`ReleaseAlias`). New aliases are the smallest free
numbers, so the common ones cost one byte (0..23).

Versions are the gateway's own integers (docs/protocol.md ContactList): each change bumps the
version; a device that sends the version it holds gets the changes since then, or the whole list
when the relay no longer remembers that far back (``max_history`` changes, or a version from
before this relay started: the first roster after a start is a new version beyond every one
issued before, :class:`PersistContactListVersion`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from gateway.relay.commands import (
    Command,
    PersistAlias,
    PersistContactListVersion,
    ReleaseAlias,
    SendToDevice,
    StoreCommand,
    UpstreamRosterRequest,
)
from gateway.wire import (
    Contact,
    ContactList,
    ContactListRequest,
    Error,
    ErrorCode,
    SubscriptionState,
)
from gateway.wire.messages import MAX_ADDRESS_SIZE, MAX_ALIAS, MAX_SHORT_TEXT_SIZE
from gateway.xmpp import Jid, RosterItem, RosterSubscription

__all__ = [
    "DEFAULT_MAX_CONTACTS",
    "DEFAULT_MAX_HISTORY",
    "AliasesExhaustedError",
    "ContactBook",
    "ContactListRequests",
]

DEFAULT_MAX_CONTACTS = 4096  # contacts kept per device; far above any handset's roster
DEFAULT_MAX_HISTORY = 256  # remembered changes for deltas; an older version gets the whole list

_SUBSCRIPTION_STATES = {
    RosterSubscription.NONE: SubscriptionState.NONE,
    RosterSubscription.TO: SubscriptionState.TO,
    RosterSubscription.FROM: SubscriptionState.FROM,
    RosterSubscription.BOTH: SubscriptionState.BOTH,
    RosterSubscription.REMOVE: SubscriptionState.REMOVED,
}


class AliasesExhaustedError(Exception):
    """Every alias is bound, or the contact limit is reached: the contact gets none."""


def _fits(text: str | None, limit: int) -> str | None:
    """``text`` if it fits the wire field, else None (a roster name is optional)."""
    if text is None or len(text.encode("utf-8")) > limit:
        return None
    return text


class ContactBook:
    """Aliases, the roster as the device sees it, and the version history for deltas."""

    __slots__ = (
        "_alias_of",
        "_blocked",
        "_contact_of",
        "_delta_floor",
        "_entries",
        "_history",
        "_max_contacts",
        "_max_history",
        "_version",
        "roster_known",
    )

    def __init__(
        self,
        aliases: Mapping[Jid, int] = {},
        *,
        version: int = 0,
        blocked: Iterable[Jid] = (),
        max_contacts: int = DEFAULT_MAX_CONTACTS,
        max_history: int = DEFAULT_MAX_HISTORY,
    ) -> None:
        self._alias_of: dict[Jid, int] = {jid.bare: alias for jid, alias in aliases.items()}
        self._contact_of: dict[int, Jid] = {alias: jid for jid, alias in self._alias_of.items()}
        self._entries: dict[Jid, Contact] = {}
        # None while nothing is blocked (nearly every device): no empty set per relay.
        self._blocked: set[Jid] | None = {jid.bare for jid in blocked} or None
        self._version = version
        self._history: list[tuple[int, Contact]] = []
        # Versions at or below this cannot be answered with a delta.
        self._delta_floor = version
        self.roster_known = False
        self._max_contacts = max_contacts
        self._max_history = max_history

    @property
    def version(self) -> int:
        """The contact list version the device would get now."""
        return self._version

    # -- aliases ----------------------------------------------------------------------------------

    def alias_of(self, contact: Jid) -> int | None:
        """The alias bound to the bare ``contact``, if any."""
        return self._alias_of.get(contact.bare)

    def contact_of(self, alias: int) -> Jid | None:
        """The contact behind ``alias``, if it is bound."""
        return self._contact_of.get(alias)

    def reference(self, contact: Jid) -> int | str:
        """How the device names ``contact``: its alias, else its bare address as text."""
        alias = self.alias_of(contact)
        return alias if alias is not None else str(contact.bare)

    def _bind(self, contact: Jid, commands: list[StoreCommand]) -> int:
        alias = self._alias_of.get(contact)
        if alias is not None:
            return alias
        if len(self._alias_of) >= min(self._max_contacts, MAX_ALIAS + 1):
            raise AliasesExhaustedError(str(contact))
        alias = next(n for n in range(MAX_ALIAS + 1) if n not in self._contact_of)
        self._alias_of[contact] = alias
        self._contact_of[alias] = contact
        commands.append(PersistAlias(contact, alias))
        return alias

    # -- roster state -----------------------------------------------------------------------------

    def is_subscribed_to(self, contact: Jid) -> bool:
        """Whether the device sees ``contact``'s presence (roster 'to' or 'both')."""
        entry = self._entries.get(contact.bare)
        return entry is not None and entry.subscription in (
            SubscriptionState.TO,
            SubscriptionState.BOTH,
        )

    def is_blocked(self, contact: Jid) -> bool:
        """Whether the device blocked ``contact``."""
        return self._blocked is not None and contact.bare in self._blocked

    def contacts(self) -> tuple[Contact, ...]:
        """The whole current list, by alias."""
        return tuple(sorted(self._entries.values(), key=lambda entry: entry.alias))

    def replace_roster(self, items: Iterable[RosterItem]) -> tuple[list[StoreCommand], bool]:
        """Take the server's whole roster; returns store commands and whether anything changed."""
        commands: list[StoreCommand] = []
        seen: set[Jid] = set()
        changes: list[Contact] = []
        for item in items:
            bare = item.jid.bare
            if bare in seen:
                continue
            seen.add(bare)
            change = self._apply(item, commands)
            if change is not None:
                changes.append(change)
        for gone in [jid for jid in self._entries if jid not in seen]:
            change = self._apply(RosterItem(gone, subscription=RosterSubscription.REMOVE), commands)
            if change is not None:
                changes.append(change)
        first = not self.roster_known
        self.roster_known = True
        if changes or first:
            self._bump(changes, commands, forget_history=first)
        return commands, bool(changes) or first

    def push(self, item: RosterItem) -> tuple[list[StoreCommand], ContactList | None]:
        """A roster push: store commands and the delta to give the device (None: no change)."""
        commands: list[StoreCommand] = []
        change = self._apply(item, commands)
        if change is None:
            return commands, None
        self._bump([change], commands, forget_history=False)
        return commands, ContactList(version=self._version, contacts=(change,))

    def set_blocked(
        self, contact: Jid, blocked: bool
    ) -> tuple[list[StoreCommand], ContactList | None]:
        """Record a block or unblock; the delta if the contact is on the list."""
        bare = contact.bare
        if blocked:
            if self._blocked is None:
                self._blocked = set()
            self._blocked.add(bare)
        elif self._blocked is not None:
            self._blocked.discard(bare)
            if not self._blocked:
                self._blocked = None
        entry = self._entries.get(bare)
        if entry is None or entry.blocked == blocked:
            return [], None
        change = dataclasses.replace(entry, blocked=blocked)
        self._entries[bare] = change
        commands: list[StoreCommand] = []
        self._bump([change], commands, forget_history=False)
        return commands, ContactList(version=self._version, contacts=(change,))

    def answer(self, known_version: int | None) -> ContactList:
        """The list for a ContactListRequest: the delta since ``known_version`` or all of it."""
        if known_version is not None and known_version == self._version:
            return ContactList(version=self._version)
        if known_version is not None and self._delta_floor <= known_version < self._version:
            latest: dict[int, Contact] = {}
            for version, change in self._history:
                if version > known_version:
                    latest[change.alias] = change
            return ContactList(
                version=self._version, contacts=tuple(latest[a] for a in sorted(latest))
            )
        return ContactList(version=self._version, contacts=self.contacts(), complete=True)

    def _apply(self, item: RosterItem, commands: list[StoreCommand]) -> Contact | None:
        bare = item.jid.bare
        address = str(bare)
        if len(address.encode("utf-8")) > MAX_ADDRESS_SIZE or not address:
            return None
        if item.subscription is RosterSubscription.REMOVE:
            entry = self._entries.pop(bare, None)
            if entry is None:
                return None
            alias = self._alias_of.pop(bare)
            del self._contact_of[alias]
            commands.append(ReleaseAlias(bare, alias))
            return dataclasses.replace(entry, subscription=SubscriptionState.REMOVED)
        try:
            alias = self._bind(bare, commands)
        except AliasesExhaustedError:
            return None
        entry = Contact(
            alias=alias,
            address=address,
            subscription=_SUBSCRIPTION_STATES[item.subscription],
            name=_fits(item.name, MAX_SHORT_TEXT_SIZE),
            pending_out=item.ask_subscribe,
            blocked=self._blocked is not None and bare in self._blocked,
        )
        if self._entries.get(bare) == entry:
            return None
        self._entries[bare] = entry
        return entry

    def _bump(
        self, changes: list[Contact], commands: list[StoreCommand], *, forget_history: bool
    ) -> None:
        self._version += 1
        commands.append(PersistContactListVersion(self._version))
        if forget_history:
            self._history.clear()
            self._delta_floor = self._version
            return
        self._history.extend((self._version, change) for change in changes)
        while len(self._history) > self._max_history:
            dropped_version, _ = self._history.pop(0)
            self._delta_floor = max(self._delta_floor, dropped_version)


class ContactListRequests:
    """ContactListRequests that wait for the roster, and whether the roster was asked for.

    The first request after a start asks the upstream for the roster; later ones wait with it
    (at most ``max_pending``); all are answered when it arrives, or told UPSTREAM_UNAVAILABLE
    when the upstream session ends first.
    """

    __slots__ = ("_pending", "max_pending", "roster_requested")

    def __init__(self, max_pending: int) -> None:
        self.max_pending = max_pending
        self.roster_requested = False
        self._pending: list[int | None] = []

    def wait(self, known_version: int | None) -> list[Command] | None:
        """Queue a request until the roster comes; None if too many wait already."""
        if len(self._pending) >= self.max_pending:
            return None
        self._pending.append(known_version)
        if self.roster_requested:
            return []
        self.roster_requested = True
        return [UpstreamRosterRequest()]

    def answer(self, book: ContactBook) -> list[Command]:
        """The roster arrived: answer every waiting request from ``book``."""
        self.roster_requested = False
        answers: list[Command] = [SendToDevice(book.answer(v)) for v in self._pending]
        self._pending.clear()
        return answers

    def abandon(self) -> list[Command]:
        """The upstream session ended: every waiting request is told to retry later."""
        self.roster_requested = False
        error = Error(ErrorCode.UPSTREAM_UNAVAILABLE, message_type=ContactListRequest.TYPE)
        answers: list[Command] = [SendToDevice(error) for _ in self._pending]
        self._pending.clear()
        return answers
