"""Hostile input: invalid RFC 9529 §4 messages, truncation, bit flips, reordering, replay, garbage.

Everything must end in an :class:`EdhocError` (with an error message where RFC 9528 requires one),
never another exception; hypothesis drives every (state, received message) pair with random bytes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.edhoc import (
    CipherSuite,
    CipherSuiteMismatchError,
    EdhocError,
    Initiator,
    MessageDecodeError,
    Method,
    PeerReportedError,
    RemoteEdhocError,
    Responder,
    State,
    UnexpectedMessageError,
    cbor,
)
from gateway.edhoc.credentials import parse_id_cred_untrusted, parse_x509_untrusted
from gateway.edhoc.messages import (
    decode_error_untrusted,
    decode_message_1_untrusted,
    decode_plaintext_2_untrusted,
)
from tests.edhoc.helpers import Pair, make_pair
from tests.edhoc.vectors_rfc9529 import (
    INVALID_MESSAGE_1,
    INVALID_MESSAGE_2_TWO_ITEMS,
    INVALID_PLAINTEXT_2,
    TRACE_1,
    TRACE_2,
)


def _snapshots() -> dict[str, object]:
    """Parties frozen in every state, with the valid messages of one handshake."""
    pair = make_pair(Method.STATIC_DH_STATIC_DH, CipherSuite.SUITE_2)
    snaps: dict[str, object] = {"responder_start": copy.deepcopy(pair.responder)}
    snaps["initiator_start"] = copy.deepcopy(pair.initiator)
    m1 = pair.initiator.message_1()
    snaps["initiator_wait_2"] = copy.deepcopy(pair.initiator)
    pair.responder.receive_message_1(m1)
    snaps["responder_received_1"] = copy.deepcopy(pair.responder)
    m2 = pair.responder.message_2()
    snaps["responder_wait_3"] = copy.deepcopy(pair.responder)
    pair.initiator.receive_message_2(m2)
    snaps["initiator_verified_2"] = copy.deepcopy(pair.initiator)
    m3 = pair.initiator.message_3()
    snaps["initiator_completed"] = copy.deepcopy(pair.initiator)
    pair.responder.receive_message_3(m3)
    snaps["responder_completed"] = copy.deepcopy(pair.responder)
    m4 = pair.responder.message_4()
    pair.initiator.receive_message_4(m4)
    snaps["initiator_confirmed"] = pair.initiator
    snaps["responder_confirmed"] = pair.responder
    snaps["messages"] = (m1, m2, m3, m4)
    return snaps


SNAPSHOTS = _snapshots()
_MESSAGES = SNAPSHOTS["messages"]
assert isinstance(_MESSAGES, tuple)
M1: bytes = _MESSAGES[0]
M2: bytes = _MESSAGES[1]
M3: bytes = _MESSAGES[2]
M4: bytes = _MESSAGES[3]


def fresh(name: str) -> Initiator | Responder:
    party = copy.deepcopy(SNAPSHOTS[name])
    assert isinstance(party, Initiator | Responder)
    return party


RECEIVERS: dict[str, Callable[[Initiator | Responder, bytes], object]] = {
    "message_1": lambda p, d: p.receive_message_1(d),  # type: ignore[union-attr]
    "message_2": lambda p, d: p.receive_message_2(d),  # type: ignore[union-attr]
    "message_3": lambda p, d: p.receive_message_3(d),  # type: ignore[union-attr]
    "message_4": lambda p, d: p.receive_message_4(d),  # type: ignore[union-attr]
}
EXPECTING = {
    "message_1": "responder_start",
    "message_2": "initiator_wait_2",
    "message_3": "responder_wait_3",
    "message_4": "initiator_completed",
}
VALID = {"message_1": M1, "message_2": M2, "message_3": M3, "message_4": M4}


@pytest.mark.parametrize("name", sorted(INVALID_MESSAGE_1))
def test_rfc9529_invalid_message_1_is_answered_with_an_error(name: str) -> None:
    responder = Responder(
        suites=[CipherSuite.SUITE_2, CipherSuite.SUITE_0],
        c_r=b"\x27",
        credential=fresh("responder_start")._own_credentials,
        credential_lookup=lambda _id: None,
    )
    with pytest.raises(RemoteEdhocError) as caught:
        responder.receive_message_1(INVALID_MESSAGE_1[name])
    assert caught.value.error_message is not None
    decode_error_untrusted(caught.value.error_message)
    assert responder.state is State.ERROR


def test_rfc9529_invalid_plaintext_2() -> None:
    for name in ("4.1.6 surplus map of ID_CRED_R", "4.1.7 surplus bstr of ID_CRED_R"):
        with pytest.raises(MessageDecodeError):
            decode_plaintext_2_untrusted(INVALID_PLAINTEXT_2[name])
    short_mac = decode_plaintext_2_untrusted(INVALID_PLAINTEXT_2["4.2.5 MAC shorter than 8 bytes"])
    assert len(short_mac.signature_or_mac_2) < 8  # refused by the MAC check, below


def test_rfc9529_message_2_with_two_items() -> None:
    initiator = fresh("initiator_wait_2")
    with pytest.raises(MessageDecodeError) as caught:
        initiator.receive_message_2(INVALID_MESSAGE_2_TWO_ITEMS)  # type: ignore[union-attr]
    assert caught.value.error_message is not None


def test_message_1_whole_byte_by_byte_and_with_trailing_data() -> None:
    whole = TRACE_2["message_1 (CBOR Sequence) #2"]
    assert decode_message_1_untrusted(whole).suites_i == (6, 2)
    for cut in range(len(whole)):
        try:
            decode_message_1_untrusted(whole[:cut])
        except MessageDecodeError:
            continue
        pytest.fail(f"prefix of {cut} bytes accepted")
    with pytest.raises(MessageDecodeError):
        decode_message_1_untrusted(whole + b"\xff")
    with pytest.raises(MessageDecodeError):
        decode_message_1_untrusted(whole + b"\x40")  # a bstr where an ead_label belongs


@pytest.mark.parametrize("message", sorted(VALID))
def test_every_truncation_is_refused(message: str) -> None:
    data = VALID[message]
    for cut in range(len(data)):
        party = fresh(EXPECTING[message])
        with pytest.raises(EdhocError):
            RECEIVERS[message](party, data[:cut])
        assert party.state is State.ERROR


@pytest.mark.parametrize("message", sorted(VALID))
def test_trailing_data_is_refused(message: str) -> None:
    party = fresh(EXPECTING[message])
    with pytest.raises(EdhocError):
        RECEIVERS[message](party, VALID[message] + b"\x00\x41")
    assert party.state is State.ERROR


@pytest.mark.parametrize("message", ["message_2", "message_3", "message_4"])
def test_every_bit_flip_is_refused(message: str) -> None:
    data = VALID[message]
    for bit in range(len(data) * 8):
        flipped = bytearray(data)
        flipped[bit // 8] ^= 1 << (bit % 8)
        party = fresh(EXPECTING[message])
        with pytest.raises(EdhocError):
            RECEIVERS[message](party, bytes(flipped))


def test_bit_flips_in_message_1_change_the_transcript() -> None:
    """A flipped message_1 is refused, or accepted but then fails the MAC of message_2."""
    for bit in range(len(M1) * 8):
        flipped = bytearray(M1)
        flipped[bit // 8] ^= 1 << (bit % 8)
        responder = fresh("responder_start")
        initiator = fresh("initiator_wait_2")
        try:
            responder.receive_message_1(bytes(flipped))  # type: ignore[union-attr]
            m2 = responder.message_2()  # type: ignore[union-attr]
        except EdhocError:
            continue
        with pytest.raises(EdhocError):
            initiator.receive_message_2(m2)  # type: ignore[union-attr]


def test_reordered_messages_are_refused() -> None:
    for message, data in (("message_2", M3), ("message_3", M2), ("message_4", M2)):
        with pytest.raises(EdhocError):
            RECEIVERS[message](fresh(EXPECTING[message]), data)
    responder = fresh("responder_start")
    with pytest.raises(UnexpectedMessageError):
        responder.receive_message_3(M3)  # type: ignore[union-attr]
    assert responder.state is State.ERROR


def test_replays_do_not_break_a_completed_session() -> None:
    responder = fresh("responder_completed")
    key = responder.exporter(0, b"", 16)
    with pytest.raises(UnexpectedMessageError) as caught:
        responder.receive_message_3(M3)  # type: ignore[union-attr]
    assert caught.value.error_message is None
    with pytest.raises(UnexpectedMessageError):
        responder.receive_message_1(M1)  # type: ignore[union-attr]
    assert responder.state is State.COMPLETED
    assert responder.exporter(0, b"", 16) == key
    # A replayed message_1 to a responder mid-handshake aborts that handshake.
    waiting = fresh("responder_wait_3")
    with pytest.raises(UnexpectedMessageError):
        waiting.receive_message_1(M1)  # type: ignore[union-attr]
    assert waiting.state is State.ERROR


def test_message_2_from_another_handshake_is_refused() -> None:
    other: Pair = make_pair()
    other.responder.receive_message_1(other.initiator.message_1())
    with pytest.raises(EdhocError):
        fresh("initiator_wait_2").receive_message_2(other.responder.message_2())  # type: ignore[union-attr]


def test_wrong_suite_is_refused_with_suites_r() -> None:
    pair = make_pair(Method.STATIC_DH_STATIC_DH, CipherSuite.SUITE_3)
    responder = fresh("responder_start")
    with pytest.raises(CipherSuiteMismatchError) as caught:
        responder.receive_message_1(pair.initiator.message_1())  # type: ignore[union-attr]
    assert caught.value.error_message == b"\x02\x02"


def test_error_code_0_and_unknown_codes_abort_without_answer() -> None:
    for error in (b"\x00\x60", b"\x01\x63bad", b"\x03\xf5", b"\x18\x2a\x40"):
        initiator = fresh("initiator_wait_2")
        with pytest.raises(EdhocError) as caught:
            initiator.receive_message_2(error)  # type: ignore[union-attr]
        assert caught.value.error_message is None
        assert initiator.state is State.ERROR


@pytest.mark.parametrize(
    "error",
    [b"\x01\x00", b"\x01\xf5", b"\x02\x60", b"\x02\x81\x02", b"\x03\xf4", b"\x03\x41\x00"],
)
@pytest.mark.parametrize(
    ("state", "message"),
    [
        ("initiator_wait_2", "message_2"),
        ("responder_wait_3", "message_3"),
        ("initiator_completed", "message_4"),
    ],
)
def test_error_message_with_mistyped_err_info_is_not_answered(
    error: bytes, state: str, message: str
) -> None:
    """(ERR_CODE: int, ERR_INFO: any) is an error message whatever ERR_INFO holds (RFC 9528
    Figure 9); it aborts the session and is never answered with another error message (§6)."""
    party = fresh(state)
    with pytest.raises(PeerReportedError) as caught:
        RECEIVERS[message](party, error)
    assert caught.value.error_message is None
    assert caught.value.err_code == error[0]
    assert party.state is State.ERROR


@pytest.mark.parametrize("algorithm", ["2b657f", "2b6571", "2b656f"])  # unknown, Ed448, X448
def test_certificate_with_an_unusable_key_is_a_decode_error(algorithm: str) -> None:
    """x5chain certificates come from the peer: an odd key algorithm is its fault, nothing else."""
    der = TRACE_1["CRED_I (Raw Value)"]
    spki_ed25519 = bytes.fromhex("300506032b6570032100")  # AlgorithmIdentifier, then the key
    assert der.count(spki_ed25519) == 1
    odd = der.replace(spki_ed25519, bytes.fromhex(f"30050603{algorithm}032100"))
    with pytest.raises(MessageDecodeError):
        parse_x509_untrusted(odd)
    id_cred = cbor.encode({33: odd})
    with pytest.raises(MessageDecodeError):
        parse_id_cred_untrusted(cbor.Reader(id_cred).read_item())


STATES = sorted(k for k in SNAPSHOTS if k != "messages")


@settings(max_examples=300)
@given(
    state=st.sampled_from(STATES),
    message=st.sampled_from(sorted(RECEIVERS)),
    data=st.one_of(
        st.binary(max_size=200),
        st.sampled_from(list(VALID.values())),
        st.builds(
            lambda base, index, value: base[:index] + bytes([value]) + base[index + 1 :],
            st.sampled_from(list(VALID.values())),
            st.integers(0, 120),
            st.integers(0, 255),
        ),
    ),
)
def test_any_input_in_any_state_ends_in_edhoc_error_or_success(
    state: str, message: str, data: bytes
) -> None:
    party = fresh(state)
    if not hasattr(party, f"receive_{message}"):
        return
    try:
        RECEIVERS[message](party, data)
    except EdhocError:
        assert party.state in (State.ERROR, State.COMPLETED, State.CONFIRMED)
