"""The relay's policy and limits (:class:`RelayConfig`), what it counts (:class:`RelayStatistics`).

Every limit is a constructor argument with a named default, as STYLE.md asks; the service builds
one :class:`RelayConfig` per device, and the metrics read each relay's :class:`RelayStatistics`
(docs/metrics.md names the families).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

from gateway.wire import SignatureStatus
from gateway.xmpp import MessageStanza, PresenceStanza

__all__ = [
    "DEFAULT_LINK_LOST_GRACE",
    "DEFAULT_MAX_DIRECTED",
    "DEFAULT_MAX_PENDING_REPORTS",
    "DEFAULT_QUEUE_LIFETIME",
    "DEFAULT_REPORT_TIMEOUT",
    "DEFAULT_SLEEP_GRACE",
    "DEFAULT_WAKE_SYNC_TIMEOUT",
    "InboundVerifier",
    "RelayConfig",
    "RelayStatistics",
]

DEFAULT_REPORT_TIMEOUT = 300.0  # seconds without receipt or error before UNKNOWN (RFC 2779 §4.2.1)
DEFAULT_SLEEP_GRACE = 60.0  # seconds past a declared sleep before watchers see the device gone
# Seconds a device whose session ended without Sleep has to open a new one before its watchers
# see it unavailable (RFC 2779 §3.2.4): long enough for a radio to re-attach after a cell change
# or a NAT timeout, short enough that a dead battery shows within minutes.
DEFAULT_LINK_LOST_GRACE = 300.0
DEFAULT_QUEUE_LIFETIME = 7 * 86_400.0  # a week: a queued message older than this is reported
DEFAULT_MAX_PENDING_REPORTS = 256  # SendMessages awaiting an outcome; more get QUEUE_FULL
DEFAULT_MAX_OWED_RECEIPTS = 4096  # inbound messages awaiting the device's ack (receipt, overflow)
DEFAULT_MAX_TRACKED_QUEUE = 4096  # queued messages whose expiry the relay watches
DEFAULT_MAX_RESOURCES = 8  # presence resources kept per contact (a person has a few clients)
DEFAULT_MAX_PENDING_LIST_REQUESTS = 4  # ContactListRequests waiting for the roster
DEFAULT_MAX_DIRECTED = 64  # watchers with a directed presence per device; more get QUEUE_FULL
DEFAULT_WAKE_SYNC_TIMEOUT = 10.0  # seconds a wake waits at most for the upstream's flush

InboundVerifier = Callable[[MessageStanza | PresenceStanza, float], SignatureStatus]
"""Checks an inbound stanza's RFC 3923 signature (see ``xmpp_upstream.stanza_verifier``)."""


@dataclasses.dataclass(frozen=True)
class RelayConfig:
    """Policy and limits of one relay (named defaults above)."""

    sign_messages: bool = True  # RFC 3923 signature on behalf of the device, when a signer is set
    sign_presence: bool = True
    report_timeout: float = DEFAULT_REPORT_TIMEOUT
    sleep_grace: float = DEFAULT_SLEEP_GRACE
    link_lost_grace: float = DEFAULT_LINK_LOST_GRACE
    queue_lifetime: float = DEFAULT_QUEUE_LIFETIME
    max_pending_reports: int = DEFAULT_MAX_PENDING_REPORTS
    max_owed_receipts: int = DEFAULT_MAX_OWED_RECEIPTS
    max_tracked_queue: int = DEFAULT_MAX_TRACKED_QUEUE
    max_resources: int = DEFAULT_MAX_RESOURCES
    max_pending_list_requests: int = DEFAULT_MAX_PENDING_LIST_REQUESTS
    max_directed: int = DEFAULT_MAX_DIRECTED
    wake_sync_timeout: float = DEFAULT_WAKE_SYNC_TIMEOUT  # gateway/relay/flush.py
    message_id_prefix: str = "gw-"  # upstream ids are this, then a counter


@dataclasses.dataclass(frozen=True)
class RelayStatistics:
    """A snapshot of one relay: what it did not pass on (by reason), what is in flight, and
    totals since it started, for the metrics.

    Reports to the device count DeliveryReports by status; signing counts the RFC 3923
    signatures made on the device's behalf and the attempts that failed (the operation then
    goes out unsigned or is refused, docs/relay.md); inbound counts the verifier's verdicts;
    ``presence_unsubscribed`` counts presence withheld from the device because it has no
    subscription to the sender (RFC 2779 §5.3.2); ``overflow_reports``, ``expiry_reports`` and
    ``blocked_reports`` count the senders told that their message will not reach the device
    (§5.4.1: its queue was full, the message expired, the device blocked the sender);
    ``unavailable_announced`` counts the times watchers were told the device is gone without
    a goodbye (§3.2.4); ``directed_watchers`` is how many watchers have a directed presence now;
    ``wake_sync_timeouts`` counts wakes completed without the server's answer to the flush
    ping (docs/relay.md, "Wake").
    """

    dropped: Mapping[str, int]
    pending_reports: int
    owed_receipts: int
    tracked_queue: int
    reports_delivered: int = 0
    reports_failed: int = 0
    reports_unknown: int = 0
    messages_signed: int = 0
    presence_signed: int = 0
    signing_failures: int = 0
    inbound_verified: int = 0
    inbound_signature_failed: int = 0
    inbound_unsigned: int = 0
    presence_unsubscribed: int = 0
    overflow_reports: int = 0
    expiry_reports: int = 0
    blocked_reports: int = 0
    unavailable_announced: int = 0
    directed_watchers: int = 0
    wake_sync_timeouts: int = 0
