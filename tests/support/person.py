"""The person on the other end: a real XMPP client (slixmpp) that nobody on this project wrote.

slixmpp runs on asyncio and the tests run on trio, so each :class:`XmppPerson` owns a thread with
its own asyncio event loop; the trio side talks to it only through thread-safe calls
(``asyncio.run_coroutine_threadsafe`` / ``loop.call_soon_threadsafe``) and waits in
``trio.to_thread.run_sync``. We chose a thread per person over trio-asyncio because it keeps
slixmpp's loop exactly as slixmpp expects it (no shim between the two schedulers) and lets a test
cancel a wait without touching the other loop. What slixmpp receives is recorded in inboxes guarded
by a condition variable; ``next_message`` and ``next_presence`` take the first matching stanza,
waiting at most ``timeout`` seconds of real time for the network (they never sleep).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import slixmpp
import trio

from tests.support.prosody import Account

DEFAULT_TIMEOUT = 15.0  # seconds of real time to wait for the network, never slept
T = TypeVar("T")


@dataclass(frozen=True)
class ReceivedMessage:
    """A message stanza as slixmpp delivered it."""

    sender: str
    body: str
    type: str
    id: str
    thread: str
    subject: str
    xml: str
    receipt_for: str = ""


@dataclass(frozen=True)
class ReceivedPresence:
    """A presence stanza as slixmpp delivered it."""

    sender: str
    type: str
    show: str
    status: str
    priority: int
    xml: str


@dataclass
class _Inbox:
    messages: list[ReceivedMessage] = field(default_factory=list)
    presences: list[ReceivedPresence] = field(default_factory=list)


class PersonError(RuntimeError):
    """The person could not log in, or an expected stanza did not arrive in time."""


class XmppPerson:
    """Someone using an ordinary XMPP client, for tests to talk to through the real server."""

    def __init__(self, account: Account, host: str, port: int, ca_file: Path) -> None:
        self.account = account
        self.jid = account.jid
        self._host = host
        self._port = port
        self._ca_file = ca_file
        self._inbox = _Inbox()
        self._condition = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name=f"slixmpp-{self.jid}")
        self._client: slixmpp.ClientXMPP | None = None
        self._closed = False

    # -- the asyncio side ----------------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
            # Let slixmpp's own tasks end cleanly, so nothing is destroyed while pending.
            pending = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        finally:
            self._loop.close()

    async def _connect(self) -> None:
        client = slixmpp.ClientXMPP(self.jid, self.account.password)
        client.ca_certs = self._ca_file
        client.enable_direct_tls = False  # the private Prosody offers STARTTLS on c2s only
        client.auto_authorize = None  # subscription requests wait for the test to decide
        client.auto_subscribe = False
        for plugin in ("xep_0030", "xep_0199", "xep_0184"):
            client.register_plugin(plugin)
        client.plugin["xep_0184"].auto_ack = True
        client.plugin["xep_0184"].auto_request = False
        started: asyncio.Future[None] = self._loop.create_future()

        def on_session_start(_event: object) -> None:
            client.send_presence()
            if not started.done():
                started.set_result(None)

        def on_failure(reason: object) -> None:
            if not started.done():
                started.set_exception(PersonError(f"{self.jid} could not log in: {reason}"))

        client.add_event_handler("session_start", on_session_start)
        client.add_event_handler("failed_auth", on_failure)
        client.add_event_handler("connection_failed", on_failure)
        client.add_event_handler("message", self._on_message)
        client.add_event_handler("receipt_received", self._on_receipt)
        # The raw event: one call per presence stanza (the roster-level events merge changes).
        client.add_event_handler("presence", self._on_presence)
        self._client = client
        client.connect(self._host, self._port)
        await started
        await client.get_roster()

    def _record(self, put: Callable[[_Inbox], None]) -> None:
        with self._condition:
            put(self._inbox)
            self._condition.notify_all()

    def _on_message(self, msg: Any) -> None:
        received = ReceivedMessage(
            sender=str(msg["from"]),
            body=str(msg["body"]),
            type=str(msg["type"]),
            id=str(msg["id"]),
            thread=str(msg["thread"]),
            subject=str(msg["subject"]),
            xml=str(msg),
        )
        self._record(lambda inbox: inbox.messages.append(received))

    def _on_receipt(self, msg: Any) -> None:
        received = ReceivedMessage(
            sender=str(msg["from"]),
            body="",
            type=str(msg["type"]),
            id=str(msg["id"]),
            thread="",
            subject="",
            xml=str(msg),
            receipt_for=str(msg["receipt"]),
        )
        self._record(lambda inbox: inbox.messages.append(received))

    def _on_presence(self, pres: Any) -> None:
        priority = pres["priority"]
        received = ReceivedPresence(
            sender=str(pres["from"]),
            type=str(pres["type"]),
            show=str(pres["show"]),
            status=str(pres["status"]),
            priority=int(priority) if str(priority).lstrip("-").isdigit() else 0,
            xml=str(pres),
        )
        self._record(lambda inbox: inbox.presences.append(received))

    # -- bridging ------------------------------------------------------------------------------

    async def _call(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return await trio.to_thread.run_sync(future.result, timeout, abandon_on_cancel=True)
        except TimeoutError as exc:
            future.cancel()
            raise PersonError(f"{self.jid}: no answer within {timeout} s") from exc

    async def _on_loop(self, action: Callable[[slixmpp.ClientXMPP], T]) -> T:
        async def run() -> T:
            assert self._client is not None
            return action(self._client)

        return await self._call(run(), DEFAULT_TIMEOUT)

    def _take(
        self, pick: Callable[[_Inbox], T | None], timeout: float, what: str
    ) -> T:  # runs in a worker thread
        with self._condition:
            found: list[T] = []

            def ready() -> bool:
                item = pick(self._inbox)
                if item is not None:
                    found.append(item)
                return bool(found)

            if not self._condition.wait_for(ready, timeout):
                raise PersonError(f"{self.jid}: no {what} within {timeout} s")
            return found[0]

    # -- what tests call -----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect, authenticate, bind, send initial presence and fetch the roster."""
        self._thread.start()
        await self._call(self._connect(), DEFAULT_TIMEOUT)

    async def send_message(
        self,
        to: str,
        body: str,
        *,
        mtype: Literal["chat", "normal", "headline"] = "chat",
        request_receipt: bool = False,
        thread: str | None = None,
        subject: str | None = None,
    ) -> str:
        """Send a message; return its stanza id."""

        def send(client: slixmpp.ClientXMPP) -> str:
            msg = client.make_message(mto=to, mbody=body, mtype=mtype, msubject=subject)
            msg["id"] = client.new_id()
            if thread:
                msg["thread"] = thread
            if request_receipt:
                msg["request_receipt"] = True
            msg.send()
            return str(msg["id"])

        return await self._on_loop(send)

    async def send_presence(self, *, show: str = "", status: str = "", priority: int = 0) -> None:
        """Broadcast availability with optional show, status and priority."""
        await self._on_loop(
            lambda c: c.send_presence(
                pshow=show or None, pstatus=status or None, ppriority=priority
            )
        )

    async def send_raw(self, xml: str) -> None:
        """Send raw XML on the stream (for stanzas slixmpp has no builder for)."""
        await self._on_loop(lambda c: c.send_raw(xml))

    async def record_errors(self) -> None:
        """Keep error messages in the inbox too (``next_message(type="error")``).

        A bounced message has no body, so slixmpp raises ``message_error`` for it, not
        ``message``; a test about refusals asks for them with this.
        """
        await self._on_loop(
            lambda client: client.add_event_handler("message_error", self._on_message)
        )

    async def subscribe(self, jid: str) -> None:
        """Ask ``jid`` for a presence subscription."""
        await self._on_loop(lambda c: c.send_presence_subscription(pto=jid, ptype="subscribe"))

    async def approve(self, jid: str) -> None:
        """Approve ``jid``'s subscription request (or pre-approve it)."""
        await self._on_loop(lambda c: c.send_presence_subscription(pto=jid, ptype="subscribed"))

    async def deny(self, jid: str) -> None:
        """Refuse or cancel ``jid``'s subscription."""
        await self._on_loop(lambda c: c.send_presence_subscription(pto=jid, ptype="unsubscribed"))

    async def roster(self) -> dict[str, dict[str, Any]]:
        """The roster as the server last pushed it: jid -> {subscription, name, groups}."""

        def read(client: slixmpp.ClientXMPP) -> dict[str, dict[str, Any]]:
            items: dict[str, dict[str, Any]] = {}
            own = client.client_roster
            for jid in own:
                item = own[jid]
                items[str(jid)] = {
                    "subscription": item["subscription"],
                    "name": item["name"],
                    "groups": list(item["groups"]),
                }
            return items

        return await self._on_loop(read)

    async def next_message(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        sender: str | None = None,
        receipt: bool = False,
    ) -> ReceivedMessage:
        """Take the oldest message not yet taken (from ``sender``'s bare JID, if given)."""

        def pick(inbox: _Inbox) -> ReceivedMessage | None:
            for index, msg in enumerate(inbox.messages):
                if sender is not None and msg.sender.split("/")[0] != sender.split("/")[0]:
                    continue
                if bool(msg.receipt_for) != receipt:
                    continue
                return inbox.messages.pop(index)
            return None

        what = "receipt" if receipt else "message"
        return await trio.to_thread.run_sync(
            self._take, pick, timeout, what, abandon_on_cancel=True
        )

    async def next_presence(
        self,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        sender: str | None = None,
        type: str | None = None,
    ) -> ReceivedPresence:
        """Take the oldest presence not yet taken that matches ``sender`` and ``type``."""

        def pick(inbox: _Inbox) -> ReceivedPresence | None:
            for index, pres in enumerate(inbox.presences):
                if sender is not None and pres.sender.split("/")[0] != sender.split("/")[0]:
                    continue
                if type is not None and pres.type != type:
                    continue
                return inbox.presences.pop(index)
            return None

        return await trio.to_thread.run_sync(
            self._take, pick, timeout, f"presence {type or ''}", abandon_on_cancel=True
        )

    async def close(self) -> None:
        """Log out and stop the thread; safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._client is not None and self._thread.is_alive():
            client = self._client

            async def logout() -> None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.disconnect(wait=1.0), 5.0)

            with contextlib.suppress(PersonError):
                await self._call(logout(), 10.0)
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            await trio.to_thread.run_sync(self._thread.join, 10.0)
