"""The narrow interface the rest of the gateway uses for its durable state (`GatewayStore`).

Every method that writes returns only after the write is durable (committed with the backend's
strongest setting: SQLite WAL with ``synchronous=FULL``, PostgreSQL with ``synchronous_commit=on``),
so its return is what an acknowledgement to a device (session ack) or to a server (XEP-0198
``<a h>``) may rest on. A write that raises :class:`~gateway.store.errors.StoreError` is not
durable. Times are arguments (``now``, ``expires_at``: seconds on the caller's clock), never read
from a clock here, so the relay's core stays testable with virtual time.

SQLite implements it in :mod:`gateway.store.sqlite`; docs/store.md says how a PostgreSQL backend
would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from gateway.store.records import (
    ContactAlias,
    DeviceQueueItem,
    DeviceRecord,
    EnqueuedUpstream,
    EnqueueResult,
    QueueKind,
    StreamResumption,
    UpstreamCredential,
    UpstreamQueueItem,
    UpstreamState,
)


class GatewayStore(Protocol):
    """The gateway's durable state: devices, credentials, aliases, both queues, de-duplication,
    named blobs, XEP-0198 stream state and the signature verifier's replay memory."""

    # -- the device registry ----------------------------------------------------------------
    async def enroll_device(self, device: DeviceRecord) -> bool:
        """Register a device; False (and nothing written) if its kid is already registered."""
        ...

    async def revoke_device(self, kid: bytes, *, now: float) -> bool:
        """Mark a device revoked at ``now``; False if unknown or already revoked."""
        ...

    async def get_device(self, kid: bytes) -> DeviceRecord | None:
        """The device with this kid, or None."""
        ...

    async def list_devices(self) -> Sequence[DeviceRecord]:
        """Every registered device, enrolled or revoked, oldest first."""
        ...

    # -- upstream credentials ---------------------------------------------------------------
    async def put_credential(self, credential: UpstreamCredential) -> None:
        """Store (or replace) the credential for its account."""
        ...

    async def get_credential(self, account_jid: str) -> UpstreamCredential | None:
        """The account's credential, or None."""
        ...

    # -- contact aliases and roster versions -------------------------------------------------
    async def assign_alias(self, device_kid: bytes, contact_jid: str) -> int:
        """The contact's alias for this device: its existing one, else the smallest unused."""
        ...

    async def remove_alias(self, device_kid: bytes, contact_jid: str) -> bool:
        """Forget the contact's alias; False if it had none."""
        ...

    async def aliases(self, device_kid: bytes) -> Sequence[ContactAlias]:
        """Every alias of this device, by alias."""
        ...

    async def set_roster_version(self, device_kid: bytes, version: str) -> None:
        """Record the roster version the device's aliases correspond to."""
        ...

    async def get_roster_version(self, device_kid: bytes) -> str | None:
        """The device's recorded roster version, or None."""
        ...

    # -- the to-device queue ----------------------------------------------------------------
    async def enqueue_to_device(
        self,
        device_kid: bytes,
        message_id: bytes,
        kind: QueueKind,
        payload: bytes,
        *,
        now: float,
        expires_at: float | None = None,
        coalesce_key: str | None = None,
    ) -> EnqueueResult:
        """Append an item to the device's queue: QUEUED; REPLACED when an item with the same
        ``coalesce_key`` was queued (it is removed, the new one goes to the tail); DUPLICATE
        when an item with this message id is queued (nothing changes); OVERFLOW when the
        device's queue is full (nothing stored; a replacement never overflows)."""
        ...

    async def put_presence(
        self,
        device_kid: bytes,
        contact_jid: str,
        message_id: bytes,
        payload: bytes,
        *,
        now: float,
        expires_at: float | None = None,
    ) -> EnqueueResult:
        """Queue the contact's presence for the device, coalesced per contact: a presence of
        the same contact still queued is replaced (REPLACED), and the new one goes to the tail,
        after anything the contact sent in between. Otherwise as :meth:`enqueue_to_device`."""
        ...

    async def device_queue(
        self, device_kid: bytes, *, now: float, limit: int = 100
    ) -> Sequence[DeviceQueueItem]:
        """Up to ``limit`` unexpired items for the device, oldest first."""
        ...

    async def remove_from_device_queue(self, device_kid: bytes, seqs: Sequence[int]) -> int:
        """Remove delivered (device-acknowledged) items; return how many were removed."""
        ...

    async def expire_device_queue(self, *, now: float) -> Sequence[DeviceQueueItem]:
        """Remove every item whose expiry has passed and return them, so each sender can be
        told (RFC 2779 §5.4.1)."""
        ...

    async def device_queue_length(self, device_kid: bytes) -> int:
        """How many items are queued for the device (expired or not)."""
        ...

    async def device_queue_summary(self, *, now: float) -> Mapping[bytes, tuple[int, float | None]]:
        """Every device with queued items: how many (expired or not, as
        :meth:`device_queue_length`) and when its oldest unexpired one was enqueued (None if all
        have expired), in one read (the service samples every device's queue each second)."""
        ...

    # -- the to-upstream queue --------------------------------------------------------------
    async def enqueue_upstream(
        self, account_jid: str, device_message_id: bytes, payload: bytes, *, now: float
    ) -> EnqueueResult:
        """Append a stanza for the account: QUEUED, DUPLICATE (this device message id is already
        queued for the account) or OVERFLOW."""
        ...

    async def enqueue_upstream_once(
        self,
        account_jid: str,
        device_kid: bytes,
        device_message_id: bytes,
        queue_id: bytes,
        payload: bytes,
        *,
        now: float,
        remember_until: float,
        generation: int = 0,
    ) -> EnqueuedUpstream:
        """A device's message for the account, exactly once: in one transaction, queue it
        under ``queue_id`` (``queue_id/N`` for the id's generation N > 0) and remember
        ``device_message_id`` for the device until ``remember_until`` (as
        :meth:`remember_device_message`). DUPLICATE if it is queued already or the id is
        remembered and not released (sent before, even by an earlier process); OVERFLOW if the
        account's queue is full (nothing written). An id released
        (:meth:`release_device_message`) is accepted again only with a ``generation`` above
        the released one; offered with a lower one, the answer is DUPLICATE with ``released``
        and the generation to offer it with (see :class:`EnqueuedUpstream`)."""
        ...

    async def set_upstream_state(
        self, account_jid: str, seqs: Sequence[int], state: UpstreamState, *, now: float
    ) -> int:
        """Move items to ``state``; return how many were changed."""
        ...

    async def upstream_queue(
        self, account_jid: str, *, states: Sequence[UpstreamState], limit: int = 100
    ) -> Sequence[UpstreamQueueItem]:
        """Up to ``limit`` items of the account in one of ``states``, oldest first."""
        ...

    async def remove_upstream(self, account_jid: str, seqs: Sequence[int]) -> int:
        """Remove items (typically once acked); return how many were removed."""
        ...

    # -- de-duplication ids -----------------------------------------------------------------
    async def remember_device_message(
        self, device_kid: bytes, message_id: bytes, *, expires_at: float
    ) -> bool:
        """Record a device message id; False if it was already recorded and not released
        (a retransmission). Recording a released id accepts it again, one generation up."""
        ...

    async def release_device_message(self, device_kid: bytes, message_id: bytes) -> bool:
        """The device may use ``message_id`` again (its final DeliveryReport was acknowledged):
        it is no longer a duplicate; its generation is kept until the id expires. Durable and
        idempotent: False if the id was not recorded or already released."""
        ...

    async def remember_stanza_id(
        self, account_jid: str, stanza_id: str, *, expires_at: float
    ) -> bool:
        """Record a stanza id or origin-id (XEP-0359) for the account; False if seen before."""
        ...

    # -- the signature verifier's replay memory ---------------------------------------------
    async def remember_digest(self, digest: bytes, *, expires_at: float) -> bool:
        """Record a signed message's digest; False if it was already recorded (a replay)."""
        ...

    async def forget_expired(self, *, now: float) -> int:
        """Drop de-duplication ids and replay digests whose expiry has passed; return how many."""
        ...

    # -- named blobs: the ticket key ring, resumption state ---------------------------------
    async def put_blob(self, name: str, value: bytes, *, now: float) -> None:
        """Store (or replace) a named blob."""
        ...

    async def get_blob(self, name: str) -> bytes | None:
        """The named blob, or None."""
        ...

    # -- XEP-0198 stream state --------------------------------------------------------------
    async def put_stream_resumption(self, state: StreamResumption) -> None:
        """Store (or replace) the account's stream resumption state."""
        ...

    async def get_stream_resumption(self, account_jid: str) -> StreamResumption | None:
        """The account's stream resumption state, or None."""
        ...

    async def clear_stream_resumption(self, account_jid: str) -> bool:
        """Forget it (the stream cannot be resumed); False if there was none."""
        ...

    # -- lifetime ---------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Finish every operation already submitted, then refuse new ones."""
        ...
