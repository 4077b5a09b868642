"""The service's upstream side: one connection manager per configured account domain (and one
for every other domain), and opening a device's XMPP session from its stored credential.

A domain named in ``[[upstream.domain]]`` gets its own manager (its server address, trust and
stanza limit); any other domain shares the default manager, which finds servers by SRV and
trusts the system store or the upstream CA file. The credential is what enrollment stored:
SCRAM's SaltedPassword where the server offered SCRAM (docs/store.md), so the gateway answers
the challenge without the password or PBKDF2; a stored password otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack

from gateway.config import Configuration, UpstreamDomain
from gateway.service.binding import stored_resumption
from gateway.store import GatewayStore, UpstreamCredential
from gateway.xmpp import ClientConfig, Jid, LocalXmppError, ScramCredential
from gateway.xmpp.net import (
    ServerAddress,
    TrustStore,
    UpstreamManager,
    UpstreamSession,
    UpstreamSettings,
    open_upstream_manager,
)

__all__ = [
    "DEFAULT_MANAGER",
    "UPSTREAM_RESOURCE",
    "UpstreamDirectory",
    "connection_settings",
    "scram_credential",
]

DEFAULT_MANAGER = ""  # the upstream manager of domains without a table of their own
UPSTREAM_RESOURCE = "impp-gateway"  # the XMPP resource the gateway binds for each device

logger = logging.getLogger("gateway.service")


class UpstreamDirectory:
    """The connection managers by domain, and the device sessions opened through them."""

    def __init__(self, configuration: Configuration, count: Callable[[str], None]) -> None:
        self.configuration = configuration
        self.managers: dict[str, UpstreamManager] = {}
        self._count = count

    async def open_managers(self, stack: AsyncExitStack) -> None:
        """Start every manager inside ``stack`` (they close, and their sessions, with it)."""
        configuration = self.configuration
        for domain in (*configuration.upstream.domains, self.domain(DEFAULT_MANAGER)):
            self.managers[domain.domain] = await stack.enter_async_context(
                open_upstream_manager(connection_settings(domain))
            )

    def domain(self, name: str) -> UpstreamDomain:
        """The settings of the account domain ``name``: its own table, or the defaults."""
        upstream = self.configuration.upstream
        for domain in upstream.domains:
            if domain.domain == name:
                return domain
        return UpstreamDomain(name, trust=upstream.trust, max_stanza_size=upstream.max_stanza_size)

    def manager_for(self, account: Jid) -> UpstreamManager:
        """The connection manager of ``account``'s domain: its own if configured, else the
        default one."""
        name = self.domain(account.domain).domain
        return self.managers.get(name) or self.managers[DEFAULT_MANAGER]

    def session_of(self, account: Jid) -> UpstreamSession | None:
        """The upstream session of ``account``, if its manager holds one."""
        return self.manager_for(account).sessions.get(account.bare)

    async def open_session(
        self, store: GatewayStore, name: str, account: Jid
    ) -> UpstreamSession | None:
        """Open ``account``'s session (resuming its stored XEP-0198 stream, if any); None, counted
        and logged, when the store holds no usable credential for it."""
        credential = await store.get_credential(str(account))
        scram = scram_credential(credential)
        if credential is None or (scram is None and credential.password is None):
            self._count("upstream-credential-unusable")
            logger.warning(
                "%s: no usable credential stored for %s (enroll the account again); "
                "no upstream session",
                name,
                account,
            )
            return None
        domain = self.domain(account.domain)
        config = ClientConfig(
            jid=account,
            password=credential.password,
            scram_credential=scram,
            resource=UPSTREAM_RESOURCE,
            allow_plaintext=domain.allow_plaintext,
            max_stanza_size=domain.max_stanza_size,
            defer_inbound_acks=True,  # acknowledged once committed (binding.py)
        )
        resume = await stored_resumption(store, config)
        return await self.manager_for(account).open_session(config, resume=resume)


def connection_settings(domain: UpstreamDomain) -> UpstreamSettings:
    """Connection settings for one account domain: its server address and its trust."""
    static: dict[str, list[ServerAddress]] = {}
    if domain.server_host is not None:
        static[domain.domain] = [ServerAddress(domain.server_host, domain.server_port or 5222)]
    return UpstreamSettings(
        trust=TrustStore(
            ca_file=domain.trust.ca_file, use_system_store=domain.trust.ca_file is None
        ),
        static_hosts=static,
    )


def scram_credential(credential: UpstreamCredential | None) -> ScramCredential | None:
    """The stored SCRAM secret as the XMPP client takes it, or None (PLAIN, or a malformed row).

    Enrollment stores SCRAM's SaltedPassword, salt and iteration count rather than the password
    (docs/store.md); the client answers the server's challenge from it without PBKDF2.
    """
    if credential is None or credential.hash_name not in ("SHA-256", "SHA-1"):
        return None
    try:
        return ScramCredential(
            credential.hash_name,
            credential.salt,
            credential.iterations,
            credential.salted_password,
        )
    except LocalXmppError:
        return None
