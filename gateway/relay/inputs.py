"""Relay inputs that are neither wire messages nor upstream events: what the service observes.

The wire protocol has no message for these: the session layer and the store learn them, and
the service passes them to :meth:`~gateway.relay.DeviceRelay.device_operation`.
"""

from __future__ import annotations

import dataclasses

__all__ = ["DeviceDelivered", "DeviceLinkLost", "DeviceLinkUp", "QueueOverflowed"]


@dataclasses.dataclass(frozen=True)
class DeviceDelivered:
    """The device acknowledged the record carrying IncomingMessage ``message_id``.

    The session layer learns it from its record acknowledgements (docs/protocol.md §3.5) and the
    service passes it on, whether the message was sent live or drained from the queue. Only now
    does the sender get its receipt.
    """

    message_id: int


@dataclasses.dataclass(frozen=True)
class DeviceLinkLost:
    """The device's session ended (closed, timed out, its TCP connection gone).

    Without a Sleep before it, the device gets ``link_lost_grace`` to open a new session;
    after that its watchers see it unavailable (RFC 2779 §3.2.4, §3.2.5).
    """


@dataclasses.dataclass(frozen=True)
class DeviceLinkUp:
    """The device has a session again (established or resumed): a lost device is back."""


@dataclasses.dataclass(frozen=True)
class QueueOverflowed:
    """The device's durable queue refused IncomingMessage ``message_id``: it was full.

    The message is gone; its sender is told with a stanza error (RFC 2779 §5.4.1).
    """

    message_id: int
