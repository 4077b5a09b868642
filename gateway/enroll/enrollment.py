"""Enroll one device: check its account, give it an EDHOC identity, register it, provision it.

Theory of operation. :func:`enroll` does, in this order, and stores nothing until the account's
server has accepted the password:

1. read the gateway's own public credential and open its CA and device key-encryption key
   (``gateway.signing``, as ``impp-gateway ca enroll`` does), so a broken installation fails
   before anyone's password is sent anywhere;
2. optionally create the account by in-band registration (XEP-0077, :mod:`.registration`);
3. log in to the account (:mod:`.login`) and keep SCRAM's SaltedPassword, salt, iteration count
   and hash, or the password itself only when the server offers no SCRAM;
4. make the device's EDHOC key pair (P-256, for method 3 with suite 2, docs/protocol.md §3.3), or
   take the public key the device made (``device_public_key``), and build its CCS credential
   (RFC 8392) with a kid unused in the store (:func:`kid_candidates`: the one-byte kids EDHOC
   sends in their compact form first, RFC 9528 §3.5.3.2);
5. issue the device's S/MIME signing certificate and write its key sealed under the KEK;
6. write the provisioning file (:mod:`.provisioning`, mode 0600) and the signing files under
   temporary names, then the credential and the device record into the store (the device record
   last: it is what makes the device exist), then rename the files into place. An attempt whose
   kid another enrollment took meanwhile (``enroll_device`` says False) discards its files and
   tries the next kid.

One account has at most one enrolled device (transparent mode: one XMPP session per device
account); a second enrollment of the account needs the first device revoked.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.config import GATEWAY_KID, Configuration, load_gateway_identity
from gateway.edhoc import Credential, Curve
from gateway.edhoc import cbor as edhoc_cbor
from gateway.edhoc.credentials import (
    CLAIM_CNF,
    CLAIM_SUB,
    CNF_COSE_KEY,
    KEY_CRV,
    KEY_KID,
    KEY_KTY,
    KEY_X,
    KEY_Y,
    KTY_EC2,
)
from gateway.enroll.login import LoginResult, check_login, upstream_for
from gateway.enroll.provisioning import (
    GatewayEndpoint,
    Provisioning,
    Transport,
    write_provisioning_file,
)
from gateway.enroll.registration import register_account
from gateway.impp import ImppAddress
from gateway.jid import Jid, JidError
from gateway.signing import write_credential
from gateway.signing.ca_directory import open_ca, open_device_kek
from gateway.store import (
    DeviceRecord,
    EnrollmentState,
    GatewayStore,
    UpstreamCredential,
    open_sqlite_store,
)

__all__ = [
    "PLAIN_HASH_NAME",
    "EnrollmentError",
    "EnrollmentOutcome",
    "EnrollmentRequest",
    "ccs_for_public_key",
    "enroll",
    "gateway_endpoints",
    "kid_candidates",
    "load_device_public_key",
    "signing_paths",
]

# hash_name of a credential that holds the password itself (a server without SCRAM); the
# schema's other columns then hold placeholders (no salt, no salted password, one iteration).
PLAIN_HASH_NAME: Final = "PLAIN"
DEVICES_DIRECTORY: Final = "devices"  # the devices' signing keys and certificates, in data_dir
PROVISIONING_DIRECTORY: Final = "provisioning"
_MAX_KID_ATTEMPTS: Final = 16  # concurrent enrollments racing for one kid


class EnrollmentError(Exception):
    """Enrollment did not happen; the message says why and how to fix it."""


@dataclass(frozen=True)
class EnrollmentRequest:
    """What the operator asked for."""

    account: str
    password: str = field(repr=False)
    register: bool = False
    device_public_key: bytes | None = None  # x || y of the device's own P-256 key
    output: Path | None = None  # the provisioning file; default under data_dir/provisioning
    gateway_host: str | None = None  # the address devices use, if not the listen address


@dataclass(frozen=True)
class EnrollmentOutcome:
    """What enrollment did, for the command's report."""

    device: DeviceRecord
    login: LoginResult
    registered: bool
    key_generated: bool
    provisioning_file: Path
    provisioning: Provisioning = field(repr=False)
    signing_key_file: Path
    signing_certificate_file: Path
    stored_password: bool


def kid_candidates() -> Iterator[bytes]:
    """Device kids in the order they are handed out: compact one-byte kids first.

    RFC 9528 §3.5.3.2 sends a one-byte kid whose value is a one-byte CBOR integer (0x00-0x17,
    0x20-0x37) as that integer, one byte in ID_CRED_I; the gateway's own kid is skipped.
    """
    compact = [*range(0x00, 0x18), *range(0x20, 0x38)]
    for value in compact:
        if bytes([value]) != GATEWAY_KID:
            yield bytes([value])
    for value in range(0x100):
        if value not in compact:
            yield bytes([value])
    length = 2
    while True:
        for value in range(1 << (8 * length)):
            yield value.to_bytes(length, "big")
        length += 1


def ccs_for_public_key(public_key: bytes, *, kid: bytes, subject: str) -> Credential:
    """The CCS credential of a P-256 public key (x || y), as ``Credential.new_ccs`` builds it."""
    cose_key: dict[int, object] = {
        KEY_KTY: KTY_EC2,
        KEY_KID: kid,
        KEY_CRV: 1,  # P-256 (RFC 9053 §7.1)
        KEY_X: public_key[:32],
        KEY_Y: public_key[32:],
    }
    encoded = edhoc_cbor.encode({CLAIM_SUB: subject, CLAIM_CNF: {CNF_COSE_KEY: cose_key}})
    return Credential.from_ccs(encoded)


def load_device_public_key(data: bytes, source: str) -> bytes:
    """x || y of a P-256 public key in PEM or DER SubjectPublicKeyInfo; refuses private keys."""
    if b"PRIVATE KEY" in data:
        raise EnrollmentError(
            f"{source} holds a private key; give only the device's public key, made on the "
            "device with 'openssl pkey -in KEY.pem -pubout -out PUBLIC.pem'"
        )
    try:
        key = (
            serialization.load_pem_public_key(data)
            if data.lstrip().startswith(b"-----")
            else serialization.load_der_public_key(data)
        )
    except (ValueError, TypeError) as exc:
        raise EnrollmentError(
            f"{source} is not a public key (PEM or DER SubjectPublicKeyInfo): {exc}"
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise EnrollmentError(
            f"{source} is not a P-256 key; EDHOC suite 2 (docs/protocol.md §3.3) needs P-256"
        )
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return point[1:]


def gateway_endpoints(
    configuration: Configuration, gateway_host: str | None
) -> tuple[GatewayEndpoint, ...]:
    """The listeners a device may use, with the address it must use for each."""
    endpoints = []
    for transport, addresses in (
        (Transport.UDP, configuration.listen.udp),
        (Transport.TCP, configuration.listen.tcp),
    ):
        for address in addresses:
            host = gateway_host or address.host
            if _is_unspecified(host):
                raise EnrollmentError(
                    f"the gateway listens on {address} (every address), which a device cannot "
                    "dial; give the address devices reach it at with --gateway-host HOST"
                )
            endpoint = GatewayEndpoint(transport, host, address.port)
            if endpoint not in endpoints:
                endpoints.append(endpoint)
    if not endpoints:
        raise EnrollmentError(
            f"{configuration.source} configures no listener ([listen] udp and tcp are empty): "
            "a device would have nowhere to connect"
        )
    return tuple(endpoints)


def _is_unspecified(host: str) -> bool:
    """Whether ``host`` is the any-address of IPv4 or IPv6 (a listener on every interface)."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def signing_paths(configuration: Configuration, kid: bytes) -> tuple[Path, Path]:
    """Where a device's sealed signing key and its certificate live (by kid, in data_dir)."""
    directory = configuration.gateway.data_dir / DEVICES_DIRECTORY
    return directory / f"{kid.hex()}.key", directory / f"{kid.hex()}.crt"


def _account(text: str) -> Jid:
    try:
        jid = Jid.parse_untrusted(text)
    except JidError as exc:
        raise EnrollmentError(f"--jid {text!r} is not an XMPP address: {exc}") from exc
    if jid.local is None or jid.resource is not None:
        raise EnrollmentError(
            f"--jid {text!r} must be an account address user@domain, without a /resource"
        )
    return jid


async def _free_kid(store: GatewayStore) -> bytes:
    used = {device.kid for device in await store.list_devices()}
    return next(kid for kid in kid_candidates() if kid not in used)


async def enroll(configuration: Configuration, request: EnrollmentRequest) -> EnrollmentOutcome:
    """Enroll one device as the module docstring says; raises EnrollmentError (or LoginError,
    RegistrationError, KeyFileError, StoreError) with a message for the operator."""
    jid = _account(request.account)
    account = str(jid)
    upstream = upstream_for(configuration, jid.domain)
    endpoints = gateway_endpoints(configuration, request.gateway_host)
    gateway_credential = load_gateway_identity(
        configuration.edhoc.key_file, configuration.edhoc.credential_file
    ).public()
    ca = open_ca(configuration.signing.ca_dir, configuration.signing.passphrase_file)
    kek, _notes = open_device_kek(
        configuration.signing.ca_dir, configuration.signing.passphrase_file
    )

    async with open_sqlite_store(configuration.store.database) as store:
        for device in await store.list_devices():
            if device.account_jid == account and device.state is EnrollmentState.ENROLLED:
                raise EnrollmentError(
                    f"{account} already has an enrolled device (kid {device.kid.hex()}); "
                    f"revoke it first with 'impp-gateway devices revoke {device.kid.hex()}'"
                )
        if request.register:
            await register_account(upstream, jid, request.password)
        login = await check_login(upstream, jid, request.password)

        now = time.time()
        scalar = ec.generate_private_key(ec.SECP256R1()).private_numbers().private_value
        private_bytes = scalar.to_bytes(32, "big")
        for _attempt in range(_MAX_KID_ATTEMPTS):
            kid = await _free_kid(store)
            if request.device_public_key is None:
                credential = Credential.new_ccs(
                    curve=Curve.P256, private_key=private_bytes, kid=kid, subject=account
                )
            else:
                credential = ccs_for_public_key(request.device_public_key, kid=kid, subject=account)
            provisioning = Provisioning(
                device_kid=kid,
                device_credential=credential.encoded,
                gateway_credential=gateway_credential.encoded,
                endpoints=endpoints,
                account=account,
                device_private_key=None if request.device_public_key else private_bytes,
            )
            output = request.output or (
                configuration.gateway.data_dir / PROVISIONING_DIRECTORY / f"{kid.hex()}.prov"
            )
            output.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            key_path, certificate_path = signing_paths(configuration, kid)
            key_path.parent.mkdir(mode=0o700, exist_ok=True)
            # Written under temporary names and renamed once the store has accepted the kid, so
            # an attempt that loses its kid to another enrollment never touches that one's files.
            finals = (output, key_path, certificate_path)
            staged = tuple(p.with_name(f".{p.name}.{secrets.token_hex(4)}.tmp") for p in finals)
            record = DeviceRecord(
                kid=kid, credential=credential.encoded, account_jid=account, created_at=now
            )
            try:
                signing = ca.enroll(ImppAddress(jid.local or "", jid.domain), now=now)
                write_credential(signing, staged[1], staged[2], kek=kek)
                write_provisioning_file(staged[0], provisioning)
                await store.put_credential(_upstream_credential(account, login, request, now))
                enrolled = await store.enroll_device(record)
            except BaseException:
                _discard(*staged)
                raise
            if not enrolled:
                _discard(*staged)
                continue
            try:
                for temporary, final in zip(staged, finals, strict=True):
                    os.replace(temporary, final)
            except OSError as exc:
                _discard(*staged)
                raise EnrollmentError(
                    f"device {kid.hex()} is enrolled but its files could not be put in place "
                    f"({exc}); revoke it with 'impp-gateway devices revoke {kid.hex()}' and "
                    "enroll again"
                ) from exc
            return EnrollmentOutcome(
                device=record,
                login=login,
                registered=request.register,
                key_generated=request.device_public_key is None,
                provisioning_file=output,
                provisioning=provisioning,
                signing_key_file=key_path,
                signing_certificate_file=certificate_path,
                stored_password=login.scram is None,
            )
    raise EnrollmentError("could not find a free kid: other enrollments took each one tried")


def _upstream_credential(
    account: str, login: LoginResult, request: EnrollmentRequest, now: float
) -> UpstreamCredential:
    if login.scram is None:
        return UpstreamCredential(
            account_jid=account,
            hash_name=PLAIN_HASH_NAME,
            salt=b"",
            iterations=1,
            salted_password=b"",
            password=request.password,
            updated_at=now,
        )
    return UpstreamCredential(
        account_jid=account,
        hash_name=login.scram.hash_name,
        salt=login.scram.salt,
        iterations=login.scram.iterations,
        salted_password=login.scram.salted_password,
        updated_at=now,
    )


def _discard(*paths: Path) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
