"""Encoding and decoding of EDHOC messages and plaintexts (RFC 9528 §5, §6, §3.3.2, §3.8).

Each message is a CBOR sequence. Connection identifiers and compact kids are byte strings that are
sent as the one-byte CBOR integer they coincide with (§3.3.2). EAD fields are sequences of
``(ead_label: int, ? ead_value: bstr)``. Every ``*_untrusted`` function here is total: it returns a
value or raises :class:`MessageDecodeError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gateway.edhoc import cbor
from gateway.edhoc.cbor import CborValue, Reader, is_int
from gateway.edhoc.credentials import IdCred, parse_id_cred_untrusted
from gateway.edhoc.errors import EdhocErrorCode, MessageDecodeError

# How many EAD items one message may carry before it is refused (padding included).
DEFAULT_MAX_EAD_ITEMS = 16


@dataclass(frozen=True)
class EadItem:
    """One external authorization data item; a negative label marks it critical (§3.8)."""

    label: int
    value: bytes | None = None

    @property
    def critical(self) -> bool:
        """True for a critical item: the receiver must understand it or abort."""
        return self.label < 0

    @property
    def is_padding(self) -> bool:
        """True for padding (label 0, §3.8.1), which receivers discard."""
        return self.label == 0


def _is_one_byte_int(byte: int) -> bool:
    return byte <= 0x17 or 0x20 <= byte <= 0x37


def encode_identifier(identifier: bytes) -> bytes:
    """A connection identifier or compact kid on the wire (RFC 9528 §3.3.2)."""
    if len(identifier) == 1 and _is_one_byte_int(identifier[0]):
        return identifier
    return cbor.encode_bstr(identifier)


def read_identifier_untrusted(reader: Reader) -> bytes:
    """Read a ``bstr / -24..23`` identifier back into its byte string."""
    item = reader.read_item()
    if is_int(item.value):
        if len(item.raw) != 1:
            raise MessageDecodeError("identifier integer outside -24..23")
        return item.raw
    if not isinstance(item.value, bytes):
        raise MessageDecodeError("identifier must be a byte string or a one-byte integer")
    if len(item.value) == 1 and _is_one_byte_int(item.value[0]):
        raise MessageDecodeError("identifier that is a one-byte integer must be sent as one")
    return item.value


def encode_ead(items: Sequence[EadItem]) -> bytes:
    """An EAD field: the CBOR sequence of its items."""
    parts = []
    for item in items:
        parts.append(cbor.encode_int(item.label))
        if item.value is not None:
            parts.append(cbor.encode_bstr(item.value))
    return b"".join(parts)


def read_ead_untrusted(reader: Reader, *, max_items: int = DEFAULT_MAX_EAD_ITEMS) -> list[EadItem]:
    """Read EAD items until the reader is exhausted."""
    items: list[EadItem] = []
    while not reader.at_end():
        if len(items) >= max_items:
            raise MessageDecodeError("too many EAD items")
        label = reader.read()
        if not is_int(label):
            raise MessageDecodeError("ead_label must be an integer")
        assert isinstance(label, int)
        value: bytes | None = None
        if not reader.at_end() and reader.peek_major() == 2:
            raw = reader.read()
            assert isinstance(raw, bytes)
            value = raw
        items.append(EadItem(label, value))
    return items


def encode_suites(suites: Sequence[int]) -> bytes:
    """SUITES_I / SUITES_R: an int for one suite, an array for several (§5.2.1)."""
    if len(suites) == 1:
        return cbor.encode_int(suites[0])
    return cbor.encode(list(suites))


def suites_from_value_untrusted(value: CborValue) -> list[int]:
    """Suites from a decoded ``[2* int] / int``."""
    if is_int(value):
        assert isinstance(value, int)
        return [value]
    if not isinstance(value, list) or len(value) < 2 or not all(is_int(v) for v in value):
        raise MessageDecodeError("suites must be an int or an array of two or more ints")
    return [v for v in value if isinstance(v, int)]


@dataclass(frozen=True)
class Message1:
    """message_1 (RFC 9528 §5.2.1)."""

    method: int
    suites_i: tuple[int, ...]
    g_x: bytes
    c_i: bytes
    ead: tuple[EadItem, ...] = ()

    @property
    def selected_suite(self) -> int:
        """The suite the Initiator selected: the last of SUITES_I."""
        return self.suites_i[-1]

    def encode(self) -> bytes:
        """message_1 as sent."""
        return (
            cbor.encode_int(self.method)
            + encode_suites(self.suites_i)
            + cbor.encode_bstr(self.g_x)
            + encode_identifier(self.c_i)
            + encode_ead(self.ead)
        )


def decode_message_1_untrusted(
    data: bytes, *, max_ead_items: int = DEFAULT_MAX_EAD_ITEMS
) -> Message1:
    """Decode message_1; wrong types, lengths or encodings raise :class:`MessageDecodeError`."""
    reader = Reader(data)
    method = reader.read()
    if not is_int(method):
        raise MessageDecodeError("METHOD must be an integer")
    suites = suites_from_value_untrusted(reader.read())
    g_x = reader.read()
    if not isinstance(g_x, bytes):
        raise MessageDecodeError("G_X must be a byte string")
    c_i = read_identifier_untrusted(reader)
    ead = read_ead_untrusted(reader, max_items=max_ead_items)
    assert isinstance(method, int)
    return Message1(method, tuple(suites), g_x, c_i, tuple(ead))


def decode_single_bstr_untrusted(data: bytes, what: str) -> bytes:
    """message_2, _3 or _4: one byte string and nothing after it."""
    value = cbor.decode_single_untrusted(data)
    if not isinstance(value, bytes):
        raise MessageDecodeError(f"{what} must be a single byte string")
    return value


def is_error_message(data: bytes) -> bool:
    """True when ``data`` starts like an EDHOC error message (an int) rather than a bstr."""
    return len(data) > 0 and data[0] >> 5 in (0, 1)


@dataclass(frozen=True)
class Plaintext2:
    """PLAINTEXT_2 = (C_R, ID_CRED_R / bstr / -24..23, Signature_or_MAC_2, ? EAD_2)."""

    c_r: bytes
    id_cred_r: IdCred
    signature_or_mac_2: bytes
    ead: tuple[EadItem, ...]


def encode_id_cred_compact(id_cred: bytes, kid: bytes | None) -> bytes:
    """ID_CRED_x in a plaintext: just the kid when it is ``{4: kid}`` (§3.5.3.2)."""
    if kid is not None and id_cred == cbor.encode({4: kid}):
        return encode_identifier(kid)
    return id_cred


def encode_plaintext(
    id_cred: bytes, kid: bytes | None, signature_or_mac: bytes, ead: bytes, *, c_r: bytes = b""
) -> bytes:
    """PLAINTEXT_2 (with the encoded ``c_r``) or PLAINTEXT_3 (without): the sender's identity,
    its Signature_or_MAC and its encoded EAD (§5.3.2, §5.4.2)."""
    return c_r + encode_id_cred_compact(id_cred, kid) + cbor.encode_bstr(signature_or_mac) + ead


def _read_authentication_untrusted(
    reader: Reader, number: int, max_ead_items: int
) -> tuple[IdCred, bytes, tuple[EadItem, ...]]:
    """ID_CRED_x, Signature_or_MAC_x and EAD_x, which PLAINTEXT_2 and PLAINTEXT_3 share."""
    id_cred = parse_id_cred_untrusted(reader.read_item())
    signature_or_mac = reader.read()
    if not isinstance(signature_or_mac, bytes):
        raise MessageDecodeError(f"Signature_or_MAC_{number} must be a byte string")
    return id_cred, signature_or_mac, tuple(read_ead_untrusted(reader, max_items=max_ead_items))


def decode_plaintext_2_untrusted(
    data: bytes, *, max_ead_items: int = DEFAULT_MAX_EAD_ITEMS
) -> Plaintext2:
    """Decode the decrypted PLAINTEXT_2."""
    reader = Reader(data)
    c_r = read_identifier_untrusted(reader)
    return Plaintext2(c_r, *_read_authentication_untrusted(reader, 2, max_ead_items))


@dataclass(frozen=True)
class Plaintext3:
    """PLAINTEXT_3 = (ID_CRED_I / bstr / -24..23, Signature_or_MAC_3, ? EAD_3)."""

    id_cred_i: IdCred
    signature_or_mac_3: bytes
    ead: tuple[EadItem, ...]


def decode_plaintext_3_untrusted(
    data: bytes, *, max_ead_items: int = DEFAULT_MAX_EAD_ITEMS
) -> Plaintext3:
    """Decode the decrypted PLAINTEXT_3."""
    return Plaintext3(*_read_authentication_untrusted(Reader(data), 3, max_ead_items))


def decode_plaintext_4_untrusted(
    data: bytes, *, max_ead_items: int = DEFAULT_MAX_EAD_ITEMS
) -> tuple[EadItem, ...]:
    """Decode PLAINTEXT_4 = ( ? EAD_4 )."""
    return tuple(read_ead_untrusted(Reader(data), max_items=max_ead_items))


@dataclass(frozen=True)
class ErrorMessage:
    """An EDHOC error message (RFC 9528 §6): ERR_CODE and ERR_INFO."""

    code: int
    info: CborValue

    def encode(self) -> bytes:
        """The error message as sent."""
        return cbor.encode_int(self.code) + cbor.encode(self.info)


def unspecified_error(diagnostic: str) -> bytes:
    """Error code 1 with an English diagnostic (§6.2)."""
    return ErrorMessage(EdhocErrorCode.UNSPECIFIED_ERROR, diagnostic).encode()


def wrong_suite_error(suites_r: Sequence[int]) -> bytes:
    """Error code 2 with SUITES_R (§6.3)."""
    return cbor.encode_int(EdhocErrorCode.WRONG_SELECTED_CIPHER_SUITE) + encode_suites(suites_r)


def unknown_credential_error() -> bytes:
    """Error code 3 with ERR_INFO = true (§6.4)."""
    return ErrorMessage(EdhocErrorCode.UNKNOWN_CREDENTIAL_REFERENCED, True).encode()


def decode_error_shape_untrusted(data: bytes) -> ErrorMessage:
    """Decode ``(ERR_CODE: int, ERR_INFO: any)`` (Figure 9) without judging ERR_INFO's type.

    Whatever has this shape is an error message, even with an ERR_INFO of the wrong type, and
    must not be answered with another one (§6: errors reply to non-error messages only).
    """
    reader = Reader(data)
    code = reader.read()
    if not is_int(code):
        raise MessageDecodeError("ERR_CODE must be an integer")
    info = reader.read()
    if not reader.at_end():
        raise MessageDecodeError("trailing data after ERR_INFO")
    assert isinstance(code, int)
    return ErrorMessage(code, info)


def check_error_info_untrusted(error: ErrorMessage) -> None:
    """Raise :class:`MessageDecodeError` unless ERR_INFO has the type its code needs (Figure 10)."""
    if error.code == EdhocErrorCode.UNSPECIFIED_ERROR and not isinstance(error.info, str):
        raise MessageDecodeError("ERR_INFO of error code 1 must be text")
    if error.code == EdhocErrorCode.WRONG_SELECTED_CIPHER_SUITE:
        suites_from_value_untrusted(error.info)
    if error.code == EdhocErrorCode.UNKNOWN_CREDENTIAL_REFERENCED and error.info is not True:
        raise MessageDecodeError("ERR_INFO of error code 3 must be true")


def decode_error_untrusted(data: bytes) -> ErrorMessage:
    """Decode an error message: exactly ERR_CODE and ERR_INFO, with ERR_INFO typed per code."""
    error = decode_error_shape_untrusted(data)
    check_error_info_untrusted(error)
    return error
