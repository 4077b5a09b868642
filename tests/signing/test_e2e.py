"""Inbound RFC 3923 checks: trust, names, the timestamp window, replay, rotation, fuzz."""

from __future__ import annotations

import base64
import datetime
import xml.etree.ElementTree as ET

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs7
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.impp.address import ImppAddress
from gateway.impp.cpim import CpimAddress, CpimMessage, Subject
from gateway.impp.pidf import Basic, PidfDocument, PidfTuple
from gateway.signature_status import SignatureStatus
from gateway.signing.ca import CertificateAuthority, DeviceCredential
from gateway.signing.cms import SignatureError, VerificationFailure
from gateway.signing.e2e import (
    E2E_TAG,
    E2eVerifier,
    VerificationResult,
    build_e2e_element,
    find_e2e_untrusted,
)
from gateway.signing.on_behalf import OnBehalfSigner
from gateway.signing.smime import mime_entity, sign_multipart

NOW = 1_700_000_000.0
DAY = 86_400.0
JULIET = ImppAddress.parse("juliet@example.com")
ROMEO = ImppAddress.parse("romeo@example.net")


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(now=NOW - 10 * DAY)


@pytest.fixture(scope="module")
def juliet(ca: CertificateAuthority) -> DeviceCredential:
    return ca.enroll(JULIET, now=NOW - 10 * DAY)


@pytest.fixture(scope="module")
def romeo(ca: CertificateAuthority) -> DeviceCredential:
    return ca.enroll(ROMEO, now=NOW - 10 * DAY)


def _message(
    sender: ImppAddress = JULIET,
    recipient: ImppAddress = ROMEO,
    at: float = NOW,
    text: str = "Wherefore art thou, Romeo?",
) -> CpimMessage:
    return CpimMessage.build(
        sender=CpimAddress.of(sender, "Juliet Capulet"),
        recipients=[CpimAddress.of(recipient, "Romeo Montague")],
        date_time=datetime.datetime.fromtimestamp(at, datetime.UTC),
        subjects=[Subject("Imploring")],
        body=text.encode(),
    )


def _stanza(
    children: tuple[ET.Element, ...],
    sender: str = "juliet@example.com/balcony",
    kind: str = "message",
) -> bytes:
    stanza = ET.Element(f"{{jabber:client}}{kind}", {"from": sender, "to": "romeo@example.net"})
    stanza.extend(children)
    return ET.tostring(stanza)


def _received(wire: bytes) -> ET.Element:
    return ET.fromstring(wire)  # XML transport: CRLF arrives as LF


def _signed_stanza(
    credential: DeviceCredential,
    message: CpimMessage | None = None,
    *,
    now: float = NOW,
    sender: str = "juliet@example.com/balcony",
) -> bytes:
    children = OnBehalfSigner().sign_message(credential, message or _message(), now=now)
    return _stanza(children, sender)


def _raw_signed_stanza(
    credential: DeviceCredential,
    entity: bytes,
    sender: str = "juliet@example.com/balcony",
    kind: str = "message",
) -> bytes:
    signed = sign_multipart(
        entity,
        private_key=credential.private_key,
        certificate=credential.certificate,
        now=NOW,
    )
    return _stanza((build_e2e_element(signed),), sender, kind)


def _verify(
    verifier: E2eVerifier, wire: bytes, now: float = NOW, recipient: ImppAddress | None = ROMEO
) -> VerificationResult:
    return verifier.verify_stanza(_received(wire), now=now, recipient=recipient)


def test_signed_message_verifies_after_xml_transport(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    wire = _signed_stanza(juliet)
    result = _verify(E2eVerifier(ca.trust_store()), wire)
    assert result.status is SignatureStatus.VERIFIED
    assert result.reason is None
    assert result.signer == JULIET
    assert result.timestamp == NOW
    assert result.error_condition is None
    assert result.entity is not None
    assert result.entity.content_type == "message/cpim"


def test_plain_body_stays_readable_beside_the_signature(juliet: DeviceCredential) -> None:
    stanza = _received(_signed_stanza(juliet))
    assert stanza.findtext("{jabber:client}body") == "Wherefore art thou, Romeo?"
    assert stanza.find(E2E_TAG) is not None


def test_unsigned_stanza_is_none(ca: CertificateAuthority) -> None:
    body = ET.Element("{jabber:client}body")
    body.text = "hi"
    verifier = E2eVerifier(ca.trust_store())
    result = _verify(verifier, _stanza((body,)))
    assert result == VerificationResult(SignatureStatus.NONE)
    assert result.error_condition is None
    assert verifier.statistics().unsigned == 1


def test_certificate_for_another_address_fails_the_name_check(
    ca: CertificateAuthority, romeo: DeviceCredential
) -> None:
    # Romeo's valid certificate signs an object claiming to be from Juliet.
    wire = _raw_signed_stanza(romeo, _message().to_bytes())
    result = _verify(E2eVerifier(ca.trust_store()), wire)
    assert result.status is SignatureStatus.FAILED
    assert result.reason is VerificationFailure.NAME_MISMATCH
    assert result.error_condition == ("not-acceptable", "unverified-signature")


def test_cpim_from_must_match_the_certificate(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    forged = _message(sender=ROMEO, recipient=JULIET)
    wire = _raw_signed_stanza(juliet, forged.to_bytes())
    result = _verify(E2eVerifier(ca.trust_store()), wire, recipient=None)
    assert result.reason is VerificationFailure.NAME_MISMATCH


def test_message_for_someone_else_fails_when_a_recipient_is_given(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    wire = _signed_stanza(juliet)
    verifier = E2eVerifier(ca.trust_store())
    nurse = ImppAddress.parse("nurse@example.com")
    assert _verify(verifier, wire, recipient=nurse).reason is VerificationFailure.NAME_MISMATCH
    assert _verify(verifier, wire, recipient=ROMEO).status is SignatureStatus.VERIFIED


def test_resource_of_the_sender_is_ignored(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    wire = _signed_stanza(juliet, sender="Juliet@Example.com/another-device")
    assert _verify(E2eVerifier(ca.trust_store()), wire).status is SignatureStatus.VERIFIED


def test_untrusted_ca_fails(juliet: DeviceCredential) -> None:
    stranger = CertificateAuthority.create(now=NOW - DAY)
    result = _verify(E2eVerifier(stranger.trust_store()), _signed_stanza(juliet))
    assert result.reason is VerificationFailure.UNTRUSTED_CERTIFICATE


@pytest.mark.parametrize(
    ("offset", "status", "reason"),
    [
        (0.0, SignatureStatus.VERIFIED, None),
        (300.0, SignatureStatus.VERIFIED, None),
        (-300.0, SignatureStatus.VERIFIED, None),
        (300.001, SignatureStatus.FAILED, VerificationFailure.OLD_TIMESTAMP),
        (-300.001, SignatureStatus.FAILED, VerificationFailure.FUTURE_TIMESTAMP),
        (DAY, SignatureStatus.FAILED, VerificationFailure.OLD_TIMESTAMP),
    ],
)
def test_timestamp_must_be_within_five_minutes(
    ca: CertificateAuthority,
    juliet: DeviceCredential,
    offset: float,
    status: SignatureStatus,
    reason: VerificationFailure | None,
) -> None:
    result = _verify(E2eVerifier(ca.trust_store()), _signed_stanza(juliet), now=NOW + offset)
    assert (result.status, result.reason) == (status, reason)
    if reason is not None:
        assert result.error_condition == ("not-acceptable", "bad-timestamp")


def test_replayed_signature_fails_and_stays_failed(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    wire = _signed_stanza(juliet)
    verifier = E2eVerifier(ca.trust_store())
    assert _verify(verifier, wire).status is SignatureStatus.VERIFIED
    assert _verify(verifier, wire, now=NOW + 1).reason is VerificationFailure.REPLAYED
    assert _verify(verifier, wire, now=NOW + 300).reason is VerificationFailure.REPLAYED
    assert _verify(verifier, wire, now=NOW + 301).reason is VerificationFailure.OLD_TIMESTAMP
    assert verifier.statistics().failed == {"replayed": 2, "old-timestamp": 1}
    assert verifier.statistics().remembered_signatures == 0  # forgotten once it is too old


def test_decreasing_timestamp_from_the_same_sender_fails(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    later = _signed_stanza(juliet, _message(at=NOW + 10))
    earlier = _signed_stanza(juliet, _message(at=NOW + 5))
    verifier = E2eVerifier(ca.trust_store())
    assert _verify(verifier, later, now=NOW + 10).status is SignatureStatus.VERIFIED
    assert (
        _verify(verifier, earlier, now=NOW + 11).reason is VerificationFailure.DECREASING_TIMESTAMP
    )
    lenient = E2eVerifier(ca.trust_store(), require_increasing=False)
    assert _verify(lenient, later, now=NOW + 10).status is SignatureStatus.VERIFIED
    assert _verify(lenient, earlier, now=NOW + 11).status is SignatureStatus.VERIFIED


def test_order_is_forgotten_after_ten_minutes(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    verifier = E2eVerifier(ca.trust_store(), timestamp_window=3600.0)
    first = _signed_stanza(juliet, _message(at=NOW))
    older = _signed_stanza(juliet, _message(at=NOW - 60))
    assert _verify(verifier, first, now=NOW).status is SignatureStatus.VERIFIED
    assert (
        _verify(verifier, older, now=NOW + 600).reason is VerificationFailure.DECREASING_TIMESTAMP
    )
    assert _verify(verifier, older, now=NOW + 601).status is SignatureStatus.VERIFIED


def test_full_replay_memory_fails_closed_until_entries_expire(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    verifier = E2eVerifier(ca.trust_store(), max_remembered_signatures=2)
    stanzas = [_signed_stanza(juliet, _message(at=NOW + i)) for i in range(4)]
    assert _verify(verifier, stanzas[0], now=NOW).status is SignatureStatus.VERIFIED
    assert _verify(verifier, stanzas[1], now=NOW + 1).status is SignatureStatus.VERIFIED
    assert (
        _verify(verifier, stanzas[2], now=NOW + 2).reason is VerificationFailure.REPLAY_MEMORY_FULL
    )
    # The first entry is forgotten when its timestamp leaves the window (NOW + 300).
    assert _verify(verifier, stanzas[3], now=NOW + 300.5).status is SignatureStatus.VERIFIED


def test_messages_signed_under_the_old_ca_verify_after_rotation(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    before = _signed_stanza(juliet)
    rotated = ca.rotate(now=NOW - DAY)
    verifier = E2eVerifier(ca.trust_store())
    verifier.replace_trust_store(rotated.trust_store())
    assert _verify(verifier, before).status is SignatureStatus.VERIFIED
    renewed = rotated.renew(juliet, now=NOW - DAY)
    after = _signed_stanza(renewed, _message(at=NOW + 1))
    assert _verify(verifier, after, now=NOW + 1).status is SignatureStatus.VERIFIED
    only_new = E2eVerifier(rotated.prune(now=NOW + 4000 * DAY).trust_store())
    assert _verify(only_new, before).reason is VerificationFailure.UNTRUSTED_CERTIFICATE


def test_tampered_e2e_text_fails(ca: CertificateAuthority, juliet: DeviceCredential) -> None:
    wire = _signed_stanza(juliet)
    tampered = wire.replace(
        b"Wherefore art thou, Romeo?\r\n--", b"Wherefore art thou, Paris?\r\n--"
    )
    assert tampered != wire
    result = _verify(E2eVerifier(ca.trust_store()), tampered)
    assert result.reason is VerificationFailure.BAD_SIGNATURE


def test_signed_presence_verifies_and_its_entity_is_checked(
    ca: CertificateAuthority, juliet: DeviceCredential, romeo: DeviceCredential
) -> None:
    document = PidfDocument(
        "pres:juliet@example.com", (PidfTuple("hr0zny", Basic.OPEN, im_status="away"),)
    )
    e2e = OnBehalfSigner().sign_presence(juliet, document, now=NOW)
    stanza = ET.Element("{jabber:client}presence", {"from": "juliet@example.com/b", "to": "r@x"})
    stanza.append(e2e)
    verifier = E2eVerifier(ca.trust_store())
    result = verifier.verify_stanza(_received(ET.tostring(stanza)), now=NOW + 1)
    assert result.status is SignatureStatus.VERIFIED
    assert result.timestamp == NOW  # the tuple <timestamp> the signer added
    forged = _raw_signed_stanza(
        romeo, mime_entity("application/pidf+xml", document.to_bytes()), kind="presence"
    )
    result = verifier.verify_stanza(
        _received(forged.replace(b"juliet@example.com/balcony", b"romeo@example.net/b")), now=NOW
    )
    assert result.reason is VerificationFailure.NAME_MISMATCH


def test_signature_without_any_timestamp_fails(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    # No DateTime in the CPIM object and no signed attributes (so no signingTime) in the CMS.
    undated = CpimMessage.build(
        sender=CpimAddress.of(JULIET), recipients=[CpimAddress.of(ROMEO)], body=b"hi"
    ).to_bytes()
    signature = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(undated)
        .add_signer(juliet.certificate, juliet.private_key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [
                pkcs7.PKCS7Options.DetachedSignature,
                pkcs7.PKCS7Options.NoAttributes,
                pkcs7.PKCS7Options.Binary,
            ],
        )
    )
    entity = (
        b'Content-Type: multipart/signed; protocol="application/pkcs7-signature";'
        b" micalg=sha-256; boundary=b\r\n\r\n--b\r\n" + undated + b"\r\n--b\r\n"
        b"Content-Type: application/pkcs7-signature\r\nContent-Transfer-Encoding: base64\r\n"
        b"\r\n" + base64.encodebytes(signature) + b"\r\n--b--\r\n"
    )
    verifier = E2eVerifier(ca.trust_store())
    result = verifier.verify_entity(entity, sender=JULIET, now=NOW)
    assert result.reason is VerificationFailure.MISSING_TIMESTAMP


def test_stanza_without_from_or_with_two_e2e_elements_fails(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    verifier = E2eVerifier(ca.trust_store())
    stanza = _received(_signed_stanza(juliet))
    del stanza.attrib["from"]
    assert verifier.verify_stanza(stanza, now=NOW).reason is VerificationFailure.MALFORMED
    doubled = _received(_signed_stanza(juliet))
    doubled.append(ET.Element(E2E_TAG))
    assert verifier.verify_stanza(doubled, now=NOW).reason is VerificationFailure.MALFORMED
    nested = ET.Element("{jabber:client}message", {"from": "juliet@example.com"})
    ET.SubElement(ET.SubElement(nested, E2E_TAG), "child")
    with pytest.raises(SignatureError):
        find_e2e_untrusted(nested)


def test_oversized_e2e_is_refused(ca: CertificateAuthority) -> None:
    stanza = ET.Element("{jabber:client}message", {"from": "juliet@example.com"})
    ET.SubElement(stanza, E2E_TAG).text = "x" * 2000
    verifier = E2eVerifier(ca.trust_store(), max_entity_size=1000)
    assert verifier.verify_stanza(stanza, now=NOW).reason is VerificationFailure.TOO_LARGE


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=400), sender=st.text(max_size=40))
def test_garbage_e2e_never_raises(ca: CertificateAuthority, text: str, sender: str) -> None:
    stanza = ET.Element("{jabber:client}message", {"from": sender})
    ET.SubElement(stanza, E2E_TAG).text = text
    result = E2eVerifier(ca.trust_store()).verify_stanza(stanza, now=NOW)
    assert result.status is SignatureStatus.FAILED
    assert isinstance(result.reason, VerificationFailure)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_signed_entities_never_raise(
    ca: CertificateAuthority, signed_entity: bytes, data: st.DataObject
) -> None:
    mutated = bytearray(signed_entity)
    for _ in range(data.draw(st.integers(1, 3))):
        mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    result = E2eVerifier(ca.trust_store()).verify_entity(bytes(mutated), sender=JULIET, now=NOW)
    # The outer multipart header and the whitespace between base64 lines are not signed; the
    # signed part is (tests/impp/test_smime.py also sweeps every base64 character).
    start = signed_entity.index(b"Content-type: Message/CPIM")
    end = signed_entity.index(b"\r\n--=_", start)
    if bytes(mutated[start:end]) != signed_entity[start:end]:
        assert result.status is SignatureStatus.FAILED
        assert isinstance(result.reason, VerificationFailure)


@pytest.fixture(scope="module")
def signed_entity(juliet: DeviceCredential) -> bytes:
    return sign_multipart(
        _message().to_bytes(),
        private_key=juliet.private_key,
        certificate=juliet.certificate,
        now=NOW,
    )


def test_pidf_tuple_timestamp_refines_the_signing_time(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    # RFC 3923 §6.9 puts the presence timestamp in the PIDF object. A tuple <timestamp> later
    # than the whole-second CMS signingTime (NOW) is the one checked and ordered; an old one
    # (a status that changed long ago) does not make the object old.
    verifier = E2eVerifier(ca.trust_store())
    cases = (
        (NOW + 0.5, None, NOW + 0.5),
        (NOW + 0.25, VerificationFailure.DECREASING_TIMESTAMP, None),  # earlier than the one before
        (NOW + 600, VerificationFailure.FUTURE_TIMESTAMP, None),
    )
    stale = datetime.datetime.fromtimestamp(NOW - 3600, datetime.UTC)
    for index, (at, expected, timestamp) in enumerate(cases):
        moment = datetime.datetime.fromtimestamp(at, datetime.UTC)
        document = PidfDocument(
            "pres:juliet@example.com",
            (
                PidfTuple("t1", Basic.OPEN, timestamp=stale),
                PidfTuple("t2", Basic.OPEN, timestamp=moment),
            ),
        )
        pidf = mime_entity("application/pidf+xml", document.to_bytes())
        wire = _raw_signed_stanza(juliet, pidf, kind="presence")
        result = _verify(verifier, wire, recipient=None)
        assert (index, result.reason, result.timestamp) == (index, expected, timestamp)
    only_stale = PidfDocument(
        "pres:juliet@example.com", (PidfTuple("t1", Basic.OPEN, timestamp=stale),)
    )
    pidf = mime_entity("application/pidf+xml", only_stale.to_bytes())
    wire = _raw_signed_stanza(juliet, pidf, kind="presence")
    result = _verify(E2eVerifier(ca.trust_store()), wire, recipient=None)
    assert (result.status, result.timestamp) == (SignatureStatus.VERIFIED, NOW)


def test_stanza_kind_and_plain_body_must_match_the_signed_object(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    # The plain <body/> is not signed: VERIFIED must not vouch for one swapped in beside a
    # genuine <e2e/>, nor for a signed presence document carried in a <message/>.
    body, e2e = OnBehalfSigner().sign_message(
        juliet, _message(text="line one\r\nline two"), now=NOW
    )
    assert body.text == "line one\r\nline two"
    genuine = _stanza((body, e2e))
    assert _verify(E2eVerifier(ca.trust_store()), genuine).status is SignatureStatus.VERIFIED
    swapped = genuine.replace(b"line one", b"Meet me at midnight", 1)
    assert swapped.count(b"line one") == 1  # only the plain body changed
    result = _verify(E2eVerifier(ca.trust_store()), swapped)
    assert result.reason is VerificationFailure.CONTENT_MISMATCH
    assert result.error_condition == ("not-acceptable", "unverified-signature")
    without_body = _stanza((e2e,))
    assert _verify(E2eVerifier(ca.trust_store()), without_body).status is SignatureStatus.VERIFIED
    document = PidfDocument("pres:juliet@example.com", (PidfTuple("t1", Basic.OPEN),))
    presence_e2e = OnBehalfSigner().sign_presence(juliet, document, now=NOW)
    for wire in (_stanza((presence_e2e,)), _stanza((e2e,), kind="presence")):
        result = _verify(E2eVerifier(ca.trust_store()), wire, recipient=None)
        assert result.reason is VerificationFailure.CONTENT_MISMATCH
    assert (
        _verify(E2eVerifier(ca.trust_store()), _stanza((presence_e2e,), kind="presence")).status
        is SignatureStatus.VERIFIED
    )
