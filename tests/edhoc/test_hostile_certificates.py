"""x5chain certificates that cryptography refuses must end in the EDHOC package's own error.

Issue 10 point 1, in the sans-IO EDHOC parties: a Responder given such a message_3 and an
Initiator given such a message_2 raise :class:`RemoteEdhocError`, move to ERROR and have an
error message to send; nothing else escapes.
"""

from __future__ import annotations

import contextlib
import warnings

import pytest
from cryptography import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.edhoc import (
    CipherSuite,
    Curve,
    Initiator,
    MessageDecodeError,
    Method,
    RemoteEdhocError,
    Responder,
    State,
    cbor,
)
from gateway.edhoc.credentials import parse_id_cred_untrusted, parse_x509_untrusted
from tests.edhoc.helpers import credential, lookup_from
from tests.edhoc.hostile_certificates import (
    REFUSED_VERSIONS,
    hostile_initiator,
    hostile_responder,
    p256_certificate,
    with_version,
)
from tests.edhoc.vectors_rfc9529 import TRACE_1
from tests.session.helpers import DEVICE_KEY, GATEWAY_KEY

DEVICE_DER = p256_certificate(DEVICE_KEY, "device")
GATEWAY_DER = p256_certificate(GATEWAY_KEY, "gateway")
# A certificate whose subject CN is a BIT STRING: cryptography loads it, then raises TypeError
# when the name is read (found by mutating DEVICE_DER).
MISTYPED_SUBJECT = DEVICE_DER.replace(b"\x0c\x06device", b"\x03\x06device")


def test_the_crafted_certificates_are_what_the_issue_describes() -> None:
    assert parse_x509_untrusted(DEVICE_DER).public_key  # the unmodified one is usable
    for version in REFUSED_VERSIONS:
        with pytest.raises(x509.InvalidVersion):
            x509.load_der_x509_certificate(with_version(DEVICE_DER, version))


@pytest.mark.parametrize("version", REFUSED_VERSIONS)
def test_an_unloadable_version_is_a_decode_error(version: int) -> None:
    der = with_version(DEVICE_DER, version)
    with pytest.raises(MessageDecodeError) as caught:
        parse_x509_untrusted(der)
    assert isinstance(caught.value.__cause__, x509.InvalidVersion)
    with pytest.raises(MessageDecodeError):
        parse_id_cred_untrusted(cbor.Reader(cbor.encode({33: der})).read_item())


def test_an_unreadable_subject_is_no_label_rather_than_an_error() -> None:
    assert MISTYPED_SUBJECT != DEVICE_DER
    certificate = x509.load_der_x509_certificate(MISTYPED_SUBJECT)
    with pytest.raises(TypeError):
        certificate.subject.rfc4514_string()
    parsed = parse_x509_untrusted(MISTYPED_SUBJECT)
    assert parsed.subject is None
    assert parsed.public_key == parse_x509_untrusted(DEVICE_DER).public_key


@pytest.mark.parametrize("version", REFUSED_VERSIONS)
def test_responder_refuses_message_3_with_an_unloadable_certificate(version: int) -> None:
    gateway = credential("gateway", Curve.P256, b"\x0a")
    initiator = hostile_initiator(
        with_version(DEVICE_DER, version), DEVICE_KEY, lookup_from(gateway)
    )
    responder = Responder(
        suites=[CipherSuite.SUITE_2],
        c_r=b"\x27",
        credential=gateway,
        credential_lookup=lambda _id: None,
    )
    responder.receive_message_1(initiator.message_1())
    initiator.receive_message_2(responder.message_2())
    message_3 = initiator.message_3()
    with pytest.raises(RemoteEdhocError) as caught:
        responder.receive_message_3(message_3)
    assert isinstance(caught.value, MessageDecodeError)
    assert caught.value.error_message is not None  # an EDHOC error message to send back
    assert responder.state is State.ERROR


@pytest.mark.parametrize("version", REFUSED_VERSIONS)
def test_initiator_refuses_message_2_with_an_unloadable_certificate(version: int) -> None:
    device = credential("device", Curve.P256, b"\x2b")
    responder = hostile_responder(with_version(GATEWAY_DER, version), GATEWAY_KEY, b"\x27")
    initiator = Initiator(
        method=Method.STATIC_DH_STATIC_DH,
        suites=[CipherSuite.SUITE_2],
        c_i=b"\x37",
        credential=device,
        credential_lookup=lambda _id: None,
    )
    responder.receive_message_1(initiator.message_1())
    with pytest.raises(RemoteEdhocError) as caught:
        initiator.receive_message_2(responder.message_2())
    assert isinstance(caught.value, MessageDecodeError)
    assert initiator.state is State.ERROR


_BASES = [DEVICE_DER, TRACE_1["CRED_I (Raw Value)"], TRACE_1["CRED_R (Raw Value)"]]


@settings(max_examples=500)
@given(
    base=st.sampled_from(_BASES),
    edits=st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), min_size=1, max_size=3),
)
def test_any_mutated_certificate_parses_or_is_a_decode_error(
    base: bytes, edits: list[tuple[int, int]]
) -> None:
    mutated = bytearray(base)
    for index, value in edits:
        mutated[index % len(mutated)] = value
    with warnings.catch_warnings():
        # cryptography warns (e.g. of a non-positive serial) for some of what it still loads.
        warnings.simplefilter("ignore")
        with contextlib.suppress(MessageDecodeError):
            parse_x509_untrusted(bytes(mutated))
