"""Helpers for tests that run upstream sessions against the private Prosody."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import trio

from gateway.xmpp import events as ev
from gateway.xmpp.client import ClientConfig
from gateway.xmpp.jid import Jid
from gateway.xmpp.net.manager import UpstreamManager, UpstreamSettings, open_upstream_manager
from gateway.xmpp.net.resolver import ServerAddress
from gateway.xmpp.net.tls import TrustStore
from tests.support.prosody import Account, ProsodyServer

TIMEOUT = 20.0  # seconds of real time to wait for an event, never slept


def settings_for(prosody: ProsodyServer, port: int | None = None) -> UpstreamSettings:
    """Reach the virtual host through the static map (it is not in DNS), trust only its CA."""
    return UpstreamSettings(
        trust=TrustStore(ca_file=prosody.ca_file, use_system_store=False),
        static_hosts={prosody.domain: [ServerAddress(prosody.host, port or prosody.c2s_port)]},
        reconnect_initial_delay=0.2,
        reconnect_max_delay=1.0,
    )


def config_for(account: Account, **overrides: object) -> ClientConfig:
    config = ClientConfig(jid=Jid.parse_untrusted(account.jid), password=account.password)
    return dataclasses.replace(config, **overrides)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def manager_for(
    prosody: ProsodyServer, port: int | None = None
) -> AsyncIterator[UpstreamManager]:
    async with open_upstream_manager(settings_for(prosody, port)) as manager:
        yield manager


class EventLog:
    """Reads a session's events; ``wait_for`` returns the first of a type, keeping the rest."""

    def __init__(self, channel: trio.MemoryReceiveChannel[ev.UpstreamSessionEvent]) -> None:
        self.channel = channel
        self.seen: list[ev.UpstreamSessionEvent] = []

    async def wait_for(self, kind: type, *, timeout: float = TIMEOUT) -> ev.UpstreamSessionEvent:
        with trio.fail_after(timeout):
            while True:
                for index, event in enumerate(self.seen):
                    if isinstance(event, kind):
                        return self.seen.pop(index)
                self.seen.append(await self.channel.receive())

    def of(self, kind: type) -> list[ev.UpstreamSessionEvent]:
        return [e for e in self.seen if isinstance(e, kind)]
