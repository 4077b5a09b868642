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

from collections.abc import Collection, Sequence
from typing import Unpack

from gateway.edhoc import cbor, key_schedule
from gateway.edhoc._endpoint import Endpoint, EndpointOptions
from gateway.edhoc.credentials import Credential, CredentialLookup
from gateway.edhoc.errors import (
    CipherSuiteMismatchError,
    LocalEdhocError,
    MessageDecodeError,
    UnsupportedMethodError,
)
from gateway.edhoc.events import HandshakeCompleted, Message1Received, Message3Received
from gateway.edhoc.key_schedule import MacContext
from gateway.edhoc.messages import (
    EadItem,
    decode_message_1_untrusted,
    decode_plaintext_3_untrusted,
    decode_single_bstr_untrusted,
    encode_identifier,
    encode_plaintext,
    wrong_suite_error,
)
from gateway.edhoc.state import Input, Role
from gateway.edhoc.suites import CipherSuite, Method


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
        **options: Unpack[EndpointOptions],
    ) -> None:
        super().__init__(credential=credential, credential_lookup=credential_lookup, **options)
        self._suites = self._checked_suites(suites)
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
        own_curve = params.authentication_curve(method.responder_signs)
        try:
            self._credential = self._own_credential_for(own_curve)
        except LocalEdhocError as exc:
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
        schedule = self._schedule
        own = self._credential
        assert own.private_key is not None
        th_2, prk_2e = schedule.prk_2e(self._g_y, self._message_1, self._g_xy)
        prk_3e2m = schedule.prk_3e2m(prk_2e, th_2, own.private_key, self._g_x)
        id_cred_r = own.id_cred(self._transfer)
        ead_2 = self._encode_ead(ead)
        c_r = encode_identifier(self.c_r)
        context_2 = MacContext(id_cred_r, th_2, own.encoded, ead_2, c_r=c_r)
        signature_or_mac_2 = schedule.signature_or_mac_2(prk_3e2m, context_2, own.private_key)
        plaintext_2 = encode_plaintext(id_cred_r, own.kid, signature_or_mac_2, ead_2, c_r=c_r)
        keystream_2 = schedule.keystream_2(prk_2e, th_2, len(plaintext_2))
        ciphertext_2 = key_schedule.xor(plaintext_2, keystream_2)
        message_2 = cbor.encode_bstr(self._g_y + ciphertext_2)
        self._prk_3e2m = prk_3e2m
        self._th_3 = schedule.transcript("TH_3", th_2, plaintext_2, own.encoded)
        del self._g_xy
        self._note("PLAINTEXT_2", plaintext_2)
        self._note("CIPHERTEXT_2", ciphertext_2)
        self._note("message_2", message_2)
        return message_2

    # -- message_3 (§5.4.3) --

    def receive_message_3(self, data: bytes) -> list[Message3Received | HandshakeCompleted]:
        """Process message_3; on success the handshake is complete."""
        return self._step(Input.RECEIVE_MESSAGE_3, lambda: self._process_message_3(data))

    def _process_message_3(self, data: bytes) -> list[Message3Received | HandshakeCompleted]:
        assert self.suite is not None
        assert self.method is not None
        assert self.c_i is not None
        self._check_received(data)
        schedule = self._schedule
        params = self._params
        th_3 = self._th_3
        ciphertext_3 = decode_single_bstr_untrusted(data, "message_3")
        plaintext_3 = schedule.aead_3(self._prk_3e2m, th_3).decrypt(ciphertext_3)
        self._note("CIPHERTEXT_3", ciphertext_3)
        self._note("PLAINTEXT_3", plaintext_3)
        decoded = decode_plaintext_3_untrusted(plaintext_3, max_ead_items=self._max_ead_items)
        ead = self._check_ead(decoded.ead)
        expected_curve = params.authentication_curve(self.method.initiator_signs)
        credential = self._resolve_peer_credential(decoded.id_cred_i, expected_curve)
        prk_4e3m = schedule.prk_4e3m(self._prk_3e2m, th_3, self._y, credential.public_key)
        context_3 = MacContext(
            decoded.id_cred_i.encoded, th_3, credential.encoded, self._encode_ead(decoded.ead)
        )
        schedule.check_signature_or_mac_3(
            prk_4e3m, context_3, credential.public_key, decoded.signature_or_mac_3
        )
        th_4 = schedule.transcript("TH_4", th_3, plaintext_3, credential.encoded)
        self._prk_4e3m = prk_4e3m
        self._th_4 = th_4
        self._set_prk_out(schedule.prk_out(prk_4e3m, th_4))
        del self._y
        self._crypto.forget_keys()
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
        plaintext_4 = self._encode_ead(ead)
        ciphertext_4 = self._schedule.aead_4(self._prk_4e3m, self._th_4).encrypt(plaintext_4)
        message_4 = cbor.encode_bstr(ciphertext_4)
        self._note("PLAINTEXT_4", plaintext_4)
        self._note("CIPHERTEXT_4", ciphertext_4)
        self._note("message_4", message_4)
        return message_4
