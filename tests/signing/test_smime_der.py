"""The DER reader/writer under the CMS code: round trips, truncation, limits, garbage."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.signing import der


@pytest.mark.parametrize(
    ("dotted", "encoded"),
    [
        ("1.2.840.113549.1.7.2", "06092a864886f70d010702"),  # id-signedData, RFC 5652 §5.1
        ("1.2.840.10045.4.3.2", "06082a8648ce3d040302"),  # ecdsa-with-SHA256, RFC 5758 §3.2
        ("2.16.840.1.101.3.4.2.1", "0609608648016503040201"),  # id-sha256, RFC 5754 §2.2
        ("1.3.6.1.5.5.7.8.5", "06082b06010505070805"),  # id-on-xmppAddr, RFC 6120 §13.7.1.4
        ("2.999.3", "0603883703"),  # X.690 §8.19.5 example
    ],
)
def test_object_identifiers_round_trip(dotted: str, encoded: str) -> None:
    assert der.encode_oid(dotted).hex() == encoded
    assert der.read_oid(der.parse(bytes.fromhex(encoded)), "oid") == dotted


@pytest.mark.parametrize(
    ("value", "encoded"),
    [(0, "020100"), (1, "020101"), (127, "02017f"), (128, "02020080"), (-1, "0201ff")],
)
def test_integers_are_minimal_twos_complement(value: int, encoded: str) -> None:
    assert der.encode_integer(value).hex() == encoded
    assert der.read_integer(der.parse(bytes.fromhex(encoded)), "n") == value


def test_long_lengths_and_set_of_sorting() -> None:
    long = der.encode(0x04, b"x" * 300)
    assert long[:4] == bytes.fromhex("0482012c")
    assert der.parse(long).content == b"x" * 300
    assert der.encode_set_of([b"\x02\x01\x05", b"\x02\x01\x01"]) == bytes.fromhex(
        "3106020101020105"
    )


def test_times_use_utctime_until_2049() -> None:
    moment = datetime.datetime(2023, 11, 14, 22, 13, 20, tzinfo=datetime.UTC)
    encoded = der.encode_time(moment)
    assert encoded == b"\x17\x0d231114221320Z"
    assert der.read_time(der.parse(encoded)) == moment.timestamp()
    future = moment.replace(year=2050)
    assert der.encode_time(future)[:2] == b"\x18\x0f"
    assert der.read_time(der.parse(der.encode_time(future))) == future.timestamp()


def test_every_truncation_and_trailing_byte_is_refused() -> None:
    value = der.encode_sequence(der.encode_oid("1.2.3"), der.encode_integer(5))
    assert der.children(der.parse(value), 0)[1].content == b"\x05"
    for cut in range(len(value)):
        with pytest.raises(der.DerError):
            der.parse(value[:cut])
    with pytest.raises(der.DerError, match="trailing"):
        der.parse(value + b"\x00")


def test_nesting_beyond_the_limit_is_refused() -> None:
    value = b"\x05\x00"
    for _ in range(der.MAX_DEPTH + 2):
        value = der.encode_sequence(value)
    node = der.parse(value)  # definite lengths: children are read only when asked for
    for depth in range(der.MAX_DEPTH):
        node = der.children(node, depth)[0]
    with pytest.raises(der.DerError, match="deep"):
        der.children(node, der.MAX_DEPTH)
    indefinite = b"\x30\x80" * (der.MAX_DEPTH + 2)  # must be walked to find its end
    with pytest.raises(der.DerError, match="deep"):
        der.parse(indefinite)


def test_indefinite_length_only_on_constructed_values() -> None:
    node = der.parse(b"\x30\x80\x02\x01\x07\x00\x00")
    assert [der.read_integer(c, "n") for c in der.children(node, 0)] == [7]
    with pytest.raises(der.DerError, match="primitive"):
        der.parse(b"\x04\x80\x00\x00")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_parses_or_raises_der_error(data: bytes) -> None:
    try:
        node = der.parse(data)
        if node.constructed:
            der.children(node, 0)
        der.read_oid(node, "x")
    except der.DerError:
        pass
