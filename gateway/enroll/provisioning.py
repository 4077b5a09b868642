"""The provisioning file: exactly what an enrolled device needs to reach its gateway.

Theory of operation. ``impp-gateway enroll`` writes one file per device (mode 0600) holding a
single CBOR map (RFC 8949) with small unsigned integer keys in the core deterministic encoding of
§4.2.1 (shortest heads, definite lengths, keys in bytewise order), read and written with the
project's strict core, ``gateway/cbor.py``. docs/provisioning.md describes it byte by byte::

    provisioning = {
      1 => 1,                  ; format version
      2 => 3,                  ; EDHOC method (RFC 9528 §3.2): 3, static DH keys on both sides
      3 => 2,                  ; EDHOC cipher suite: 2, AES-CCM-16-64-128, SHA-256, P-256
      4 => bstr,               ; the device's kid (ID_CRED_I, RFC 9528 §3.5.3)
      5 => bstr,               ; the device's CCS credential (CRED_I, RFC 8392), as registered
      ? 6 => bstr .size 32,    ; the device's P-256 private key, only when the gateway made it
      7 => bstr,               ; the gateway's CCS credential (CRED_R), public
      8 => [+ endpoint],       ; where the gateway listens
      9 => tstr,               ; the device's account, user@domain
    }
    endpoint = [transport: 0 (UDP) / 1 (TCP), host: tstr, port: uint]

A device that made its own key pair (``enroll --device-key``) receives no key 6: its private
key never left it. This module imports neither the store nor trio, so the device emulator
(``device_sim``) reads provisioning files without the gateway service.
"""

from __future__ import annotations

import enum
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from gateway import edhoc
from gateway.cbor import CborDecoder, CborError, KeyTypes, encode
from gateway.edhoc import Credential, Curve
from gateway.signing.keyfiles import write_protected_file

__all__ = [
    "EDHOC_METHOD",
    "EDHOC_SUITE",
    "MAX_PROVISIONING_SIZE",
    "PROVISIONING_VERSION",
    "GatewayEndpoint",
    "Provisioning",
    "ProvisioningError",
    "Transport",
    "decode_provisioning_untrusted",
    "encode_provisioning",
    "read_provisioning_file",
    "write_provisioning_file",
]

PROVISIONING_VERSION: Final = 1
# What docs/protocol.md §3.3 says every device implements: method 3, suite 2 (P-256).
EDHOC_METHOD: Final = 3
EDHOC_SUITE: Final = 2
# Two CCS credentials (~100 B each), a key, a few endpoints and an address fit in a few hundred
# bytes; 4 KiB leaves room for long host names and many endpoints while bounding what we read.
MAX_PROVISIONING_SIZE: Final = 4096
MAX_ENDPOINTS: Final = 16  # listeners a gateway announces; each is one UDP or TCP address
_MAX_DEPTH: Final = 3  # map -> endpoints array -> endpoint array
_MAX_ITEMS: Final = 128

KEY_VERSION, KEY_METHOD, KEY_SUITE, KEY_KID, KEY_CREDENTIAL = 1, 2, 3, 4, 5
KEY_PRIVATE_KEY, KEY_GATEWAY_CREDENTIAL, KEY_ENDPOINTS, KEY_ACCOUNT = 6, 7, 8, 9
_REQUIRED: Final = frozenset(
    {KEY_VERSION, KEY_METHOD, KEY_SUITE, KEY_KID, KEY_CREDENTIAL}
    | {KEY_GATEWAY_CREDENTIAL, KEY_ENDPOINTS, KEY_ACCOUNT}
)
_KNOWN: Final = _REQUIRED | {KEY_PRIVATE_KEY}


class ProvisioningError(Exception):
    """A provisioning file is unreadable, malformed, or does not hold a usable device identity."""


class Transport(enum.IntEnum):
    """How the device reaches one gateway listener (docs/protocol.md §3.1, §3.2)."""

    UDP = 0
    TCP = 1


@dataclass(frozen=True)
class GatewayEndpoint:
    """One gateway listener: its transport, host (an address or a name) and port."""

    transport: Transport
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport.name.lower()}://{host}:{self.port}"


@dataclass(frozen=True)
class Provisioning:
    """What one device needs: its identity, the gateway's credential and where to find it."""

    device_kid: bytes
    device_credential: bytes
    gateway_credential: bytes
    endpoints: tuple[GatewayEndpoint, ...]
    account: str
    device_private_key: bytes | None = field(default=None, repr=False)
    method: int = EDHOC_METHOD
    suite: int = EDHOC_SUITE

    def device_edhoc_credential(self) -> Credential:
        """CRED_I, with its private key when the file holds it."""
        credential = Credential.from_ccs(self.device_credential)
        if self.device_private_key is not None:
            return credential.with_private_key(self.device_private_key)
        return credential

    def gateway_edhoc_credential(self) -> Credential:
        """CRED_R, the gateway's public credential the device trusts."""
        return Credential.from_ccs(self.gateway_credential)


def encode_provisioning(provisioning: Provisioning) -> bytes:
    """The file's bytes (deterministic CBOR); checks what the reader would refuse first."""
    document: dict[int, object] = {
        KEY_VERSION: PROVISIONING_VERSION,
        KEY_METHOD: provisioning.method,
        KEY_SUITE: provisioning.suite,
        KEY_KID: provisioning.device_kid,
        KEY_CREDENTIAL: provisioning.device_credential,
        KEY_GATEWAY_CREDENTIAL: provisioning.gateway_credential,
        KEY_ENDPOINTS: [
            [int(endpoint.transport), endpoint.host, endpoint.port]
            for endpoint in provisioning.endpoints
        ],
        KEY_ACCOUNT: provisioning.account,
    }
    if provisioning.device_private_key is not None:
        document[KEY_PRIVATE_KEY] = provisioning.device_private_key
    encoded = encode(document)
    decode_provisioning_untrusted(encoded)  # one definition of "valid", shared with the reader
    return encoded


def decode_provisioning_untrusted(data: bytes) -> Provisioning:
    """Read a provisioning file's bytes; total: returns a value or raises ProvisioningError."""
    if len(data) > MAX_PROVISIONING_SIZE:
        raise ProvisioningError(
            f"{len(data)} bytes is more than a provisioning file holds ({MAX_PROVISIONING_SIZE})"
        )
    try:
        document = CborDecoder(
            data,
            max_depth=_MAX_DEPTH,
            max_items=_MAX_ITEMS,
            key_types=KeyTypes.INTEGER,
            sorted_keys=True,
        ).read_single()
    except CborError as exc:
        raise ProvisioningError(f"not a provisioning file: {exc}") from exc
    if not isinstance(document, dict):
        raise ProvisioningError("not a provisioning file: the top level is not a CBOR map")
    keys = set(document)
    if unknown := keys - _KNOWN:
        raise ProvisioningError(f"unknown keys {sorted(map(str, unknown))} (a newer format?)")
    if missing := _REQUIRED - keys:
        raise ProvisioningError(f"required keys {sorted(map(str, missing))} are missing")
    if _uint(document[KEY_VERSION], "version") != PROVISIONING_VERSION:
        raise ProvisioningError(
            f"format version {document[KEY_VERSION]!r} is not {PROVISIONING_VERSION}"
        )
    method = _uint(document[KEY_METHOD], "EDHOC method")
    suite = _uint(document[KEY_SUITE], "cipher suite")
    if method != EDHOC_METHOD or suite != EDHOC_SUITE:
        raise ProvisioningError(
            f"EDHOC method {method} suite {suite}: this format carries method "
            f"{EDHOC_METHOD} with suite {EDHOC_SUITE} (P-256) only"
        )
    private_key = document.get(KEY_PRIVATE_KEY)
    if private_key is not None and (not isinstance(private_key, bytes) or len(private_key) != 32):
        raise ProvisioningError("the device private key must be a 32-byte string")
    account = document[KEY_ACCOUNT]
    if not isinstance(account, str) or account.count("@") != 1 or len(account) > 3071:
        raise ProvisioningError("the account must be text of the form user@domain")
    provisioning = Provisioning(
        device_kid=_bytes(document[KEY_KID], "device kid"),
        device_credential=_bytes(document[KEY_CREDENTIAL], "device credential"),
        gateway_credential=_bytes(document[KEY_GATEWAY_CREDENTIAL], "gateway credential"),
        endpoints=_endpoints(document[KEY_ENDPOINTS]),
        account=account,
        device_private_key=private_key,
        method=method,
        suite=suite,
    )
    _check_credentials(provisioning)
    return provisioning


def _check_credentials(provisioning: Provisioning) -> None:
    try:
        device = provisioning.device_edhoc_credential()
        gateway = provisioning.gateway_edhoc_credential()
    except edhoc.LocalEdhocError as exc:
        raise ProvisioningError(f"a credential is unusable: {exc}") from exc
    if device.curve is not Curve.P256 or gateway.curve is not Curve.P256:
        raise ProvisioningError("suite 2 needs P-256 credentials on both sides")
    if device.kid != provisioning.device_kid:
        raise ProvisioningError("the device kid differs from the kid in its credential")
    if gateway.kid is None:
        raise ProvisioningError("the gateway credential carries no kid")


def _uint(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProvisioningError(f"the {what} must be an unsigned integer")
    return value


def _bytes(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or not value:
        raise ProvisioningError(f"the {what} must be a non-empty byte string")
    return value


def _endpoints(value: object) -> tuple[GatewayEndpoint, ...]:
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ENDPOINTS:
        raise ProvisioningError(f"the endpoints must be an array of 1 to {MAX_ENDPOINTS}")
    endpoints = []
    for item in value:
        if not isinstance(item, list) or len(item) != 3:
            raise ProvisioningError("an endpoint must be [transport, host, port]")
        transport, host, port = item
        if isinstance(transport, bool) or transport not in (Transport.UDP, Transport.TCP):
            raise ProvisioningError("an endpoint's transport must be 0 (UDP) or 1 (TCP)")
        if not isinstance(host, str) or not 0 < len(host) <= 253:
            raise ProvisioningError("an endpoint's host must be text of 1 to 253 characters")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise ProvisioningError("an endpoint's port must be 1-65535")
        endpoints.append(GatewayEndpoint(Transport(transport), host, port))
    return tuple(endpoints)


def write_provisioning_file(path: str | os.PathLike[str], provisioning: Provisioning) -> None:
    """Write the file atomically with mode 0600 (it may hold the device's private key)."""
    write_protected_file(path, encode_provisioning(provisioning))


def read_provisioning_file(path: str | os.PathLike[str]) -> Provisioning:
    """Read and check a provisioning file; raises :class:`ProvisioningError` saying why not.

    A file holding the device's private key must be mode 0600 (as it was written), so a copy
    that others can read is noticed before the key is used.
    """
    target = Path(path)
    try:
        with target.open("rb") as handle:
            mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
            data = handle.read(MAX_PROVISIONING_SIZE + 1)
    except OSError as exc:
        raise ProvisioningError(f"cannot read {target}: {exc.strerror or exc}") from exc
    try:
        provisioning = decode_provisioning_untrusted(data)
    except ProvisioningError as exc:
        raise ProvisioningError(f"{target}: {exc}") from exc
    if provisioning.device_private_key is not None and mode & 0o077:
        raise ProvisioningError(
            f"{target} holds the device's private key and has mode {mode:o}; a secret must be "
            f"600 (owner only): chmod 600 {target}"
        )
    return provisioning
