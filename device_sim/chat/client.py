"""The device client and runner a chat needs: subscription requests in, any operation out.

:class:`~device_sim.client.core.DeviceClient` reports messages, reports and presence but not a
SubscriptionRequest (RFC 2779 §5.1.3) or a ContactList (the alias bindings), and offers no call
for SubscriptionCommand or a presence note. :class:`ChatClient` adds them: a SubscriptionRequest
becomes a :class:`~device_sim.chat.model.SubscriptionRequested` event, a ContactList a
:class:`~device_sim.chat.model.ContactsListed` event, and :meth:`ChatClient.send_operation`
queues any device-to-gateway wire message (deferred while asleep, as the client's own sends are).
:class:`ChatRunner` is the runner with :meth:`ChatRunner.send_operation`, which also wakes the
runner's loop so the record leaves now rather than at the next timer.
"""

from __future__ import annotations

from device_sim.chat.model import ContactsListed, SubscriptionRequested
from device_sim.client.core import DeviceClient
from device_sim.client.runner import DeviceRunner
from gateway import wire

__all__ = ["ChatClient", "ChatRunner"]


class ChatClient(DeviceClient):
    """A :class:`DeviceClient` that also surfaces subscription requests and sends any operation."""

    def _on_operation(self, message: wire.Message) -> None:
        if isinstance(message, wire.SubscriptionRequest):
            self._events.append(SubscriptionRequested(message.sender, message.note))
            return
        if isinstance(message, wire.ContactList):
            self._events.append(ContactsListed(message.contacts, message.complete))
            return
        super()._on_operation(message)

    def send_operation(self, message: wire.Message) -> None:
        """Queue one wire message for the gateway (SetPresence, SubscriptionCommand, ...)."""
        self._require_session()
        self._send(message)


class ChatRunner(DeviceRunner):
    """A :class:`DeviceRunner` of a :class:`ChatClient`, with :meth:`send_operation`."""

    def send_operation(self, message: wire.Message) -> None:
        """Queue ``message`` and let the loop send it now."""
        client = self.client
        if not isinstance(client, ChatClient):
            raise TypeError("ChatRunner runs a ChatClient")
        client.send_operation(message)
        self._poke()
