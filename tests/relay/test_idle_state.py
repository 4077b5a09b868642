"""A relay keeps no empty per-device containers while idle, and its counters stay exact.

The relay stores only the totals that are non-zero, no blocked set while nothing is blocked, and
drops the tables of messages awaiting an outcome once none does (gateway/relay). These tests
check that what is reported and decided is what it was with full tables.
"""

from __future__ import annotations

import dataclasses
import sys

from gateway.relay import commands as cmd
from gateway.wire import (
    DeliveryReport,
    DeliveryStatus,
    SendMessage,
    SubscriptionAction,
    SubscriptionCommand,
    TextContent,
)
from gateway.xmpp import events as ev
from tests.relay.helpers import ALICE, NOW, of_type, ready_relay, sent_to_device


def _message(message_id: int) -> SendMessage:
    return SendMessage(id=message_id, to=0, content=TextContent("hi"))


def test_statistics_report_every_total_from_zero_and_count_each_once() -> None:
    relay = ready_relay()
    fresh = relay.statistics()
    totals = {f.name for f in dataclasses.fields(fresh)} - {
        "dropped",
        "pending_reports",
        "owed_receipts",
        "tracked_queue",
        "directed_watchers",
    }
    assert all(getattr(fresh, name) == 0 for name in totals)
    for message_id in (1, 2):
        (send,) = of_type(
            relay.device_operation(_message(message_id), NOW), cmd.UpstreamSendMessage
        )
        relay.upstream_event(ev.ReceiptReceived(ALICE, send.message_id), NOW)
    after = relay.statistics()
    assert after.reports_delivered == 2
    assert all(getattr(after, name) == 0 for name in totals - {"reports_delivered"})


def test_tables_of_finished_messages_are_dropped_and_new_messages_are_tracked_again() -> None:
    relay = ready_relay()
    for message_id in (5, 5, 6):  # 5 again after its outcome: a new message, as before
        commands = relay.device_operation(_message(message_id), NOW)
        (send,) = of_type(commands, cmd.UpstreamSendMessage)
        assert relay.device_operation(_message(message_id), NOW) == []  # pending: not resent
        outcome = relay.upstream_event(ev.ReceiptReceived(ALICE, send.message_id), NOW + 1)
        assert sent_to_device(outcome) == [DeliveryReport(message_id, DeliveryStatus.DELIVERED)]
        assert relay.statistics().pending_reports == 0
        assert sys.getsizeof(relay._outgoing._by_device_id) == sys.getsizeof({})
    assert relay.next_deadline() is None


def test_restored_ids_are_acknowledged_again_with_or_without_any() -> None:
    restored = ready_relay(deduplication_ids=(9,))
    assert restored.device_operation(_message(9), NOW) == [cmd.AcknowledgeDevice(9)]
    plain = ready_relay()
    assert of_type(plain.device_operation(_message(9), NOW), cmd.UpstreamSendMessage)


def test_block_unblock_block_again_is_seen_each_time() -> None:
    relay = ready_relay()
    assert not relay.contacts.is_blocked(ALICE)
    for _ in range(2):
        relay.device_operation(SubscriptionCommand(SubscriptionAction.BLOCK, 0), NOW)
        assert relay.contacts.is_blocked(ALICE)
        (contact,) = relay.contacts.contacts()
        assert contact.blocked
        relay.device_operation(SubscriptionCommand(SubscriptionAction.UNBLOCK, 0), NOW)
        assert not relay.contacts.is_blocked(ALICE)
        (contact,) = relay.contacts.contacts()
        assert not contact.blocked
