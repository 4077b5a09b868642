"""The EDHOC Initiator (RFC 9528 §5.2.2, §5.3.3, §5.4.2, §5.5.3), sans-IO.

Theory of operation: the Initiator sends message_1 with its ephemeral key G_X and its cipher suite
preference (§5.2.2), then receives message_2, derives PRK_2e from G_XY to decrypt PLAINTEXT_2, looks
up the Responder's credential from ID_CRED_R and verifies Signature_or_MAC_2 (§5.3.3). message_3
authenticates the Initiator under the AEAD key K_3 (§5.4.2); PRK_out is then known and the exporter
works. A Responder may answer message_1 with error code 2 (§6.3): :meth:`Initiator.retry` builds the
next attempt with the suite chosen from SUITES_R, keeping the order of preference fixed (§6.3.1).
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Sequence
from typing import TypedDict

from gateway.edhoc import cbor, key_schedule
from gateway.edhoc._endpoint import (
    DEFAULT_MAX_MESSAGE_SIZE,
    Endpoint,
    Injection,
)
from gateway.edhoc.credentials import Credential, CredentialLookup, CredentialTransfer
from gateway.edhoc.crypto import Crypto
from gateway.edhoc.errors import (
    AuthenticationFailedError,
    CipherSuiteRejectedError,
    LocalProtocolError,
    MessageDecodeError,
)
from gateway.edhoc.events import Message2Received, Message4Received
from gateway.edhoc.key_schedule import edhoc_kdf
from gateway.edhoc.messages import (
    DEFAULT_MAX_EAD_ITEMS,
    EadItem,
    Message1,
    decode_plaintext_2_untrusted,
    decode_plaintext_4_untrusted,
    decode_single_bstr_untrusted,
    encode_id_cred_compact,
    encode_identifier,
    is_error_message,
)
from gateway.edhoc.state import Input, Role
from gateway.edhoc.suites import SUPPORTED_SUITES, CipherSuite, Method


class _RetryConfig(TypedDict):
    """What a retried Initiator (after error code 2) keeps from the first one."""

    credential_lookup: CredentialLookup
    credential_transfer: CredentialTransfer
    known_ead_labels: Collection[int]
    max_message_size: int
    max_ead_items: int


class Initiator(Endpoint):
    """One EDHOC session as Initiator: bytes in, bytes and events out."""

    role = Role.INITIATOR

    def __init__(
        self,
        *,
        method: Method,
        suites: Sequence[CipherSuite | int],
        c_i: bytes,
        credential: Credential | Sequence[Credential],
        credential_lookup: CredentialLookup,
        selected_suite: CipherSuite | int | None = None,
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
        preference = [int(s) for s in suites]
        if not preference or any(s not in SUPPORTED_SUITES for s in preference):
            raise LocalProtocolError(f"suites must be a non-empty subset of {SUPPORTED_SUITES}")
        selected = int(selected_suite) if selected_suite is not None else preference[0]
        if selected not in preference:
            raise LocalProtocolError("the selected suite must be one of the suites")
        self._preference = preference
        self.method = Method(method)
        self.suite = CipherSuite(selected)
        self.c_i = bytes(c_i)
        self.c_r: bytes | None = None
        params = self.suite.parameters
        own_curve = params.signature_curve if self.method.initiator_signs else params.ecdh_curve
        self._credential = self._own_credential_for(own_curve)
        self._config: _RetryConfig = {
            "credential_lookup": credential_lookup,
            "credential_transfer": credential_transfer,
            "known_ead_labels": known_ead_labels,
            "max_message_size": max_message_size,
            "max_ead_items": max_ead_items,
        }

    def retry(self, rejection: CipherSuiteRejectedError, *, c_i: bytes | None = None) -> Initiator:
        """The next Initiator after error code 2: the most preferred suite found in SUITES_R.

        SUITES_I keeps every suite preferred to the new choice (RFC 9528 §5.2.2, §6.3.1).
        """
        for suite in self._preference:
            if suite in rejection.suites_r:
                return Initiator(
                    method=self.method if self.method is not None else Method(0),
                    suites=self._preference,
                    selected_suite=suite,
                    c_i=self.c_i if c_i is None else c_i,
                    credential=self._own_credentials,
                    crypto=self._crypto,
                    **self._config,
                )
        raise LocalProtocolError("no cipher suite in common with the Responder")

    # -- message_1 (§5.2.2) --

    def message_1(self, ead: Sequence[EadItem] = ()) -> bytes:
        """Compose message_1 with a fresh ephemeral key."""
        return self._step(Input.SEND_MESSAGE_1, lambda: self._compose_message_1(ead))

    def _compose_message_1(self, ead: Sequence[EadItem]) -> bytes:
        assert self.suite is not None
        assert self.method is not None
        curve = self.suite.parameters.ecdh_curve
        if self._injection.ephemeral_private_key is not None:
            self._x = self._injection.ephemeral_private_key
            self._g_x = self._crypto.ephemeral_public_key(curve, self._x)
        else:
            self._x, self._g_x = self._crypto.generate_key_pair(curve)
        suites_i = self._injection.suites_i
        if suites_i is None:
            suites_i = self._preference[: self._preference.index(self.suite) + 1]
        self._encode_ead(ead)
        message = Message1(self.method, tuple(suites_i), self._g_x, self.c_i, tuple(ead)).encode()
        self._message_1 = message
        self._note("G_X", self._g_x)
        self._note("message_1", message)
        return message

    # -- message_2 (§5.3.3) --

    def receive_message_2(self, data: bytes) -> list[Message2Received]:
        """Process message_2 (or an error message answering message_1)."""
        return self._step(Input.RECEIVE_MESSAGE_2, lambda: self._process_message_2(data))

    def _process_message_2(self, data: bytes) -> list[Message2Received]:
        assert self.suite is not None
        assert self.method is not None
        self._check_size(data)
        if is_error_message(data):
            self._raise_peer_error(data)
        params = self.suite.parameters
        crypto = self._crypto
        g_y_ciphertext_2 = decode_single_bstr_untrusted(data, "message_2")
        key_length = params.public_key_length
        if len(g_y_ciphertext_2) <= key_length:
            raise MessageDecodeError("message_2 too short for G_Y and CIPHERTEXT_2")
        g_y, ciphertext_2 = g_y_ciphertext_2[:key_length], g_y_ciphertext_2[key_length:]
        g_xy = crypto.ecdh(params.ecdh_curve, self._x, g_y)
        th_2 = key_schedule.th_2(crypto, g_y, self._message_1)
        prk_2e = crypto.hkdf_extract(th_2, g_xy)
        keystream_2 = edhoc_kdf(crypto, prk_2e, key_schedule.KEYSTREAM_2, th_2, len(ciphertext_2))
        plaintext_2 = key_schedule.xor(ciphertext_2, keystream_2)
        self._note("TH_2", th_2)
        self._note("G_XY", g_xy)
        self._note("PRK_2e", prk_2e)
        self._note("KEYSTREAM_2", keystream_2)
        self._note("PLAINTEXT_2", plaintext_2)
        decoded = decode_plaintext_2_untrusted(plaintext_2, max_ead_items=self._max_ead_items)
        ead = self._check_ead(decoded.ead)
        if decoded.c_r == self.c_i:
            raise MessageDecodeError("C_R equals C_I")
        expected_curve = (
            params.signature_curve if self.method.responder_signs else params.ecdh_curve
        )
        credential = self._resolve_peer_credential(decoded.id_cred_r, expected_curve)
        if self.method.responder_signs:
            prk_3e2m = prk_2e
        else:
            salt_3e2m = edhoc_kdf(crypto, prk_2e, key_schedule.SALT_3E2M, th_2, 32)
            g_rx = crypto.ecdh(params.ecdh_curve, self._x, credential.public_key)
            prk_3e2m = crypto.hkdf_extract(salt_3e2m, g_rx)
            self._note("SALT_3e2m", salt_3e2m)
            self._note("G_RX", g_rx)
        ead_2 = self._encode_ead(decoded.ead)
        context_2 = key_schedule.mac_context(
            encode_identifier(decoded.c_r),
            decoded.id_cred_r.encoded,
            th_2,
            credential.encoded,
            ead_2,
        )
        mac_length_2 = 32 if self.method.responder_signs else params.mac_length
        mac_2 = edhoc_kdf(crypto, prk_3e2m, key_schedule.MAC_2, context_2, mac_length_2)
        self._note("G_Y", g_y)
        self._note("context_2", context_2)
        self._note("PRK_3e2m", prk_3e2m)
        self._note("MAC_2", mac_2)
        if self.method.responder_signs:
            to_be_signed = key_schedule.sig_structure(
                decoded.id_cred_r.encoded, th_2, credential.encoded, ead_2, mac_2
            )
            self._note("Message to be signed 2", to_be_signed)
            crypto.verify(
                params.signature, credential.public_key, to_be_signed, decoded.signature_or_mac_2
            )
        elif not hmac.compare_digest(mac_2, decoded.signature_or_mac_2):
            raise AuthenticationFailedError("MAC_2 does not verify")
        self._g_y = g_y
        self._prk_3e2m = prk_3e2m
        del self._x  # the ephemeral key has done its work (G_XY, G_RX)
        self._th_3 = key_schedule.th_next(crypto, th_2, plaintext_2, credential.encoded)
        self._note("TH_3", self._th_3)
        self.c_r = decoded.c_r
        self.peer_credential = credential
        return [Message2Received(decoded.c_r, credential, ead)]

    # -- message_3 (§5.4.2) --

    def message_3(self, ead: Sequence[EadItem] = ()) -> bytes:
        """Compose message_3; afterwards the exporter works."""
        return self._step(Input.SEND_MESSAGE_3, lambda: self._compose_message_3(ead))

    def _compose_message_3(self, ead: Sequence[EadItem]) -> bytes:
        assert self.suite is not None
        assert self.method is not None
        params = self.suite.parameters
        crypto = self._crypto
        own = self._credential
        assert own.private_key is not None
        th_3 = self._th_3
        if self.method.initiator_signs:
            prk_4e3m = self._prk_3e2m
        else:
            salt_4e3m = edhoc_kdf(crypto, self._prk_3e2m, key_schedule.SALT_4E3M, th_3, 32)
            g_iy = crypto.ecdh(params.ecdh_curve, own.private_key, self._g_y)
            prk_4e3m = crypto.hkdf_extract(salt_4e3m, g_iy)
            self._note("SALT_4e3m", salt_4e3m)
            self._note("G_IY", g_iy)
        id_cred_i = own.id_cred(self._transfer)
        ead_3 = self._encode_ead(ead)
        context_3 = key_schedule.mac_context(None, id_cred_i, th_3, own.encoded, ead_3)
        mac_length_3 = 32 if self.method.initiator_signs else params.mac_length
        mac_3 = edhoc_kdf(crypto, prk_4e3m, key_schedule.MAC_3, context_3, mac_length_3)
        if self.method.initiator_signs:
            to_be_signed = key_schedule.sig_structure(id_cred_i, th_3, own.encoded, ead_3, mac_3)
            self._note("Message to be signed 3", to_be_signed)
            signature_or_mac_3 = crypto.sign(params.signature, own.private_key, to_be_signed)
        else:
            signature_or_mac_3 = mac_3
        plaintext_3 = (
            encode_id_cred_compact(id_cred_i, own.kid)
            + cbor.encode_bstr(signature_or_mac_3)
            + ead_3
        )
        k_3 = edhoc_kdf(crypto, self._prk_3e2m, key_schedule.K_3, th_3, params.key_length)
        iv_3 = edhoc_kdf(crypto, self._prk_3e2m, key_schedule.IV_3, th_3, params.iv_length)
        a_3 = key_schedule.enc_structure(th_3)
        ciphertext_3 = crypto.encrypt(params, k_3, iv_3, a_3, plaintext_3)
        message_3 = cbor.encode_bstr(ciphertext_3)
        th_4 = key_schedule.th_next(crypto, th_3, plaintext_3, own.encoded)
        self._prk_4e3m = prk_4e3m
        self._th_4 = th_4
        self._set_prk_out(edhoc_kdf(crypto, prk_4e3m, key_schedule.PRK_OUT, th_4, 32))
        for name, value in (
            ("context_3", context_3),
            ("PRK_4e3m", prk_4e3m),
            ("MAC_3", mac_3),
            ("Signature_or_MAC_3", signature_or_mac_3),
            ("PLAINTEXT_3", plaintext_3),
            ("K_3", k_3),
            ("IV_3", iv_3),
            ("A_3", a_3),
            ("CIPHERTEXT_3", ciphertext_3),
            ("message_3", message_3),
            ("TH_4", th_4),
        ):
            self._note(name, value)
        return message_3

    # -- message_4 (§5.5.3) --

    def receive_message_4(self, data: bytes) -> list[Message4Received]:
        """Process the optional message_4: key confirmation from the Responder."""
        return self._step(Input.RECEIVE_MESSAGE_4, lambda: self._process_message_4(data))

    def _process_message_4(self, data: bytes) -> list[Message4Received]:
        assert self.suite is not None
        self._check_size(data)
        if is_error_message(data):
            self._raise_peer_error(data)
        params = self.suite.parameters
        crypto = self._crypto
        ciphertext_4 = decode_single_bstr_untrusted(data, "message_4")
        k_4 = edhoc_kdf(crypto, self._prk_4e3m, key_schedule.K_4, self._th_4, params.key_length)
        iv_4 = edhoc_kdf(crypto, self._prk_4e3m, key_schedule.IV_4, self._th_4, params.iv_length)
        a_4 = key_schedule.enc_structure(self._th_4)
        plaintext_4 = crypto.decrypt(params, k_4, iv_4, a_4, ciphertext_4)
        for name, value in (
            ("K_4", k_4),
            ("IV_4", iv_4),
            ("A_4", a_4),
            ("CIPHERTEXT_4", ciphertext_4),
            ("PLAINTEXT_4", plaintext_4),
        ):
            self._note(name, value)
        ead = decode_plaintext_4_untrusted(plaintext_4, max_ead_items=self._max_ead_items)
        return [Message4Received(self._check_ead(ead))]
