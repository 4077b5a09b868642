"""Shared helpers for the EDHOC tests: credentials, lookups and a pair driver."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.edhoc import (
    CipherSuite,
    Credential,
    CredentialTransfer,
    Curve,
    IdCred,
    Initiator,
    Method,
    Responder,
)


def lookup_from(*credentials: Credential, revoked: Sequence[Credential] = ()):  # type: ignore[no-untyped-def]
    """A credential lookup over a fixed registry; ``revoked`` credentials are refused."""
    registry = [c.public() for c in credentials]
    revoked_encodings = {c.encoded for c in revoked}

    def lookup(id_cred: IdCred) -> list[Credential]:
        return [
            candidate
            for candidate in registry
            if id_cred.matches(candidate) and candidate.encoded not in revoked_encodings
        ]

    return lookup


# Fixed private keys: tests are deterministic apart from ephemeral keys.
_SEEDS = {
    "device": bytes.fromhex("fb13adeb6518cee5f88417660841142e830a81fe334380a953406a1305e8706b"),
    "gateway": bytes.fromhex("72cc4761dbd4c78f758931aa589d348d1ef874a7e303ede2f140dcf3e6aa4aac"),
}


def credential(name: str, curve: Curve, kid: bytes) -> Credential:
    """A CCS credential with a fixed key for ``name`` on ``curve``."""
    return Credential.new_ccs(curve=curve, private_key=_SEEDS[name], kid=kid, subject=name)


def credentials_for(name: str, kid: bytes) -> list[Credential]:
    """One credential per key type: what a party needs for every method and suite."""
    return [credential(name, curve, kid) for curve in (Curve.ED25519, Curve.X25519, Curve.P256)]


@dataclass
class Pair:
    """An Initiator and a Responder wired to trust each other."""

    initiator: Initiator
    responder: Responder


def make_pair(
    method: Method = Method.STATIC_DH_STATIC_DH,
    suite: CipherSuite = CipherSuite.SUITE_2,
    *,
    transfer: CredentialTransfer = CredentialTransfer.BY_REFERENCE,
    responder_suites: Sequence[CipherSuite] | None = None,
    known_ead_labels: Sequence[int] = (),
) -> Pair:
    """A pair for ``method`` and ``suite`` with CCS credentials known to both sides."""
    device = credentials_for("device", b"\x2b")
    gateway = credentials_for("gateway", b"\x0a")
    initiator = Initiator(
        method=method,
        suites=[suite],
        c_i=b"\x37",
        credential=device,
        credential_lookup=lookup_from(*gateway),
        credential_transfer=transfer,
        known_ead_labels=known_ead_labels,
    )
    responder = Responder(
        suites=responder_suites or [suite],
        c_r=b"\x27",
        credential=gateway,
        credential_lookup=lookup_from(*device),
        credential_transfer=transfer,
        known_ead_labels=known_ead_labels,
    )
    return Pair(initiator, responder)


def handshake(pair: Pair, *, message_4: bool = False) -> list[bytes]:
    """Run a whole handshake; return the messages sent."""
    m1 = pair.initiator.message_1()
    pair.responder.receive_message_1(m1)
    m2 = pair.responder.message_2()
    pair.initiator.receive_message_2(m2)
    m3 = pair.initiator.message_3()
    pair.responder.receive_message_3(m3)
    messages = [m1, m2, m3]
    if message_4:
        m4 = pair.responder.message_4()
        pair.initiator.receive_message_4(m4)
        messages.append(m4)
    return messages
