"""S/MIME signatures: CMS SignedData (detached, ECDSA with SHA-256) in multipart/signed.

Theory of operation. Signing (RFC 8551 §3.5, RFC 1847 §2.1): the MIME entity to protect (a
Message/CPIM or application/pidf+xml object, RFC 3923 §3-4) is put in canonical form (every line
break CRLF, RFC 8551 §3.1.1) and signed with a CMS SignedData (RFC 5652 §5) whose encapsulated
content is absent ("detached"): one SignerInfo, identified by issuer and serial number, with the
signed attributes contentType, signingTime and messageDigest (§11.1-11.3); the signature is ECDSA
over the DER of the signed attributes (§5.4) with SHA-256 (RFC 5753 §2.1.1, RFC 5754), in
:mod:`gateway.signing.cms`; the signer's certificate (and any chain given) travels with it. The
two are joined as ``multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256``
with the entity as the first part and the base64 ``application/pkcs7-signature`` as the second.

RFC 3923 §6.4 asks for binary transfer encoding: the first part travels as it is (UTF-8 text, no
7-bit re-encoding). The signature part is base64 because the whole object rides in XML character
data, which cannot carry arbitrary octets. XML parsers also turn CRLF into LF (XML 1.0 §2.11), so a
receiver puts the object back into canonical form before verifying; the signer signed canonical
form, so nothing is lost.

Verification splits the two parts (total: malformed input raises only :class:`SignatureError`)
and hands them to :func:`gateway.signing.cms.verify_detached_untrusted`.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.signing.cms import (
    SignatureError,
    SignerTrustStore,
    VerificationFailure,
    VerifiedSignature,
    sign_detached,
    verify_detached_untrusted,
)

__all__ = [
    "DEFAULT_MAX_SIGNED_ENTITY_SIZE",
    "MULTIPART_SIGNED_PROTOCOL",
    "SignedEntity",
    "VerifiedEntity",
    "canonicalize_line_endings",
    "mime_entity",
    "parse_multipart_signed_untrusted",
    "sign_multipart",
    "verify_multipart_signed_untrusted",
]

MULTIPART_SIGNED_PROTOCOL = "application/pkcs7-signature"  # RFC 8551 §3.5.3
_SIGNATURE_TYPES = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature"})

DEFAULT_MAX_SIGNED_ENTITY_SIZE = 256 * 1024  # the largest stanza the XMPP parser accepts
MAX_HEADER_FIELDS = 32  # MIME header fields per part we are willing to look at


def _fail(
    message: str, reason: VerificationFailure = VerificationFailure.MALFORMED
) -> SignatureError:
    return SignatureError(message, reason=reason)


@dataclass(frozen=True)
class SignedEntity:
    """The two parts of a multipart/signed entity, not yet verified."""

    content: bytes = field(repr=False)  # the signed MIME entity (headers and body), canonical
    content_type: str  # its media type, lower-cased
    body: bytes = field(repr=False)  # the entity's body, after its header block
    signature: bytes  # DER CMS ContentInfo
    micalg: str


@dataclass(frozen=True)
class VerifiedEntity:
    """A multipart/signed entity whose signature verified against the trust store."""

    content: bytes = field(repr=False)  # message text stays out of logs
    content_type: str
    body: bytes = field(repr=False)
    signer: VerifiedSignature


# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# Signing


def canonicalize_line_endings(data: bytes) -> bytes:
    """Every line break (CRLF, bare LF or bare CR) becomes CRLF (RFC 8551 §3.1.1)."""
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def mime_entity(
    content_type: str, body: bytes, *, headers: Sequence[tuple[str, str]] = ()
) -> bytes:
    """A MIME entity: ``Content-Type`` and other header fields, a blank line, the body (CRLF)."""
    fields = [("Content-Type", content_type), *headers]
    for name, value in fields:
        if any(c in name + value for c in "\r\n") or not name or ":" in name:
            raise SignatureError(f"invalid MIME header field {name!r}", remote=False)
    head = "".join(f"{name}: {value}\r\n" for name, value in fields).encode("utf-8")
    return head + b"\r\n" + canonicalize_line_endings(body)


def sign_multipart(
    entity: bytes,
    *,
    private_key: ec.EllipticCurvePrivateKey,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    now: float,
) -> bytes:
    """``multipart/signed`` (RFC 1847 §2.1, RFC 8551 §3.5.3) of a MIME ``entity``, CRLF form."""
    content = canonicalize_line_endings(entity)
    signature = sign_detached(
        content, private_key=private_key, certificate=certificate, chain=chain, now=now
    )
    boundary = f"=_{secrets.token_hex(12)}"
    while f"--{boundary}".encode("ascii") in content:  # pragma: no cover - 96 random bits
        boundary = f"=_{secrets.token_hex(12)}"
    encoded = base64.encodebytes(signature).replace(b"\n", b"\r\n")
    delimiter = f"--{boundary}".encode("ascii")
    return b"".join(
        [
            b'Content-Type: multipart/signed; protocol="application/pkcs7-signature";\r\n',
            b' micalg=sha-256; boundary="' + boundary.encode("ascii") + b'"\r\n',
            b"\r\n",
            delimiter + b"\r\n",
            content + b"\r\n",
            delimiter + b"\r\n",
            b"Content-Type: application/pkcs7-signature; name=smime.p7s\r\n",
            b"Content-Transfer-Encoding: base64\r\n",
            b"Content-Disposition: attachment; handling=required; filename=smime.p7s\r\n",
            b"\r\n",
            encoded,
            b"\r\n" + delimiter + b"--\r\n",
        ]
    )


# ---------------------------------------------------------------------------------------------
# multipart/signed (RFC 1847 §2.1) parsing

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # noqa: S105 - RFC 2045 token syntax
_PARAMETER = re.compile(rf'\s*;\s*({_TOKEN})\s*=\s*({_TOKEN}|"(?:[^"\\\r\n]|\\.)*")')
_MEDIA_TYPE = re.compile(rf"\s*({_TOKEN})/({_TOKEN})")


def _split_entity(entity: bytes, what: str) -> tuple[dict[str, str], bytes]:
    """(header fields by lower-cased name, body) of a canonical MIME entity."""
    if entity.startswith(b"\r\n"):  # RFC 2045 §5.2: no header fields at all is allowed
        return {}, entity[2:]
    head, separator, body = entity.partition(b"\r\n\r\n")
    if not separator:
        raise _fail(f"{what}: no blank line after the header fields")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _fail(f"{what}: header fields are not UTF-8") from exc
    fields: dict[str, str] = {}
    lines: list[str] = []
    for line in text.split("\r\n"):
        if line[:1] in (" ", "\t") and lines:
            lines[-1] += line  # RFC 5322 §2.2.3 unfolding
        else:
            lines.append(line)
    if len(lines) > MAX_HEADER_FIELDS:
        raise _fail(f"{what}: too many header fields")
    for line in lines:
        name, colon, value = line.partition(":")
        if not colon or not re.fullmatch(_TOKEN, name):
            raise _fail(f"{what}: malformed header field")
        key = name.lower()
        if key in fields:
            raise _fail(f"{what}: header field {name} appears twice")
        fields[key] = value.strip()
    return fields, body


def _parse_content_type(value: str, what: str) -> tuple[str, dict[str, str]]:
    match = _MEDIA_TYPE.match(value)
    if match is None:
        raise _fail(f"{what}: malformed Content-Type")
    media_type = f"{match.group(1)}/{match.group(2)}".lower()
    parameters: dict[str, str] = {}
    position = match.end()
    while position < len(value):
        parameter = _PARAMETER.match(value, position)
        if parameter is None:
            if value[position:].strip() in ("", ";"):
                break
            raise _fail(f"{what}: malformed Content-Type parameter")
        raw = parameter.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        parameters[parameter.group(1).lower()] = raw
        position = parameter.end()
    return media_type, parameters


def parse_multipart_signed_untrusted(
    data: bytes, *, max_size: int = DEFAULT_MAX_SIGNED_ENTITY_SIZE
) -> SignedEntity:
    """Split a ``multipart/signed`` entity into its signed part and its signature.

    Line breaks are first put into canonical CRLF form. Total: raises :class:`SignatureError`.
    """
    if not isinstance(data, bytes):
        raise _fail("a signed entity is bytes")
    if len(data) > max_size:
        raise _fail(
            f"the signed entity is larger than {max_size} bytes", VerificationFailure.TOO_LARGE
        )
    canonical = canonicalize_line_endings(data)
    fields, body = _split_entity(canonical, "multipart/signed")
    media_type, parameters = _parse_content_type(fields.get("content-type", ""), "multipart")
    if media_type != "multipart/signed":
        raise _fail(
            f"expected multipart/signed, found {media_type}", VerificationFailure.UNSUPPORTED
        )
    if parameters.get("protocol", "").lower() not in _SIGNATURE_TYPES:
        raise _fail("multipart/signed protocol is not S/MIME", VerificationFailure.UNSUPPORTED)
    boundary = parameters.get("boundary", "")
    if not 1 <= len(boundary) <= 70 or boundary.endswith(" "):
        raise _fail("multipart/signed boundary is missing or invalid (RFC 2046 §5.1.1)")
    delimiter = b"--" + boundary.encode("utf-8")
    # RFC 2046 §5.1.1: a delimiter is CRLF "--" boundary at the start of a line.
    if body.startswith(delimiter):
        first = 0
    else:
        found = body.find(b"\r\n" + delimiter)
        if found < 0:
            raise _fail("multipart/signed has no first boundary")
        first = found + 2
    parts: list[bytes] = []
    position = first + len(delimiter)
    while True:
        line_end = body.find(b"\r\n", position)
        tail = body[position : line_end if line_end >= 0 else len(body)]
        if tail.startswith(b"--"):
            if tail[2:].strip(b" \t"):
                raise _fail("malformed closing boundary")
            break
        if tail.strip(b" \t") or line_end < 0:
            raise _fail("malformed boundary line")
        start = line_end + 2
        following = body.find(b"\r\n" + delimiter, start)
        if following < 0:
            raise _fail("multipart/signed is not closed")
        parts.append(body[start:following])
        if len(parts) > 2:
            raise _fail("multipart/signed must have exactly two parts")
        position = following + 2 + len(delimiter)
    if len(parts) != 2:
        raise _fail("multipart/signed must have exactly two parts")
    content, signature_part = parts
    content_fields, content_body = _split_entity(content, "signed content")
    content_type, _ = _parse_content_type(
        content_fields.get("content-type", "text/plain"), "signed content"
    )
    signature_fields, signature_body = _split_entity(signature_part, "signature part")
    signature_type, _ = _parse_content_type(
        signature_fields.get("content-type", ""), "signature part"
    )
    if signature_type not in _SIGNATURE_TYPES:
        raise _fail("the second part is not application/pkcs7-signature")
    if signature_fields.get("content-transfer-encoding", "").lower() != "base64":
        raise _fail("the signature part must be base64", VerificationFailure.UNSUPPORTED)
    encoded = re.sub(rb"[ \t\r\n]", b"", signature_body)
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _fail("the signature part is not valid base64") from exc
    if base64.b64encode(signature) != encoded:  # unused bits set: one encoding per signature
        raise _fail("the signature part is not canonical base64")
    return SignedEntity(
        content, content_type, content_body, signature, parameters.get("micalg", "").lower()
    )


def verify_multipart_signed_untrusted(
    data: bytes,
    trust_store: SignerTrustStore,
    *,
    now: float,
    max_size: int = DEFAULT_MAX_SIGNED_ENTITY_SIZE,
) -> VerifiedEntity:
    """Parse and verify a ``multipart/signed`` S/MIME entity (RFC 8551 §3.5.3, RFC 1847 §2.1).

    Total: returns the verified content or raises :class:`SignatureError` with its reason.
    """
    entity = parse_multipart_signed_untrusted(data, max_size=max_size)
    signer = verify_detached_untrusted(entity.content, entity.signature, trust_store, now=now)
    return VerifiedEntity(entity.content, entity.content_type, entity.body, signer)
