"""Relay inputs that are neither wire messages nor upstream events."""

from __future__ import annotations

import dataclasses

__all__ = ["DeviceDelivered"]


@dataclasses.dataclass(frozen=True)
class DeviceDelivered:
    """The device acknowledged the record carrying IncomingMessage ``message_id``.

    The wire protocol has no message for this: the session layer learns it from its record
    acknowledgements (docs/protocol.md §3.5) and the service passes it on, whether the message
    was sent live or drained from the queue. Only now does the sender get its receipt.
    """

    message_id: int
