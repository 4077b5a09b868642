"""The EDHOC Responder (RFC 9528 §5.2.3, §5.3.2, §5.4.3, §5.5.2), sans-IO.

Theory of operation: message_1 is decoded strictly, its method and cipher suite checked (the
selected suite must be the first of SUITES_I that the Responder supports, else error code 2 with
SUITES_R, §5.2.3, §6.3), G_X validated (§9.2) and the ephemeral ECDH done at once, so a bad key is
refused before any state is spent on it. message_2 carries G_Y and PLAINTEXT_2 (C_R, ID_CRED_R,
Signature_or_MAC_2, EAD_2) under the KEYSTREAM_2 from PRK_2e (§5.3.2). message_3 is decrypted with
K_3/IV_3, the Initiator's credential is found through the lookup callback from ID_CRED_I and its
signature or MAC verified (§5.4.3); the handshake is then complete. message_4 (§5.5.2) is optional.
A Responder can hold several own credentials (an Ed25519 one for signatures, an X25519 or P-256 one
for static DH) and uses the one the method and suite call for.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Sequence

from gateway.edhoc import cbor, key_schedule
from gateway.edhoc._endpoint import DEFAULT_MAX_MESSAGE_SIZE, Endpoint, Injection
from gateway.edhoc.credentials import Credential, CredentialLookup, CredentialTransfer
from gateway.edhoc.crypto import Crypto
from gateway.edhoc.errors import (
    AuthenticationFailedError,
    CipherSuiteMismatchError,
    LocalProtocolError,
    MessageDecodeError,
    UnsupportedMethodError,
)
from gateway.edhoc.events import HandshakeCompleted, Message1Received, Message3Received
from gateway.edhoc.key_schedule import edhoc_kdf
from gateway.edhoc.messages import (
    DEFAULT_MAX_EAD_ITEMS,
    EadItem,
    decode_message_1_untrusted,
    decode_plaintext_3_untrusted,
    decode_single_bstr_untrusted,
    encode_id_cred_compact,
    encode_identifier,
    is_error_message,
    wrong_suite_error,
)
from gateway.edhoc.state import Input, Role
from gateway.edhoc.suites import SUPPORTED_SUITES, CipherSuite, Method


class Responder(Endpoint):
    """One EDHOC session as Responder: bytes in, bytes and events out."""

    role = Role.RESPONDER

    def __init__(
        self,
        *,
        suites: Sequence[CipherSuite | int],
        c_r: bytes,
        credential: Credential | Sequence[Credential],
        credential_lookup: CredentialLookup,
        methods: Collection[Method] = tuple(Method),
        credential_transfer: CredentialTransfer = CredentialTransfer.BY_REFERENCE,
        known_ead_labels: Collection[int] = (),
        crypto: Crypto | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_ead_items: int = DEFAULT_MAX_EAD_ITEMS,
        _injection: Injection | None = None,
    ) -> None:
        super().__init__(
            credential=credential,
            credential_lookup=credential_lookup,
            credential_transfer=credential_transfer,
            known_ead_labels=known_ead_labels,
            crypto=crypto,
            max_message_size=max_message_size,
            max_ead_items=max_ead_items,
            injection=_injection,
        )
        supported = [int(s) for s in suites]
        if not supported or any(s not in SUPPORTED_SUITES for s in supported):
            raise LocalProtocolError(f"suites must be a non-empty subset of {SUPPORTED_SUITES}")
        self._suites = supported
        self._methods = frozenset(Method(m) for m in methods)
        self.c_r = bytes(c_r)
        self.c_i: bytes | None = None

    # -- message_1 (§5.2.3) --

    def receive_message_1(self, data: bytes) -> list[Message1Received]:
        """Process message_1; refusals carry the error message to send back."""
        return self._step(Input.RECEIVE_MESSAGE_1, lambda: self._process_message_1(data))

    def _suites_r(self, suites_i: Sequence[int]) -> list[int] | None:
        """SUITES_R when the selected suite must be refused, else ``None`` (§5.2.3, §6.3)."""
        first_supported = next((s for s in suites_i if s in self._suites), None)
        if first_supported is None:
            return list(self._suites)
        # Compared by value (§6.3.1: "the first cipher suite in SUITES_I that the Responder also
        # supports"), so a SUITES_I that repeats the selected suite is not refused forever.
        if first_supported != suites_i[-1]:
            return [first_supported]
        return None

    def _process_message_1(self, data: bytes) -> list[Message1Received]:
        self._check_size(data)
        message = decode_message_1_untrusted(data, max_ead_items=self._max_ead_items)
        if message.method not in self._methods:
            raise UnsupportedMethodError("Method not supported")
        suites_r = self._suites_r(message.suites_i)
        if suites_r is not None:
            raise CipherSuiteMismatchError(
                "selected cipher suite refused",
                suites_r=suites_r,
                error_message=wrong_suite_error(suites_r),
            )
        method = Method(message.method)
        suite = CipherSuite(message.selected_suite)
        params = suite.parameters
        if len(message.g_x) != params.public_key_length:
            raise MessageDecodeError("G_X has the wrong length for the selected suite")
        if message.c_i == self.c_r:
            raise MessageDecodeError("C_I equals C_R")
        own_curve = params.signature_curve if method.responder_signs else params.ecdh_curve
        try:
            self._credential = self._own_credential_for(own_curve)
        except LocalProtocolError as exc:
            raise UnsupportedMethodError("no credential for this method and cipher suite") from exc
        ead = self._check_ead(message.ead)
        crypto = self._crypto
        self._crypto.validate_public_key(params.ecdh_curve, message.g_x)
        if self._injection.ephemeral_private_key is not None:
            self._y = self._injection.ephemeral_private_key
            self._g_y = crypto.ephemeral_public_key(params.ecdh_curve, self._y)
        else:
            self._y, self._g_y = crypto.generate_key_pair(params.ecdh_curve)
        self._g_xy = crypto.ecdh(params.ecdh_curve, self._y, message.g_x)
        self._note("G_XY", self._g_xy)
        self._g_x = message.g_x
        self._message_1 = data
        self.method, self.suite, self.c_i = method, suite, message.c_i
        return [Message1Received(method, suite, message.c_i, ead)]

    # -- message_2 (§5.3.2) --

    def message_2(self, ead: Sequence[EadItem] = ()) -> bytes:
        """Compose message_2."""
        return self._step(Input.SEND_MESSAGE_2, lambda: self._compose_message_2(ead))

    def _compose_message_2(self, ead: Sequence[EadItem]) -> bytes:
        assert self.suite is not None
        assert self.method is not None
        params = self.suite.parameters
        crypto = self._crypto
        own = self._credential
        assert own.private_key is not None
        th_2 = key_schedule.th_2(crypto, self._g_y, self._message_1)
        prk_2e = crypto.hkdf_extract(th_2, self._g_xy)
        if self.method.responder_signs:
            prk_3e2m = prk_2e
        else:
            salt_3e2m = edhoc_kdf(crypto, prk_2e, key_schedule.SALT_3E2M, th_2, 32)
            g_rx = crypto.ecdh(params.ecdh_curve, own.private_key, self._g_x)
            prk_3e2m = crypto.hkdf_extract(salt_3e2m, g_rx)
            self._note("SALT_3e2m", salt_3e2m)
            self._note("G_RX", g_rx)
        id_cred_r = own.id_cred(self._transfer)
        ead_2 = self._encode_ead(ead)
        c_r = encode_identifier(self.c_r)
        context_2 = key_schedule.mac_context(c_r, id_cred_r, th_2, own.encoded, ead_2)
        mac_length_2 = 32 if self.method.responder_signs else params.mac_length
        mac_2 = edhoc_kdf(crypto, prk_3e2m, key_schedule.MAC_2, context_2, mac_length_2)
        if self.method.responder_signs:
            to_be_signed = key_schedule.sig_structure(id_cred_r, th_2, own.encoded, ead_2, mac_2)
            self._note("Message to be signed 2", to_be_signed)
            signature_or_mac_2 = crypto.sign(params.signature, own.private_key, to_be_signed)
        else:
            signature_or_mac_2 = mac_2
        plaintext_2 = (
            c_r
            + encode_id_cred_compact(id_cred_r, own.kid)
            + cbor.encode_bstr(signature_or_mac_2)
            + ead_2
        )
        keystream_2 = edhoc_kdf(crypto, prk_2e, key_schedule.KEYSTREAM_2, th_2, len(plaintext_2))
        ciphertext_2 = key_schedule.xor(plaintext_2, keystream_2)
        message_2 = cbor.encode_bstr(self._g_y + ciphertext_2)
        self._prk_3e2m = prk_3e2m
        self._th_3 = key_schedule.th_next(crypto, th_2, plaintext_2, own.encoded)
        del self._g_xy
        for name, value in (
            ("G_Y", self._g_y),
            ("TH_2", th_2),
            ("context_2", context_2),
            ("PRK_2e", prk_2e),
            ("PRK_3e2m", prk_3e2m),
            ("MAC_2", mac_2),
            ("Signature_or_MAC_2", signature_or_mac_2),
            ("PLAINTEXT_2", plaintext_2),
            ("KEYSTREAM_2", keystream_2),
            ("CIPHERTEXT_2", ciphertext_2),
            ("message_2", message_2),
            ("TH_3", self._th_3),
        ):
            self._note(name, value)
        return message_2

    # -- message_3 (§5.4.3) --

    def receive_message_3(self, data: bytes) -> list[Message3Received | HandshakeCompleted]:
        """Process message_3; on success the handshake is complete."""
        return self._step(Input.RECEIVE_MESSAGE_3, lambda: self._process_message_3(data))

    def _process_message_3(self, data: bytes) -> list[Message3Received | HandshakeCompleted]:
        assert self.suite is not None
        assert self.method is not None
        assert self.c_i is not None
        self._check_size(data)
        if is_error_message(data):
            self._raise_peer_error(data)
        params = self.suite.parameters
        crypto = self._crypto
        th_3 = self._th_3
        ciphertext_3 = decode_single_bstr_untrusted(data, "message_3")
        k_3 = edhoc_kdf(crypto, self._prk_3e2m, key_schedule.K_3, th_3, params.key_length)
        iv_3 = edhoc_kdf(crypto, self._prk_3e2m, key_schedule.IV_3, th_3, params.iv_length)
        a_3 = key_schedule.enc_structure(th_3)
        plaintext_3 = crypto.decrypt(params, k_3, iv_3, a_3, ciphertext_3)
        for name, value in (
            ("K_3", k_3),
            ("IV_3", iv_3),
            ("A_3", a_3),
            ("CIPHERTEXT_3", ciphertext_3),
            ("PLAINTEXT_3", plaintext_3),
        ):
            self._note(name, value)
        decoded = decode_plaintext_3_untrusted(plaintext_3, max_ead_items=self._max_ead_items)
        ead = self._check_ead(decoded.ead)
        expected_curve = (
            params.signature_curve if self.method.initiator_signs else params.ecdh_curve
        )
        credential = self._resolve_peer_credential(decoded.id_cred_i, expected_curve)
        if self.method.initiator_signs:
            prk_4e3m = self._prk_3e2m
        else:
            salt_4e3m = edhoc_kdf(crypto, self._prk_3e2m, key_schedule.SALT_4E3M, th_3, 32)
            g_iy = crypto.ecdh(params.ecdh_curve, self._y, credential.public_key)
            prk_4e3m = crypto.hkdf_extract(salt_4e3m, g_iy)
            self._note("SALT_4e3m", salt_4e3m)
            self._note("G_IY", g_iy)
        ead_3 = self._encode_ead(decoded.ead)
        context_3 = key_schedule.mac_context(
            None, decoded.id_cred_i.encoded, th_3, credential.encoded, ead_3
        )
        mac_length_3 = 32 if self.method.initiator_signs else params.mac_length
        mac_3 = edhoc_kdf(crypto, prk_4e3m, key_schedule.MAC_3, context_3, mac_length_3)
        if self.method.initiator_signs:
            to_be_signed = key_schedule.sig_structure(
                decoded.id_cred_i.encoded, th_3, credential.encoded, ead_3, mac_3
            )
            self._note("Message to be signed 3", to_be_signed)
            crypto.verify(
                params.signature, credential.public_key, to_be_signed, decoded.signature_or_mac_3
            )
        elif not hmac.compare_digest(mac_3, decoded.signature_or_mac_3):
            raise AuthenticationFailedError("MAC_3 does not verify")
        th_4 = key_schedule.th_next(crypto, th_3, plaintext_3, credential.encoded)
        self._prk_4e3m = prk_4e3m
        self._th_4 = th_4
        self._set_prk_out(edhoc_kdf(crypto, prk_4e3m, key_schedule.PRK_OUT, th_4, 32))
        del self._y
        self._note("context_3", context_3)
        self._note("PRK_4e3m", prk_4e3m)
        self._note("MAC_3", mac_3)
        self._note("TH_4", th_4)
        self.peer_credential = credential
        return [
            Message3Received(credential, ead),
            HandshakeCompleted(self.method, self.suite, self.c_i, self.c_r, credential),
        ]

    # -- message_4 (§5.5.2) --

    def message_4(self, ead: Sequence[EadItem] = ()) -> bytes:
        """Compose the optional message_4 (key confirmation for the Initiator)."""
        return self._step(Input.SEND_MESSAGE_4, lambda: self._compose_message_4(ead))

    def _compose_message_4(self, ead: Sequence[EadItem]) -> bytes:
        assert self.suite is not None
        params = self.suite.parameters
        crypto = self._crypto
        k_4 = edhoc_kdf(crypto, self._prk_4e3m, key_schedule.K_4, self._th_4, params.key_length)
        iv_4 = edhoc_kdf(crypto, self._prk_4e3m, key_schedule.IV_4, self._th_4, params.iv_length)
        a_4 = key_schedule.enc_structure(self._th_4)
        plaintext_4 = self._encode_ead(ead)
        ciphertext_4 = crypto.encrypt(params, k_4, iv_4, a_4, plaintext_4)
        message_4 = cbor.encode_bstr(ciphertext_4)
        for name, value in (
            ("K_4", k_4),
            ("IV_4", iv_4),
            ("A_4", a_4),
            ("PLAINTEXT_4", plaintext_4),
            ("CIPHERTEXT_4", ciphertext_4),
            ("message_4", message_4),
        ):
            self._note(name, value)
        return message_4
