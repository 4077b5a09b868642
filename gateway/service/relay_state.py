"""A device's relay as the store describes it: what the service reads to build one at binding.

The relay itself is sans-IO and keeps nothing durable; the store holds what must survive a
restart, and this module reads it back: the device's contact aliases, the roster version it
last saw, the next IncomingMessage id, what waits in its queue (for the MissedSummary of its
next Wake), and its on-behalf signing credential (kept, or issued again when it is missing or
near expiry; :mod:`gateway.service.credentials`).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from gateway.config import Configuration
from gateway.enroll.enrollment import signing_paths
from gateway.impp import ImppAddress
from gateway.relay import DeviceRelay, OnBehalfDeviceSigner, RelayConfig
from gateway.relay.xmpp_upstream import stanza_verifier
from gateway.service.binding import next_incoming_blob
from gateway.service.credentials import CredentialOutcome, device_signing_credential
from gateway.signing import CertificateAuthority, E2eVerifier, KeyEncryptionKey, OnBehalfSigner
from gateway.store import GatewayStore, QueueKind
from gateway.wire import MissedSummary
from gateway.xmpp import Jid, JidError

__all__ = ["SigningKeys", "relay_from_store"]

logger = logging.getLogger("gateway.service")


@dataclass(frozen=True)
class SigningKeys:
    """The gateway's S/MIME side: its CA, the key that wraps device keys, the shared signer."""

    ca: CertificateAuthority
    kek: KeyEncryptionKey
    on_behalf: OnBehalfSigner


async def relay_from_store(
    store: GatewayStore,
    configuration: Configuration,
    signing: SigningKeys,
    kid: bytes,
    account: Jid,
    *,
    now: float,
    count: Callable[[str], None],
) -> tuple[DeviceRelay, E2eVerifier]:
    """The relay of device ``kid`` for ``account``, and the verifier of signatures sent to it.

    Raises the store's :class:`~gateway.store.StoreError` or
    :class:`~gateway.signing.SigningError` when its state cannot be read or its credential
    cannot be made; malformed stored aliases are skipped and counted (``alias-invalid``).
    """
    aliases: dict[Jid, int] = {}
    for alias in await store.aliases(kid):
        try:
            aliases[Jid.parse_untrusted(alias.contact_jid).bare] = alias.alias
        except JidError:
            count("alias-invalid")
    version_text = await store.get_roster_version(kid)
    version = int(version_text) if version_text and version_text.isdigit() else 0
    next_text = await store.get_blob(next_incoming_blob(kid))
    next_id = int(next_text) if next_text and next_text.isdigit() else 0
    queued = await store.device_queue(kid, now=now, limit=configuration.limits.queue_length)
    kinds = [item.kind for item in queued]
    summary = MissedSummary(
        messages=kinds.count(QueueKind.MESSAGE),
        delivery_reports=kinds.count(QueueKind.REPORT),
        presence_notifications=kinds.count(QueueKind.PRESENCE),
        subscription_requests=kinds.count(QueueKind.SUBSCRIPTION),
    )
    credential, outcome = await device_signing_credential(
        store,
        signing.ca,
        signing.kek,
        kid,
        ImppAddress.parse(str(account)),
        now=now,
        enrolled=signing_paths(configuration, kid),
    )
    count(f"signing-credential-{outcome.value}")
    if outcome is not CredentialOutcome.KEPT:
        logger.info("device 0x%s: signing certificate %s", kid.hex(), outcome.value)
    verifier = E2eVerifier(signing.ca.trust_store())
    relay = DeviceRelay(
        account,
        config=RelayConfig(
            message_id_prefix=f"gw-{secrets.token_hex(3)}-",
            link_lost_grace=configuration.limits.link_lost_grace,
            max_directed=configuration.limits.max_directed,
        ),
        signer=OnBehalfDeviceSigner(signing.on_behalf, credential),
        verifier=stanza_verifier(verifier, account),
        aliases=aliases,
        contact_list_version=version,
        next_incoming_id=next_id,
        queued_summary=summary,
    )
    return relay, verifier
