"""Shared builders for the relay tests: a device account, contacts, a ready relay."""

from __future__ import annotations

from typing import TypeVar

from gateway.relay import DeviceRelay, DeviceSigner, InboundVerifier, RelayConfig
from gateway.relay import commands as cmd
from gateway.xmpp import Jid, RosterItem, RosterSubscription
from gateway.xmpp import events as ev

DEVICE = Jid.parse_untrusted("device@example.net")
ALICE = Jid.parse_untrusted("alice@example.org")
BOB = Jid.parse_untrusted("bob@example.org")
NOW = 1_700_000_000.0

T = TypeVar("T")


def ready_relay(
    *,
    config: RelayConfig | None = None,
    signer: DeviceSigner | None = None,
    verifier: InboundVerifier | None = None,
    deduplication_ids: tuple[int, ...] = (),
) -> DeviceRelay:
    """A relay whose upstream session is established and whose roster holds Alice (both)."""
    relay = DeviceRelay(
        DEVICE,
        config=config or RelayConfig(),
        signer=signer,
        verifier=verifier,
        deduplication_ids=deduplication_ids,
    )
    relay.upstream_event(
        ev.SessionEstablished(jid=DEVICE, stream_management=True, resumable=True), NOW
    )
    relay.upstream_event(
        ev.RosterReceived(
            items=(RosterItem(ALICE, name="Alice", subscription=RosterSubscription.BOTH),),
            version=None,
        ),
        NOW,
    )
    return relay


def of_type(commands: list[cmd.Command], kind: type[T]) -> list[T]:
    """The commands of one class, in order."""
    return [c for c in commands if isinstance(c, kind)]


def sent_to_device(commands: list[cmd.Command]) -> list[object]:
    """The wire messages sent to the device now, in order."""
    return [c.message for c in commands if isinstance(c, cmd.SendToDevice)]


def flushed(relay: DeviceRelay, now: float) -> list[cmd.Command]:
    """The upstream answers the relay's sync (a ping): the flush after ``<active/>`` is over."""
    return relay.upstream_event(ev.PingAnswered("sync", 0.01), now)
