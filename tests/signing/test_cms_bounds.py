"""Hostile sizes inside CMS SignedData: huge OID arcs, huge INTEGERs, huge element counts.

Each hostile value is built by hand from DER primitives. Python refuses to turn an ``int`` of more
than 4,300 decimal digits into text (``sys.get_int_max_str_digits``) with a plain ``ValueError``;
the verifier must bound what it converts and answer every such input with its own outcome
(:class:`SignatureError` / ``FAILED``), never a foreign exception (issue 10, point 7).
"""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.impp.address import ImppAddress
from gateway.signature_status import SignatureStatus
from gateway.signing import der
from gateway.signing.ca import CertificateAuthority, DeviceCredential
from gateway.signing.cms import (
    OID_DATA,
    OID_SIGNED_DATA,
    SignatureError,
    SignerTrustStore,
    VerificationFailure,
    sign_detached,
    verify_detached_untrusted,
)
from gateway.signing.e2e import E2E_TAG, E2eVerifier
from gateway.signing.smime import sign_multipart

NOW = 1_700_000_000.0
DAY = 86_400.0
JULIET = ImppAddress.parse("juliet@example.com")

# 2,100 continuation bytes make one arc of ~14,700 bits, ~4,400 decimal digits: past Python's limit.
HUGE_ARC_OID = der.encode(0x06, b"\x2a" + b"\x81" * 2100 + b"\x01")
# 2,000 bytes of INTEGER are ~4,800 decimal digits.
HUGE_INTEGER = der.encode(0x02, b"\x01" + b"\x00" * 1999)


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(now=NOW - DAY)


@pytest.fixture(scope="module")
def juliet(ca: CertificateAuthority) -> DeviceCredential:
    return ca.enroll(JULIET, now=NOW - DAY)


@pytest.fixture(scope="module")
def cms_signature(juliet: DeviceCredential) -> bytes:
    return sign_detached(
        b"content", private_key=juliet.private_key, certificate=juliet.certificate, now=NOW
    )


def _content_info(signed_data_fields: list[bytes]) -> bytes:
    signed_data = der.encode_sequence(*signed_data_fields)
    return der.encode_sequence(der.encode_oid(OID_SIGNED_DATA), der.encode(0xA0, signed_data))


def _hostile_blobs() -> dict[str, bytes]:
    empty_set = der.encode(0x31, b"")
    data_info = der.encode_sequence(der.encode_oid(OID_DATA))
    sha256 = der.encode_sequence(der.encode_oid("2.16.840.1.101.3.4.2.1"))
    return {
        "contentType arc": der.encode_sequence(HUGE_ARC_OID, der.encode(0xA0, b"")),
        "SignedData version": _content_info([HUGE_INTEGER, empty_set, data_info, empty_set]),
        "digestAlgorithm arc": _content_info(
            [
                der.encode_integer(1),
                der.encode(0x31, der.encode_sequence(HUGE_ARC_OID)),
                data_info,
                empty_set,
            ]
        ),
        "eContentType arc": _content_info(
            [
                der.encode_integer(1),
                der.encode(0x31, sha256),
                der.encode_sequence(HUGE_ARC_OID),
                empty_set,
            ]
        ),
        "SignerInfo version": _content_info(
            [
                der.encode_integer(1),
                der.encode(0x31, sha256),
                data_info,
                der.encode(
                    0x31,
                    der.encode_sequence(
                        HUGE_INTEGER, b"\x80\x00", sha256, sha256, der.encode(0x04, b"")
                    ),
                ),
            ]
        ),
        "10,000 digestAlgorithms": _content_info(
            [der.encode_integer(1), der.encode(0x31, sha256 * 1000), data_info, empty_set]
        ),
    }


HOSTILE = _hostile_blobs()


def _multipart_with(signature: bytes, juliet: DeviceCredential) -> bytes:
    """A real multipart/signed entity whose signature part is replaced by ``signature``."""
    genuine = sign_multipart(
        b"Content-Type: text/plain\r\n\r\nhello\r\n",
        private_key=juliet.private_key,
        certificate=juliet.certificate,
        now=NOW,
    )
    head, _, rest = genuine.partition(b"Content-Transfer-Encoding: base64\r\n")
    disposition, _, tail = rest.partition(b"\r\n\r\n")
    closing = tail[tail.rindex(b"\r\n--") :]
    encoded = base64.encodebytes(signature).replace(b"\n", b"\r\n")
    return (
        head
        + b"Content-Transfer-Encoding: base64\r\n"
        + disposition
        + b"\r\n\r\n"
        + encoded
        + closing
    )


def _e2e_stanza(entity: bytes) -> ET.Element:
    stanza = ET.Element("{jabber:client}message", {"from": "juliet@example.com/balcony"})
    e2e = ET.SubElement(stanza, E2E_TAG)
    e2e.text = entity.decode("ascii")
    return stanza


@pytest.mark.parametrize("where", sorted(HOSTILE))
def test_hostile_sizes_are_malformed_signatures(where: str, ca: CertificateAuthority) -> None:
    blob = HOSTILE[where]
    assert len(blob) < 32 * 1024  # under the size limit: only the inner bounds can refuse it
    with pytest.raises(SignatureError) as raised:
        verify_detached_untrusted(b"content", blob, ca.trust_store(), now=NOW)
    assert raised.value.reason is VerificationFailure.MALFORMED


@pytest.mark.parametrize("where", sorted(HOSTILE))
def test_hostile_sizes_in_e2e_fail_without_raising(
    where: str, ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    verifier = E2eVerifier(ca.trust_store())
    result = verifier.verify_stanza(_e2e_stanza(_multipart_with(HOSTILE[where], juliet)), now=NOW)
    assert result.status is SignatureStatus.FAILED
    assert result.reason is VerificationFailure.MALFORMED


def test_the_reader_bounds_oid_arcs_integers_and_element_counts() -> None:
    long_arc = b"\x2a" + b"\x81" * der.MAX_OID_ARC_LENGTH + b"\x01"
    with pytest.raises(der.DerError, match="arc longer"):
        der.read_oid(der.parse(der.encode(0x06, long_arc)), "oid")
    with pytest.raises(der.DerError, match="longer than"):
        der.read_oid(der.parse(HUGE_ARC_OID), "oid")
    with pytest.raises(der.DerError, match="object identifier"):
        der.read_oid(der.parse(der.encode(0x06, b"\x2a" * (der.MAX_OID_LENGTH + 1))), "oid")
    with pytest.raises(der.DerError, match="INTEGER"):
        der.read_integer(der.parse(HUGE_INTEGER), "n")
    too_many = der.encode_sequence(*[b"\x05\x00"] * (der.MAX_ITEMS + 1))
    with pytest.raises(der.DerError, match="values"):
        der.children(der.parse(too_many), 0)
    # The largest values the bounds allow still read: a UUID arc (2.25.<128 bits>, X.667) and a
    # 20-octet serial number with its sign byte (RFC 5280 §4.1.2.2).
    uuid_oid = "2.25." + str(2**128 - 1)
    assert der.read_oid(der.parse(der.encode_oid(uuid_oid)), "oid") == uuid_oid
    serial = 2**160 - 1
    assert der.read_integer(der.parse(der.encode_integer(serial)), "n") == serial
    many = der.encode_sequence(*[b"\x05\x00"] * der.MAX_ITEMS)
    assert len(der.children(der.parse(many), 0)) == der.MAX_ITEMS


# -- structure-aware mutation: real SignedData with one value swapped for a hostile one ----------


def _nodes(node: der.Node, depth: int, found: list[tuple[der.Node, int]]) -> None:
    found.append((node, depth))
    if node.constructed and depth < 12:
        try:
            for child in der.children(node, depth):
                _nodes(child, depth + 1, found)
        except der.DerError:
            return


def _replace(data: bytes, node: der.Node, replacement: bytes) -> bytes:
    """``data`` with ``node`` replaced and every enclosing definite length re-encoded."""
    root = der.parse(data)

    def rebuild(current: der.Node, depth: int) -> bytes:
        if current.start == node.start and current.end == node.end and current.tag == node.tag:
            return replacement
        if not current.constructed or not (current.start <= node.start < current.end):
            return current.encoded
        parts = [rebuild(child, depth + 1) for child in der.children(current, depth)]
        return der.encode(current.tag, b"".join(parts))

    return rebuild(root, 0)


_HOSTILE_VALUES = st.one_of(
    st.sampled_from([HUGE_ARC_OID, HUGE_INTEGER]),
    st.integers(1, 3000).map(lambda n: der.encode(0x06, b"\x2a" + b"\xff" * n + b"\x01")),
    st.integers(1, 3000).map(lambda n: der.encode(0x02, b"\x7f" * n)),
    st.integers(0, 2000).map(lambda n: der.encode(0x31, b"\x05\x00" * n)),
    st.integers(0, 2000).map(lambda n: der.encode(0x30, b"\x06\x01\x2a" * n)),
    st.binary(max_size=64),
)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_real_cms_with_a_hostile_value_spliced_in_only_fails(
    ca: CertificateAuthority, cms_signature: bytes, data: st.DataObject
) -> None:
    found: list[tuple[der.Node, int]] = []
    _nodes(der.parse(cms_signature), 0, found)
    target, _ = data.draw(st.sampled_from(found))
    candidate = _replace(cms_signature, target, data.draw(_HOSTILE_VALUES))
    try:
        verify_detached_untrusted(b"content", candidate, ca.trust_store(), now=NOW)
    except SignatureError:
        return
    assert candidate == cms_signature  # only the unchanged signature may verify


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_e2e_with_garbage_or_spliced_cms_only_yields_failed(
    ca: CertificateAuthority,
    juliet: DeviceCredential,
    cms_signature: bytes,
    data: st.DataObject,
) -> None:
    found: list[tuple[der.Node, int]] = []
    _nodes(der.parse(cms_signature), 0, found)
    target, _ = data.draw(st.sampled_from(found))
    blob = data.draw(
        st.one_of(
            st.binary(max_size=400),
            _HOSTILE_VALUES.map(lambda value: _replace(cms_signature, target, value)),
        )
    )
    verifier = E2eVerifier(SignerTrustStore(ca.trust_bundle()))
    result = verifier.verify_stanza(_e2e_stanza(_multipart_with(blob, juliet)), now=NOW)
    assert result.status is SignatureStatus.FAILED
    assert result.reason is not None
