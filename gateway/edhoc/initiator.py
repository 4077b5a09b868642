"""The EDHOC Initiator (RFC 9528 §5.2.2, §5.3.3, §5.4.2, §5.5.3), sans-IO.

Theory of operation: the Initiator sends message_1 with its ephemeral key G_X and its cipher suite
preference (§5.2.2), then receives message_2, derives PRK_2e from G_XY to decrypt PLAINTEXT_2, looks
up the Responder's credential from ID_CRED_R and verifies Signature_or_MAC_2 (§5.3.3). message_3
authenticates the Initiator under the AEAD key K_3 (§5.4.2); PRK_out is then known and the exporter
works. A Responder may answer message_1 with error code 2 (§6.3): :meth:`Initiator.retry` builds the
next attempt with the suite chosen from SUITES_R, keeping the order of preference fixed (§6.3.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from gateway.edhoc import cbor, key_schedule
from gateway.edhoc._endpoint import Endpoint, EndpointOptions
from gateway.edhoc.credentials import Credential, CredentialLookup
from gateway.edhoc.errors import (
    CipherSuiteRejectedError,
    LocalEdhocError,
    MessageDecodeError,
)
from gateway.edhoc.events import Message2Received, Message4Received
from gateway.edhoc.key_schedule import MacContext
from gateway.edhoc.messages import (
    EadItem,
    Message1,
    decode_plaintext_2_untrusted,
    decode_plaintext_4_untrusted,
    decode_single_bstr_untrusted,
    encode_identifier,
    encode_plaintext,
)
from gateway.edhoc.state import Input, Role
from gateway.edhoc.suites import CipherSuite, Method


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
        **options: Unpack[EndpointOptions],
    ) -> None:
        super().__init__(credential=credential, credential_lookup=credential_lookup, **options)
        preference = self._checked_suites(suites)
        selected = int(selected_suite) if selected_suite is not None else preference[0]
        if selected not in preference:
            raise LocalEdhocError("the selected suite must be one of the suites")
        self._preference = preference
        self.method = Method(method)
        self.suite = CipherSuite(selected)
        self.c_i = bytes(c_i)
        self.c_r: bytes | None = None
        params = self.suite.parameters
        own_curve = params.authentication_curve(self.method.initiator_signs)
        self._credential = self._own_credential_for(own_curve)

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
                    credential_lookup=self._lookup,
                    credential_transfer=self._transfer,
                    known_ead_labels=self._known_ead_labels,
                    crypto=self._crypto,
                    max_message_size=self._max_message_size,
                    max_ead_items=self._max_ead_items,
                )
        raise LocalEdhocError("no cipher suite in common with the Responder")

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
        assert self.method is not None
        self._check_received(data)
        schedule = self._schedule
        params = self._params
        g_y_ciphertext_2 = decode_single_bstr_untrusted(data, "message_2")
        key_length = params.public_key_length
        if len(g_y_ciphertext_2) <= key_length:
            raise MessageDecodeError("message_2 too short for G_Y and CIPHERTEXT_2")
        g_y, ciphertext_2 = g_y_ciphertext_2[:key_length], g_y_ciphertext_2[key_length:]
        g_xy = self._crypto.ecdh(params.ecdh_curve, self._x, g_y)
        th_2, prk_2e = schedule.prk_2e(g_y, self._message_1, g_xy)
        keystream_2 = schedule.keystream_2(prk_2e, th_2, len(ciphertext_2))
        plaintext_2 = key_schedule.xor(ciphertext_2, keystream_2)
        self._note("PLAINTEXT_2", plaintext_2)
        decoded = decode_plaintext_2_untrusted(plaintext_2, max_ead_items=self._max_ead_items)
        ead = self._check_ead(decoded.ead)
        if decoded.c_r == self.c_i:
            raise MessageDecodeError("C_R equals C_I")
        expected_curve = params.authentication_curve(self.method.responder_signs)
        credential = self._resolve_peer_credential(decoded.id_cred_r, expected_curve)
        prk_3e2m = schedule.prk_3e2m(prk_2e, th_2, self._x, credential.public_key)
        context_2 = MacContext(
            decoded.id_cred_r.encoded,
            th_2,
            credential.encoded,
            self._encode_ead(decoded.ead),
            c_r=encode_identifier(decoded.c_r),
        )
        schedule.check_signature_or_mac_2(
            prk_3e2m, context_2, credential.public_key, decoded.signature_or_mac_2
        )
        self._g_y = g_y
        self._prk_3e2m = prk_3e2m
        del self._x  # the ephemeral key has done its work (G_XY, G_RX)
        self._crypto.forget_keys()
        self._th_3 = schedule.transcript("TH_3", th_2, plaintext_2, credential.encoded)
        self.c_r = decoded.c_r
        self.peer_credential = credential
        return [Message2Received(decoded.c_r, credential, ead)]

    # -- message_3 (§5.4.2) --

    def message_3(self, ead: Sequence[EadItem] = ()) -> bytes:
        """Compose message_3; afterwards the exporter works."""
        return self._step(Input.SEND_MESSAGE_3, lambda: self._compose_message_3(ead))

    def _compose_message_3(self, ead: Sequence[EadItem]) -> bytes:
        schedule = self._schedule
        own = self._credential
        assert own.private_key is not None
        th_3 = self._th_3
        prk_4e3m = schedule.prk_4e3m(self._prk_3e2m, th_3, own.private_key, self._g_y)
        id_cred_i = own.id_cred(self._transfer)
        ead_3 = self._encode_ead(ead)
        context_3 = MacContext(id_cred_i, th_3, own.encoded, ead_3)
        signature_or_mac_3 = schedule.signature_or_mac_3(prk_4e3m, context_3, own.private_key)
        plaintext_3 = encode_plaintext(id_cred_i, own.kid, signature_or_mac_3, ead_3)
        ciphertext_3 = schedule.aead_3(self._prk_3e2m, th_3).encrypt(plaintext_3)
        message_3 = cbor.encode_bstr(ciphertext_3)
        self._prk_4e3m = prk_4e3m
        self._th_4 = schedule.transcript("TH_4", th_3, plaintext_3, own.encoded)
        self._set_prk_out(schedule.prk_out(prk_4e3m, self._th_4))
        self._note("PLAINTEXT_3", plaintext_3)
        self._note("CIPHERTEXT_3", ciphertext_3)
        self._note("message_3", message_3)
        return message_3

    # -- message_4 (§5.5.3) --

    def receive_message_4(self, data: bytes) -> list[Message4Received]:
        """Process the optional message_4: key confirmation from the Responder."""
        return self._step(Input.RECEIVE_MESSAGE_4, lambda: self._process_message_4(data))

    def _process_message_4(self, data: bytes) -> list[Message4Received]:
        self._check_received(data)
        ciphertext_4 = decode_single_bstr_untrusted(data, "message_4")
        plaintext_4 = self._schedule.aead_4(self._prk_4e3m, self._th_4).decrypt(ciphertext_4)
        self._note("CIPHERTEXT_4", ciphertext_4)
        self._note("PLAINTEXT_4", plaintext_4)
        ead = decode_plaintext_4_untrusted(plaintext_4, max_ead_items=self._max_ead_items)
        return [Message4Received(self._check_ead(ead))]
