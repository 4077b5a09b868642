"""EDHOC key derivation and transcript hashes (RFC 9528 §4, §5.3.2, §5.4.2, Appendix H).

Every key is ``EDHOC_KDF(PRK, label, context, length) = HKDF-Expand(PRK, info, length)`` with
``info = (label: int, context: bstr, length: uint)`` as a CBOR sequence (§4.1.2, Figure 8). PRK_2e,
PRK_3e2m and PRK_4e3m come from HKDF-Extract with the transcript hash or a derived salt (§4.1.1).
The sig/MAC computations and the COSE structures they sign live here too, since both roles share
them.
"""

from __future__ import annotations

from gateway.edhoc import cbor
from gateway.edhoc.crypto import Crypto

# EDHOC_KDF labels (RFC 9528 Figure 8, Appendix H).
KEYSTREAM_2 = 0
SALT_3E2M = 1
MAC_2 = 2
K_3 = 3
IV_3 = 4
SALT_4E3M = 5
MAC_3 = 6
PRK_OUT = 7
K_4 = 8
IV_4 = 9
PRK_EXPORTER = 10
KEY_UPDATE = 11


def kdf_info(label: int, context: bytes, length: int) -> bytes:
    """``info = (label: int, context: bstr, length: uint)`` as a CBOR sequence (§4.1.2)."""
    return cbor.encode_int(label) + cbor.encode_bstr(context) + cbor.encode_int(length)


def edhoc_kdf(crypto: Crypto, prk: bytes, label: int, context: bytes, length: int) -> bytes:
    """EDHOC_KDF (RFC 9528 §4.1.2) for SHA-2 suites."""
    return crypto.hkdf_expand(prk, kdf_info(label, context, length), length)


def transcript_hash(crypto: Crypto, *parts: bytes) -> bytes:
    """H() over a CBOR sequence whose items are given already encoded."""
    return crypto.hash(b"".join(parts))


def th_2(crypto: Crypto, g_y: bytes, message_1: bytes) -> bytes:
    """TH_2 = H(G_Y, H(message_1)) (§5.3.2)."""
    return transcript_hash(crypto, cbor.encode_bstr(g_y), cbor.encode_bstr(crypto.hash(message_1)))


def th_next(crypto: Crypto, previous: bytes, plaintext: bytes, credential: bytes) -> bytes:
    """TH_3 = H(TH_2, PLAINTEXT_2, CRED_R) and TH_4 = H(TH_3, PLAINTEXT_3, CRED_I)."""
    return transcript_hash(crypto, cbor.encode_bstr(previous), plaintext, credential)


def xor(data: bytes, keystream: bytes) -> bytes:
    """PLAINTEXT_2 XOR KEYSTREAM_2 (§5.3.2)."""
    return bytes(a ^ b for a, b in zip(data, keystream, strict=True))


def mac_context(
    c_r: bytes | None, id_cred: bytes, th: bytes, credential: bytes, ead: bytes
) -> bytes:
    """context_2 = << C_R, ID_CRED_R, TH_2, CRED_R, ? EAD_2 >> or context_3 (no C_R)."""
    return (c_r or b"") + id_cred + cbor.encode_bstr(th) + credential + ead


def sig_structure(id_cred: bytes, th: bytes, credential: bytes, ead: bytes, mac: bytes) -> bytes:
    """The COSE_Sign1 Sig_structure EDHOC signs (RFC 9052 §4.4; RFC 9528 §5.3.2, §5.4.2)."""
    external_aad = cbor.encode_bstr(th) + credential + ead
    return (
        b"\x84"
        + cbor.encode("Signature1")
        + cbor.encode_bstr(id_cred)
        + cbor.encode_bstr(external_aad)
        + cbor.encode_bstr(mac)
    )


def enc_structure(th: bytes) -> bytes:
    """A_3 / A_4: the COSE_Encrypt0 Enc_structure ["Encrypt0", h'', TH] (RFC 9052 §5.3)."""
    return b"\x83" + cbor.encode("Encrypt0") + cbor.encode_bstr(b"") + cbor.encode_bstr(th)
