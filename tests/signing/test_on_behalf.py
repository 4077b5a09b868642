"""The signing-on-behalf facade: stanza children, sender checks, increasing timestamps."""

from __future__ import annotations

import datetime
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.impp.address import ImppAddress
from gateway.impp.cpim import CpimAddress, CpimMessage, parse_cpim_untrusted
from gateway.impp.pidf import Basic, PidfDocument, PidfTuple, parse_pidf_untrusted
from gateway.signature_status import SignatureStatus
from gateway.signing.ca import CertificateAuthority, DeviceCredential
from gateway.signing.cms import SignatureError
from gateway.signing.e2e import E2E_TAG, E2eVerifier
from gateway.signing.on_behalf import BODY_TAG, OnBehalfSigner, verify_inbound
from gateway.signing.smime import parse_multipart_signed_untrusted

NOW = 1_700_000_000.0
JULIET = ImppAddress.parse("juliet@example.com")
ROMEO = ImppAddress.parse("romeo@example.net")


@pytest.fixture(scope="module")
def ca() -> CertificateAuthority:
    return CertificateAuthority.create(now=NOW - 86_400)


@pytest.fixture(scope="module")
def juliet(ca: CertificateAuthority) -> DeviceCredential:
    return ca.enroll(JULIET, now=NOW - 86_400)


def _message(
    at: datetime.datetime | None = None,
    *,
    sender: ImppAddress = JULIET,
    content_type: str = "text/plain; charset=utf-8",
    body: bytes = "O Romeo, Romeo! wherefore art thou Romeo? \N{ROSE}".encode(),
) -> CpimMessage:
    return CpimMessage.build(
        sender=CpimAddress.of(sender),
        recipients=[CpimAddress.of(ROMEO)],
        date_time=at,
        content_type=content_type,
        body=body,
    )


def _signed_object(e2e: ET.Element) -> CpimMessage:
    assert e2e.tag == E2E_TAG
    entity = parse_multipart_signed_untrusted((e2e.text or "").encode())
    return parse_cpim_untrusted(entity.content)


def test_text_message_gets_a_plain_body_and_an_e2e(juliet: DeviceCredential) -> None:
    body, e2e = OnBehalfSigner().sign_message(juliet, _message(), now=NOW)
    assert body.tag == BODY_TAG
    assert body.text == "O Romeo, Romeo! wherefore art thou Romeo? \N{ROSE}"
    signed = _signed_object(e2e)
    assert signed.body == _message().body
    assert signed.sender == CpimAddress.of(JULIET)


def test_non_text_message_gets_only_the_e2e(juliet: DeviceCredential) -> None:
    children = OnBehalfSigner().sign_message(
        juliet, _message(content_type="application/octet-stream", body=b"\x00\x01"), now=NOW
    )
    assert [child.tag for child in children] == [E2E_TAG]


def test_missing_datetime_is_stamped_with_now(juliet: DeviceCredential) -> None:
    (_, e2e) = OnBehalfSigner().sign_message(juliet, _message(), now=NOW)
    assert _signed_object(e2e).date_time == datetime.datetime.fromtimestamp(NOW, datetime.UTC)


def test_timestamps_signed_for_one_device_strictly_increase(juliet: DeviceCredential) -> None:
    signer = OnBehalfSigner()
    same = datetime.datetime.fromtimestamp(NOW, datetime.UTC)
    stamps = [
        _signed_object(signer.sign_message(juliet, _message(same), now=NOW)[1]).date_time
        for _ in range(3)
    ]
    step = datetime.timedelta(microseconds=1)
    assert stamps == [same, same + step, same + 2 * step]
    earlier = same - datetime.timedelta(seconds=5)
    later = _signed_object(signer.sign_message(juliet, _message(earlier), now=NOW)[1]).date_time
    assert later == same + 3 * step


def test_a_device_cannot_sign_for_another_address(juliet: DeviceCredential) -> None:
    with pytest.raises(SignatureError) as caught:
        OnBehalfSigner().sign_message(juliet, _message(sender=ROMEO), now=NOW)
    assert caught.value.remote is False
    document = PidfDocument("pres:romeo@example.net", (PidfTuple("t1", Basic.OPEN),))
    with pytest.raises(SignatureError):
        OnBehalfSigner().sign_presence(juliet, document, now=NOW)


def test_signed_message_round_trips_through_the_verifier(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    children = OnBehalfSigner().sign_message(juliet, _message(), now=NOW)
    stanza = ET.Element("{jabber:client}message", {"from": "juliet@example.com/phone"})
    stanza.extend(children)
    received = ET.fromstring(ET.tostring(stanza))
    result = verify_inbound(E2eVerifier(ca.trust_store()), received, now=NOW, recipient=ROMEO)
    assert result.status is SignatureStatus.VERIFIED
    assert result.signer == JULIET


def test_openssl_verifies_the_e2e_content_of_a_received_stanza(
    ca: CertificateAuthority, juliet: DeviceCredential, tmp_path: Path
) -> None:
    children = OnBehalfSigner().sign_message(juliet, _message(), now=NOW)
    stanza = ET.Element("{jabber:client}message", {"from": "juliet@example.com/phone"})
    stanza.extend(children)
    received = ET.fromstring(ET.tostring(stanza))
    text = received.findtext(E2E_TAG) or ""
    assert "\r" not in text  # XML end-of-line handling turned CRLF into LF
    (tmp_path / "signed.eml").write_bytes(text.encode())
    (tmp_path / "ca.pem").write_bytes(ca.certificate.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(
        [
            "openssl",
            "cms",
            "-verify",
            "-in",
            str(tmp_path / "signed.eml"),
            "-CAfile",
            str(tmp_path / "ca.pem"),
            "-attime",
            str(int(NOW)),
            "-out",
            str(tmp_path / "content"),
        ],
        capture_output=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _signed_document(e2e: ET.Element) -> PidfDocument:
    assert e2e.tag == E2E_TAG
    entity = parse_multipart_signed_untrusted((e2e.text or "").encode())
    return parse_pidf_untrusted(entity.body)


def test_presence_is_stamped_in_its_tuples_after_the_last_message(
    juliet: DeviceCredential,
) -> None:
    # RFC 3923 §6.9: the PIDF object carries the timestamp, and a device's timestamps increase
    # across messages and presence (one receiver orders them together).
    signer = OnBehalfSigner()
    at = NOW + 0.5
    signer.sign_message(juliet, _message(), now=at)
    old = datetime.datetime.fromtimestamp(NOW - 3600, datetime.UTC)
    document = PidfDocument(
        "pres:juliet@example.com",
        (PidfTuple("t1", Basic.OPEN), PidfTuple("t2", Basic.CLOSED, timestamp=old)),
    )
    signed = _signed_document(signer.sign_presence(juliet, document, now=at))
    step = datetime.timedelta(microseconds=1)
    stamped = datetime.datetime.fromtimestamp(at, datetime.UTC) + step
    assert [t.timestamp for t in signed.tuples] == [stamped, stamped]
    again = _signed_document(signer.sign_presence(juliet, document, now=at))
    assert again.tuples[0].timestamp == stamped + step


def test_presence_without_tuples_cannot_be_signed(juliet: DeviceCredential) -> None:
    with pytest.raises(SignatureError) as caught:
        OnBehalfSigner().sign_presence(juliet, PidfDocument("pres:juliet@example.com"), now=NOW)
    assert caught.value.remote is False


def test_message_then_presence_in_the_same_second_both_verify(
    ca: CertificateAuthority, juliet: DeviceCredential
) -> None:
    # The CMS signingTime has whole seconds only; a presence signed half a second after a
    # message must still look later to the receiver's decreasing-timestamp check.
    signer = OnBehalfSigner()
    verifier = E2eVerifier(ca.trust_store())
    at = NOW + 0.5

    def received(tag: str, children: tuple[ET.Element, ...]) -> ET.Element:
        stanza = ET.Element(tag, {"from": "juliet@example.com/phone", "to": "romeo@example.net"})
        stanza.extend(children)
        return ET.fromstring(ET.tostring(stanza))

    message = received("{jabber:client}message", signer.sign_message(juliet, _message(), now=at))
    document = PidfDocument("pres:juliet@example.com", (PidfTuple("t1", Basic.OPEN),))
    presence = received(
        "{jabber:client}presence", (signer.sign_presence(juliet, document, now=at),)
    )
    first = verify_inbound(verifier, message, now=at)
    second = verify_inbound(verifier, presence, now=at)
    assert (first.status, second.status) == (SignatureStatus.VERIFIED,) * 2
    assert second.timestamp is not None
    assert first.timestamp is not None
    assert second.timestamp > first.timestamp
