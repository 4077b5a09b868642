"""The upstream TLS context is built once per trust store and shared by the manager's sessions,
and is rebuilt when the CA file changes (gateway.xmpp.net.tls.SharedClientContext)."""

from __future__ import annotations

import datetime
import os
import random
import ssl
from pathlib import Path

import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.xmpp.client import ClientConfig
from gateway.xmpp.jid import Jid
from gateway.xmpp.net import SharedClientContext, TrustStore
from gateway.xmpp.net.manager import UpstreamManager, UpstreamSettings
from gateway.xmpp.net.resolver import ServerAddress, ServerResolver

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _ca_pem(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def _names(context: ssl.SSLContext) -> list[str]:
    """The common names of the CA certificates the context trusts."""
    names = []
    for certificate in context.get_ca_certs():
        subject = certificate["subject"]
        assert isinstance(subject, tuple)
        names += [pair[1] for rdn in subject for pair in rdn if pair[0] == "commonName"]
    return names


def test_the_context_is_built_once_and_shared(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(_ca_pem("first CA"))
    shared = SharedClientContext(TrustStore(bundle, use_system_store=False))

    first = shared.get()

    assert shared.get() is first
    assert shared.builds == 1
    assert _names(first) == ["first CA"]


def test_a_replaced_ca_file_gives_a_new_context(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(_ca_pem("first CA"))
    shared = SharedClientContext(TrustStore(bundle, use_system_store=False))
    first = shared.get()

    replacement = tmp_path / "new.pem"
    replacement.write_bytes(_ca_pem("second CA") + b"\n")
    os.replace(replacement, bundle)  # a new inode, as an operator's deploy would give
    second = shared.get()

    assert second is not first
    assert shared.builds == 2
    assert _names(second) == ["second CA"]


def test_a_missing_ca_file_fails_every_time(tmp_path: Path) -> None:
    shared = SharedClientContext(TrustStore(tmp_path / "absent.pem", use_system_store=False))

    for _ in range(2):
        with pytest.raises(FileNotFoundError):
            shared.get()


async def test_the_sessions_of_a_manager_share_its_context(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(_ca_pem("shared CA"))
    settings = UpstreamSettings(trust=TrustStore(bundle, use_system_store=False))

    async def never(domain: str, redirect: object) -> tuple[trio.abc.Stream, ServerAddress]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    async with trio.open_nursery() as nursery:
        manager = UpstreamManager(
            nursery, settings, ServerResolver(static_hosts={}), random.Random(1), connector=never
        )
        for name in ("dev1", "dev2", "dev3"):
            await manager.open_session(ClientConfig(jid=Jid(name, "impp.test"), password="pw"))
        nursery.cancel_scope.cancel()

    assert manager.tls.builds == 1
