"""EDHOC key derivation and transcript hashes (RFC 9528 §4, §5.3.2, §5.4.2, Appendix H).

Every key is ``EDHOC_KDF(PRK, label, context, length) = HKDF-Expand(PRK, info, length)`` with
``info = (label: int, context: bstr, length: uint)`` as a CBOR sequence (§4.1.2, Figure 8). PRK_2e,
PRK_3e2m and PRK_4e3m come from HKDF-Extract with the transcript hash or a derived salt (§4.1.1).
:class:`KeySchedule` makes every derivation of a handshake that the Initiator and the Responder
share: transcript hashes, PRK_2e/PRK_3e2m/PRK_4e3m, MAC_2/MAC_3 and Signature_or_MAC_2/_3 with
the COSE structures they sign, the AEAD keys of message_3 and message_4, and PRK_out. The roles
keep only what differs: who holds which private key, who makes a value and who checks it.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.edhoc import cbor
from gateway.edhoc.crypto import Crypto
from gateway.edhoc.errors import AuthenticationFailedError
from gateway.edhoc.suites import CipherSuite, Method, SuiteParameters

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


@dataclass(frozen=True)
class MacContext:
    """What MAC_2 or MAC_3 and the signature bind (RFC 9528 §5.3.2, §5.4.2).

    context_2 = << C_R, ID_CRED_R, TH_2, CRED_R, ? EAD_2 >>; context_3 is the same without C_R.
    Every field is given as it is encoded on the wire or in the transcript.
    """

    id_cred: bytes
    th: bytes
    credential: bytes
    ead: bytes
    c_r: bytes = b""

    def encode(self) -> bytes:
        """The context as the EDHOC_KDF context argument of MAC_2 / MAC_3."""
        return mac_context(self.c_r or None, self.id_cred, self.th, self.credential, self.ead)

    def to_be_signed(self, mac: bytes) -> bytes:
        """The Sig_structure over this context and the MAC (RFC 9052 §4.4)."""
        return sig_structure(self.id_cred, self.th, self.credential, self.ead, mac)


@dataclass(frozen=True)
class _Step:
    """The labels and RFC 9529 names of one of the two authenticated messages."""

    number: int
    responder_authenticates: bool
    salt_label: int
    mac_label: int
    salt_name: str
    static_dh_name: str
    prk_name: str


_MESSAGE_2 = _Step(2, True, SALT_3E2M, MAC_2, "SALT_3e2m", "G_RX", "PRK_3e2m")
_MESSAGE_3 = _Step(3, False, SALT_4E3M, MAC_3, "SALT_4e3m", "G_IY", "PRK_4e3m")


class KeySchedule:
    """The derivations of one handshake, which both roles make from the same inputs.

    The Initiator and the Responder compute the same transcript hashes, PRKs, MACs and AEAD keys
    (RFC 9528 §4.1.1, §5.3-§5.5); they differ only in which half of each Diffie-Hellman share
    they hold and in who makes Signature_or_MAC and who checks it. Every intermediate value goes
    to ``note`` under its RFC 9529 name, which is how the tests compare both roles to the traces.
    """

    def __init__(
        self, crypto: Crypto, suite: CipherSuite, method: Method, note: Callable[[str, bytes], None]
    ) -> None:
        self._crypto = crypto
        self._params = suite.parameters
        self._method = method
        self._note = note

    def _signs(self, step: _Step) -> bool:
        if step.responder_authenticates:
            return self._method.responder_signs
        return self._method.initiator_signs

    def prk_2e(self, g_y: bytes, message_1: bytes, g_xy: bytes) -> tuple[bytes, bytes]:
        """TH_2 and PRK_2e = HKDF-Extract(TH_2, G_XY) (§5.3.2, §4.1.1.1)."""
        th2 = th_2(self._crypto, g_y, message_1)
        prk = self._crypto.hkdf_extract(th2, g_xy)
        self._note("G_Y", g_y)
        self._note("G_XY", g_xy)
        self._note("TH_2", th2)
        self._note("PRK_2e", prk)
        return th2, prk

    def keystream_2(self, prk_2e: bytes, th2: bytes, length: int) -> bytes:
        """KEYSTREAM_2, as long as PLAINTEXT_2 (§5.3.2)."""
        keystream = edhoc_kdf(self._crypto, prk_2e, KEYSTREAM_2, th2, length)
        self._note("KEYSTREAM_2", keystream)
        return keystream

    def _authentication_prk(
        self, step: _Step, prk: bytes, th: bytes, private_key: bytes, public_key: bytes
    ) -> bytes:
        if self._signs(step):
            result = prk
        else:
            salt = edhoc_kdf(self._crypto, prk, step.salt_label, th, 32)
            shared = self._crypto.ecdh(self._params.ecdh_curve, private_key, public_key)
            result = self._crypto.hkdf_extract(salt, shared)
            self._note(step.salt_name, salt)
            self._note(step.static_dh_name, shared)
        self._note(step.prk_name, result)
        return result

    def prk_3e2m(self, prk_2e: bytes, th2: bytes, private_key: bytes, public_key: bytes) -> bytes:
        """PRK_3e2m: PRK_2e when the Responder signs, else from SALT_3e2m and G_RX (§4.1.1.2).

        ``private_key`` and ``public_key`` are the halves of G_RX the caller holds: R and G_X
        (Responder) or X and G_R (Initiator); they are used only when the Responder uses static DH.
        """
        return self._authentication_prk(_MESSAGE_2, prk_2e, th2, private_key, public_key)

    def prk_4e3m(self, prk_3e2m: bytes, th3: bytes, private_key: bytes, public_key: bytes) -> bytes:
        """PRK_4e3m: PRK_3e2m when the Initiator signs, else from SALT_4e3m and G_IY (§4.1.1.3).

        The keys are the halves of G_IY the caller holds: I and G_Y, or Y and G_I.
        """
        return self._authentication_prk(_MESSAGE_3, prk_3e2m, th3, private_key, public_key)

    def _mac(self, step: _Step, prk: bytes, context: MacContext) -> bytes:
        encoded = context.encode()
        length = 32 if self._signs(step) else self._params.mac_length
        mac = edhoc_kdf(self._crypto, prk, step.mac_label, encoded, length)
        self._note(f"context_{step.number}", encoded)
        self._note(f"MAC_{step.number}", mac)
        return mac

    def _make(self, step: _Step, prk: bytes, context: MacContext, private_key: bytes) -> bytes:
        mac = self._mac(step, prk, context)
        if self._signs(step):
            to_be_signed = context.to_be_signed(mac)
            self._note(f"Message to be signed {step.number}", to_be_signed)
            result = self._crypto.sign(self._params.signature, private_key, to_be_signed)
        else:
            result = mac
        self._note(f"Signature_or_MAC_{step.number}", result)
        return result

    def _check(
        self, step: _Step, prk: bytes, context: MacContext, public_key: bytes, received: bytes
    ) -> None:
        mac = self._mac(step, prk, context)
        if self._signs(step):
            to_be_signed = context.to_be_signed(mac)
            self._note(f"Message to be signed {step.number}", to_be_signed)
            self._crypto.verify(self._params.signature, public_key, to_be_signed, received)
        elif not hmac.compare_digest(mac, received):
            raise AuthenticationFailedError(f"MAC_{step.number} does not verify")

    def signature_or_mac_2(self, prk_3e2m: bytes, context: MacContext, private_key: bytes) -> bytes:
        """Signature_or_MAC_2 as the Responder makes it with its own key (§5.3.2)."""
        return self._make(_MESSAGE_2, prk_3e2m, context, private_key)

    def check_signature_or_mac_2(
        self, prk_3e2m: bytes, context: MacContext, public_key: bytes, received: bytes
    ) -> None:
        """Check the Responder's Signature_or_MAC_2 (§5.3.3); raise AuthenticationFailedError."""
        self._check(_MESSAGE_2, prk_3e2m, context, public_key, received)

    def signature_or_mac_3(self, prk_4e3m: bytes, context: MacContext, private_key: bytes) -> bytes:
        """Signature_or_MAC_3 as the Initiator makes it with its own key (§5.4.2)."""
        return self._make(_MESSAGE_3, prk_4e3m, context, private_key)

    def check_signature_or_mac_3(
        self, prk_4e3m: bytes, context: MacContext, public_key: bytes, received: bytes
    ) -> None:
        """Check the Initiator's Signature_or_MAC_3 (§5.4.3); raise AuthenticationFailedError."""
        self._check(_MESSAGE_3, prk_4e3m, context, public_key, received)

    def transcript(self, name: str, previous: bytes, plaintext: bytes, credential: bytes) -> bytes:
        """TH_3 or TH_4 (``name``) over the previous hash, the plaintext and CRED_x (§5.3.2)."""
        th = th_next(self._crypto, previous, plaintext, credential)
        self._note(name, th)
        return th

    def _aead(self, number: int, prk: bytes, th: bytes, key_label: int, iv_label: int) -> AeadKeys:
        key = edhoc_kdf(self._crypto, prk, key_label, th, self._params.key_length)
        iv = edhoc_kdf(self._crypto, prk, iv_label, th, self._params.iv_length)
        aad = enc_structure(th)
        self._note(f"K_{number}", key)
        self._note(f"IV_{number}", iv)
        self._note(f"A_{number}", aad)
        return AeadKeys(self._crypto, self._params, key, iv, aad)

    def aead_3(self, prk_3e2m: bytes, th3: bytes) -> AeadKeys:
        """K_3, IV_3 and A_3, which protect message_3 (§5.4.2)."""
        return self._aead(3, prk_3e2m, th3, K_3, IV_3)

    def aead_4(self, prk_4e3m: bytes, th4: bytes) -> AeadKeys:
        """K_4, IV_4 and A_4, which protect message_4 (§5.5.2)."""
        return self._aead(4, prk_4e3m, th4, K_4, IV_4)

    def prk_out(self, prk_4e3m: bytes, th4: bytes) -> bytes:
        """PRK_out = EDHOC_KDF(PRK_4e3m, 7, TH_4, hash_length) (§4.1.3)."""
        return edhoc_kdf(self._crypto, prk_4e3m, PRK_OUT, th4, 32)


@dataclass(frozen=True)
class AeadKeys:
    """The AEAD key, nonce and associated data of message_3 or message_4."""

    crypto: Crypto = field(repr=False)
    params: SuiteParameters
    key: bytes = field(repr=False)
    iv: bytes = field(repr=False)
    aad: bytes

    def encrypt(self, plaintext: bytes) -> bytes:
        """CIPHERTEXT_3 / CIPHERTEXT_4."""
        return self.crypto.encrypt(self.params, self.key, self.iv, self.aad, plaintext)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """PLAINTEXT_3 / PLAINTEXT_4; raises :class:`AuthenticationFailedError` on a bad tag."""
        return self.crypto.decrypt(self.params, self.key, self.iv, self.aad, ciphertext)
