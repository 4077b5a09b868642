"""Stream negotiation of the XMPP client: features, STARTTLS, SASL, bind, XEP-0198 enable/resume.

Theory of operation.  :class:`NegotiatingStream` is the part of
:class:`~gateway.xmpp.client.XmppClient` that turns a fresh TCP stream into a session
(RFC 6120 §4.3, §5, §6, §7): it writes our stream headers, reads ``<stream:features/>``
(:func:`parse_features_untrusted`) and takes one step per features element, each a
:data:`~gateway.xmpp.client_state.TRANSITIONS` input: STARTTLS first (the stream must be
TLS-protected, RFC 6120 §5.3.1, unless ``allow_plaintext`` is set *and* the adapter says the peer
is on loopback); then SASL, SCRAM-SHA-256 > SCRAM-SHA-1 > PLAIN, PLAIN only over TLS
(RFC 6120 §13.8), where a SCRAM server must prove knowledge of the password (RFC 5802 §3
ServerSignature) before ``<success/>`` counts, and a stored SCRAM credential
(``ClientConfig.scram_credential``) answers in place of the password, its own SCRAM variant
first; then ``<resume/>`` of a previous session (XEP-0198 §5) or resource binding
(RFC 6120 §7) followed by ``<enable resume='true'/>``.
When the session is up it calls :meth:`NegotiatingStream._session_ready`, which the client
facade implements.

A SCRAM key derivation can be deferred (``defer_key_derivation``): the challenge becomes a
:class:`~gateway.xmpp.events.KeyDerivationRequested` event, the adapter runs the PBKDF2 off the
event loop and hands the key back with :meth:`NegotiatingStream.key_derived`.  After
``<success/>``, :meth:`NegotiatingStream.scram_credential` gives what the exchange proved.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets
import xml.etree.ElementTree as ET
from typing import Final, Self

from gateway.xmpp import events as ev
from gateway.xmpp.client_state import ClientInput, ClientState, next_state
from gateway.xmpp.errors import (
    AuthenticationFailed,
    LocalXmppError,
    RemoteXmppError,
    StanzaError,
    StreamCondition,
    StreamError,
)
from gateway.xmpp.jid import Jid, JidError
from gateway.xmpp.parser import DEFAULT_MAX_DEPTH, DEFAULT_MAX_STANZA_SIZE, XmlStreamParser
from gateway.xmpp.sasl import (
    DEFAULT_MAX_ITERATIONS,
    KeyDerivation,
    ScramClient,
    ScramCredential,
    ScramState,
    plain_initial_response,
    select_mechanism,
)
from gateway.xmpp.serializer import serialize, stream_header
from gateway.xmpp.stanzas import (
    BIND_NS,
    CLIENT_NS,
    CSI_NS,
    LIMITS_NS,
    PREAPPROVAL_NS,
    SASL_NS,
    TLS_NS,
)
from gateway.xmpp.stream_management import (
    DEFAULT_MAX_UNACKNOWLEDGED,
    SM_NS,
    ResumptionToken,
    StreamManagement,
)
from gateway.xmpp.timers import (
    DEFAULT_ACK_TIMEOUT,
    DEFAULT_IQ_TIMEOUT,
    DEFAULT_KEEPALIVE_INTERVAL,
    DEFAULT_KEEPALIVE_TIMEOUT,
    DEFAULT_NEGOTIATION_TIMEOUT,
)

__all__ = [
    "DEFAULT_MAX_OUTBOUND_STANZA_SIZE",
    "ClientConfig",
    "EncryptionRequiredError",
    "Features",
    "FeaturesMissingError",
    "NegotiatingStream",
    "OutputBuffer",
    "parse_features_untrusted",
]

# The largest stanza we send unless the server advertises less (XEP-0478): the default c2s limit
# of Prosody (c2s_stanza_size_limit) and ejabberd (max_stanza_size).  RFC 6120 §13.12 promises only
# 10,000 bytes; a deployment facing stricter servers lowers this.
DEFAULT_MAX_OUTBOUND_STANZA_SIZE: Final = 256 * 1024


class EncryptionRequiredError(RemoteXmppError):
    """The server offers no STARTTLS and plaintext is not allowed here (RFC 6120 §5.3.1)."""


class FeaturesMissingError(RemoteXmppError):
    """The server sent an empty ``<stream:features/>`` where negotiation needs a feature.

    A server that is starting up or misconfigured for a moment does this; it is not a refusal of
    our account, so the session retries later rather than stopping.
    """


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """One account's upstream settings.  ``password`` never appears in reprs or logs.

    The client logs in from ``password``, from a stored ``scram_credential`` (RFC 5802
    SaltedPassword with its salt, iteration count and hash: no PBKDF2, and no password at rest),
    or from both (the credential first; the password if the server has re-salted the account).
    A credential alone whose salt the server no longer uses fails the log-in with
    :class:`~gateway.xmpp.sasl.StaleScramCredential`.
    """

    jid: Jid
    password: str | None = dataclasses.field(default=None, repr=False)
    resource: str | None = None  # None: the server picks one (RFC 6120 §7.6.2.1)
    allow_plaintext: bool = False  # only honoured on loopback
    lang: str | None = "en"
    stream_management: bool = True
    resend_after_failed_resumption: bool = True
    # XEP-0198 h counts an inbound stanza only once the application acknowledges it (and has
    # released the count): see XmppClient.acknowledge_inbound.
    defer_inbound_acks: bool = False
    iq_timeout: float = DEFAULT_IQ_TIMEOUT
    keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL
    keepalive_timeout: float = DEFAULT_KEEPALIVE_TIMEOUT
    negotiation_timeout: float = DEFAULT_NEGOTIATION_TIMEOUT
    # Our stanzas unacknowledged this long after our <r/>: the connection is dead (see timers).
    ack_timeout: float = DEFAULT_ACK_TIMEOUT
    max_stanza_size: int = DEFAULT_MAX_STANZA_SIZE
    max_depth: int = DEFAULT_MAX_DEPTH
    max_unacknowledged: int = DEFAULT_MAX_UNACKNOWLEDGED
    max_outbound_stanza_size: int = DEFAULT_MAX_OUTBOUND_STANZA_SIZE
    max_scram_iterations: int = DEFAULT_MAX_ITERATIONS  # see gateway.xmpp.sasl for the reason
    # XEP-0030 §3.1 identity we announce: the gateway is a client acting for a device.
    disco_identity: tuple[str, str, str] = ("client", "phone", "trio IMPP gateway")
    scram_credential: ScramCredential | None = None  # its repr hides the SaltedPassword

    def __post_init__(self) -> None:
        if self.password is None and self.scram_credential is None:
            raise LocalXmppError("ClientConfig needs a password or a scram_credential")


@dataclasses.dataclass
class Features:
    """What one ``<stream:features/>`` offered."""

    starttls: bool = False
    mechanisms: tuple[str, ...] = ()
    bind: bool = False
    stream_management: bool = False
    csi: bool = False
    preapproval: bool = False
    max_bytes: int | None = None  # XEP-0478


def _q(local: str, namespace: str = CLIENT_NS) -> str:
    return f"{{{namespace}}}{local}"


def parse_features_untrusted(features_element: ET.Element) -> Features:
    """Read ``<stream:features/>`` (RFC 6120 §4.3.2); unknown features are ignored."""
    features = Features()
    for child in features_element:
        if child.tag == _q("starttls", TLS_NS):
            features.starttls = True
        elif child.tag == _q("mechanisms", SASL_NS):
            features.mechanisms = tuple(
                (mechanism.text or "").strip()
                for mechanism in child.findall(_q("mechanism", SASL_NS))
            )
        elif child.tag == _q("bind", BIND_NS):
            features.bind = True
        elif child.tag == _q("sm", SM_NS):
            features.stream_management = True
        elif child.tag == _q("csi", CSI_NS):
            features.csi = True
        elif child.tag == _q("sub", PREAPPROVAL_NS):
            features.preapproval = True
        elif child.tag == _q("limits", LIMITS_NS):
            features.max_bytes = _stream_limit_untrusted(child.findtext(_q("max-bytes", LIMITS_NS)))
    return features


class OutputBuffer:
    """The bytes the client has to write, remembering where each appended element ends.

    Every ``+=`` appends one whole header, element or close tag, so these ends are where a write
    may be cut without cutting an element: see :meth:`XmppClient.data_to_send_pieces`.
    """

    def __init__(self) -> None:
        self._data = bytearray()
        self.ends: list[int] = []

    def __iadd__(self, data: bytes) -> Self:
        self._data += data
        self.ends.append(len(self._data))
        return self

    def __bytes__(self) -> bytes:
        return bytes(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        """Forget what was taken for writing."""
        self._data.clear()
        self.ends.clear()


class NegotiatingStream:
    """One client stream from its first header to an established session; see the module doc.

    Holds what the whole stream shares (state, parser, output buffer, stream management, the
    outbox of stanzas waiting for the session) and the negotiation steps.
    """

    def __init__(
        self,
        config: ClientConfig,
        *,
        resume: ResumptionToken | None,
        defer_key_derivation: bool,
        id_prefix: str | None,
        client_nonce: str | None,
    ) -> None:
        self.config = config
        self.state = ClientState.IDLE
        self.jid: Jid = config.jid
        self.tls_active = False
        self.authenticated = False
        self.features = Features()
        self._resume = resume
        self._defer_key_derivation = defer_key_derivation
        self._pending_derivation: KeyDerivation | None = None
        self._server_max_bytes: int | None = None
        self._client_nonce = client_nonce
        self._id_prefix = id_prefix if id_prefix is not None else secrets.token_hex(4) + "-"
        self._id_counter = 0
        self._parser = XmlStreamParser(
            max_stanza_size=config.max_stanza_size,
            max_depth=config.max_depth,
            content_namespaces=frozenset({CLIENT_NS}),
        )
        self._output = OutputBuffer()
        self._outbox: list[ET.Element] = []
        self._sm = StreamManagement(max_unacknowledged=config.max_unacknowledged)
        self._scram: ScramClient | None = None
        self._mechanism: str | None = None
        self._server_verified = False
        self._bind_id: str | None = None
        self._peer_is_loopback = False
        self._stanzas_sent = 0

    def next_id(self) -> str:
        """A fresh stanza id, unique within this client."""
        self._id_counter += 1
        return f"{self._id_prefix}{self._id_counter}"

    def scram_credential(self) -> ScramCredential | None:
        """What this stream's SCRAM log-in proved, once :class:`~gateway.xmpp.events.Authenticated`.

        Mechanism (``.mechanism``), salt, iteration count and SaltedPassword, after the server
        proved it knows them (``v=``): what enrollment stores instead of the password, and what a
        later :class:`ClientConfig` takes as ``scram_credential``.  None before authentication,
        after PLAIN, or if the exchange failed.
        """
        if self._scram is None or not self._server_verified:
            return None
        return self._scram.credential()

    def pending_key_derivation(self) -> KeyDerivation | None:
        """The SCRAM key derivation a :class:`~gateway.xmpp.events.KeyDerivationRequested` asked
        for, until :meth:`key_derived` is called."""
        return self._pending_derivation

    def key_derived(self, salted_password: bytes) -> None:
        """Continue SCRAM with the result of :meth:`pending_key_derivation` (its ``derive()``)."""
        if self._pending_derivation is None:
            raise LocalXmppError("no key derivation is pending")
        self._pending_derivation = None
        if self.state is not ClientState.AUTHENTICATING or self._scram is None:
            return  # the stream ended while the key was being derived
        final = self._scram.finish_server_first(salted_password)
        response = ET.Element(_q("response", SASL_NS))
        response.text = base64.b64encode(final).decode()
        self._output += serialize(response)

    def _session_ready(self, now: float, events: list[ev.Event], *, fresh: bool) -> None:
        """The session is up (``fresh``: not resumed); the client facade sends what waited."""
        raise NotImplementedError

    def _transition(self, event: ClientInput) -> None:
        self.state = next_state(self.state, event)

    def _send_header(self) -> None:
        self._output += stream_header(
            to=self.config.jid.domain,
            from_=str(self.config.jid.bare) if self.tls_active else None,
            lang=self.config.lang,
        )

    def _on_stream_opened(self, version: str | None) -> None:
        self._transition(ClientInput.STREAM_OPENED)
        if version is None or not version.startswith("1."):
            raise StreamError(StreamCondition.UNSUPPORTED_VERSION, "XMPP 1.0 is required")

    def _on_features(self, features_element: ET.Element, events: list[ev.Event]) -> None:
        features = parse_features_untrusted(features_element)
        self.features = features
        if features.max_bytes is not None:
            self._server_max_bytes = features.max_bytes
        if len(features_element) == 0:
            # Every stage needs something (STARTTLS, SASL, bind or resume): a transient state.
            raise FeaturesMissingError("the server offered no stream features")
        if not self.tls_active and not self.authenticated:
            if features.starttls:
                self._transition(ClientInput.STARTTLS_SENT)
                self._output += serialize(ET.Element(_q("starttls", TLS_NS)))
                return
            if not (self.config.allow_plaintext and self._peer_is_loopback):
                raise EncryptionRequiredError(
                    "the server does not offer STARTTLS (RFC 6120 §5.3.1)"
                )
        if not self.authenticated:
            self._start_sasl(features)
            return
        if self._resume is not None and not features.stream_management:
            # XEP-0198 §5: the new stream cannot resume; as with <failed/>, hand back what the
            # old one never had acknowledged, so that the fresh session sends it again.
            unacknowledged, self._resume = self._resume.unacknowledged, None
            events.append(ev.ResumptionFailed(unacknowledged))
            if self.config.resend_after_failed_resumption:
                self._outbox[:0] = unacknowledged
        if self._resume is not None and features.stream_management:
            self._sm.restore(self._resume)
            self._transition(ClientInput.RESUME_SENT)
            resume = ET.Element(
                _q("resume", SM_NS),
                {"previd": self._resume.session_id, "h": str(self._resume.inbound_handled)},
            )
            self._output += serialize(resume)
            return
        if not features.bind:
            raise StreamError(StreamCondition.UNSUPPORTED_FEATURE, "the server offers no bind")
        self._send_bind(ClientInput.BIND_SENT)

    def _on_tls_proceed(self, events: list[ev.Event]) -> None:
        self._transition(ClientInput.TLS_PROCEED)
        events.append(ev.TlsRequested())

    def _start_sasl(self, features: Features) -> None:
        credential = self.config.scram_credential
        password = self.config.password
        mechanism = select_mechanism(
            features.mechanisms,
            tls_active=self.tls_active,
            credential=credential,
            have_password=password is not None,
        )
        username = self.config.jid.local
        if username is None:
            raise LocalXmppError("the account JID has no localpart")
        if mechanism == "PLAIN":
            assert password is not None  # select_mechanism picks PLAIN only with a password
            initial = plain_initial_response(username, password)
        else:
            usable = (
                credential if credential is not None and credential.mechanism == mechanism else None
            )
            self._scram = ScramClient(
                mechanism,
                username,
                password,
                credential=usable,
                client_nonce=self._client_nonce,
                max_iterations=self.config.max_scram_iterations,
            )
            initial = self._scram.client_first()
        self._mechanism = mechanism
        self._transition(ClientInput.AUTH_SENT)
        auth = ET.Element(_q("auth", SASL_NS), {"mechanism": mechanism})
        auth.text = base64.b64encode(initial).decode("ascii")
        self._output += serialize(auth)

    def _on_sasl_challenge(self, element: ET.Element, events: list[ev.Event]) -> None:
        self._transition(ClientInput.SASL_CHALLENGE)
        payload = _sasl_payload_untrusted(element)
        response = ET.Element(_q("response", SASL_NS))
        if self._scram is None:
            raise AuthenticationFailed("unexpected challenge to PLAIN")
        if self._server_verified:
            raise AuthenticationFailed("a challenge after the server's final message")
        if self._pending_derivation is not None:
            raise AuthenticationFailed("a challenge before we answered the previous one")
        if self._scram.state is ScramState.FIRST_SENT:
            derivation = self._scram.begin_server_first(payload)
            if derivation is not None and self._defer_key_derivation:
                self._pending_derivation = derivation
                events.append(ev.KeyDerivationRequested(derivation.iterations))
                return  # key_derived() writes the response
            key = None if derivation is None else derivation.derive()
            response.text = base64.b64encode(self._scram.finish_server_first(key)).decode()
        else:
            self._scram.verify_server_final(payload)  # RFC 6120 §6.3.10 via a challenge
            self._server_verified = True
        self._output += serialize(response)

    def _on_sasl_success(self, element: ET.Element, events: list[ev.Event]) -> None:
        payload = _sasl_payload_untrusted(element)
        if self._scram is not None and not self._server_verified:
            if self._scram.state is not ScramState.FINAL_SENT:
                # RFC 5802 §3: success before our proof cannot carry a valid verifier.
                raise AuthenticationFailed("SASL success before the SCRAM exchange finished")
            self._scram.verify_server_final(payload)  # raises if absent or wrong
            self._server_verified = True
        self._transition(ClientInput.SASL_SUCCESS)
        self.authenticated = True
        self._parser.reset()  # RFC 6120 §6.4.6: the stream restarts
        self._send_header()
        events.append(ev.Authenticated(self._mechanism or ""))

    def _send_bind(self, step: ClientInput) -> None:
        """Request resource binding (RFC 6120 §7.6); ``step`` is the table input it takes."""
        self._bind_id = self.next_id()
        iq = ET.Element(_q("iq"), {"type": "set", "id": self._bind_id})
        bind = ET.SubElement(iq, _q("bind", BIND_NS))
        if self.config.resource is not None:
            ET.SubElement(bind, _q("resource", BIND_NS)).text = self.config.resource
        self._transition(step)
        self._output += serialize(iq)

    def _on_bind_result(self, iq: ET.Element, now: float, events: list[ev.Event]) -> None:
        if iq.get("id") != self._bind_id:
            raise StreamError(StreamCondition.POLICY_VIOLATION, "an iq before binding completed")
        if iq.get("type") == "error":
            raise StanzaError.from_element_untrusted(iq)
        jid_element = iq.find(f"{_q('bind', BIND_NS)}/{_q('jid', BIND_NS)}")
        if iq.get("type") != "result" or jid_element is None:
            raise StreamError(StreamCondition.INVALID_XML, "a bind result without a JID")
        try:
            bound = Jid.parse_untrusted((jid_element.text or "").strip())
        except JidError as exc:
            raise StreamError(StreamCondition.INVALID_XML, "the bound JID is invalid") from exc
        if bound.bare != self.config.jid.bare or bound.resource is None:
            raise StreamError(StreamCondition.INVALID_XML, "the server bound another account")
        self.jid = bound
        if self.config.stream_management and self.features.stream_management:
            self._transition(ClientInput.ENABLE_SENT)
            self._output += serialize(ET.Element(_q("enable", SM_NS), {"resume": "true"}))
            return
        self._transition(ClientInput.BOUND)
        events.append(ev.SessionEstablished(self.jid, False, False))
        self._session_ready(now, events, fresh=True)

    def _on_stream_management_answer(
        self, element: ET.Element, now: float, events: list[ev.Event]
    ) -> None:
        tag = element.tag
        resuming = self._resume is not None and self._sm.session_id == self._resume.session_id
        if tag == _q("enabled", SM_NS) and not resuming:
            self._transition(ClientInput.SM_ENABLED)
            self._sm.enable_untrusted(element)
            events.append(ev.SessionEstablished(self.jid, True, self._sm.resumable))
            self._session_ready(now, events, fresh=True)
        elif tag == _q("failed", SM_NS) and not resuming:
            self._transition(ClientInput.SM_ENABLE_FAILED)
            events.append(ev.SessionEstablished(self.jid, False, False))
            self._session_ready(now, events, fresh=True)
        elif tag == _q("resumed", SM_NS) and resuming:
            assert self._resume is not None  # for mypy: resuming implies it
            if element.get("previd") != self._resume.session_id:
                raise StreamError(StreamCondition.INVALID_XML, "resumed another session")
            self._transition(ClientInput.SM_RESUMED)
            self.jid = self._resume.jid
            acknowledged = self._sm.acknowledge_untrusted(element.get("h"))
            if acknowledged:
                events.append(acknowledged_event(acknowledged))
            resent = list(self._sm.unacknowledged)
            for stanza in resent:  # XEP-0198 §5: resend what the server did not handle
                self._output += serialize(stanza)
                self._stanzas_sent += 1
            self._resume = None
            events.append(ev.SessionResumed(self.jid, len(resent)))
            self._session_ready(now, events, fresh=False)
        elif tag == _q("failed", SM_NS) and resuming:
            handled = element.get("h")
            if handled is not None:
                acknowledged = self._sm.acknowledge_untrusted(handled)
                if acknowledged:
                    events.append(acknowledged_event(acknowledged))
            unacknowledged = self._sm.take_unacknowledged()
            self._sm.reset()
            self._resume = None
            events.append(ev.ResumptionFailed(unacknowledged))
            if self.config.resend_after_failed_resumption:
                self._outbox[:0] = unacknowledged
            if not self.features.bind:
                raise StreamError(StreamCondition.UNSUPPORTED_FEATURE, "the server offers no bind")
            self._send_bind(ClientInput.SM_RESUME_FAILED)
        else:
            raise StreamError(StreamCondition.UNSUPPORTED_STANZA_TYPE, "unexpected SM element")


def acknowledged_event(stanzas: list[ET.Element]) -> ev.StanzasAcknowledged:
    """The event for stanzas the server has acknowledged (XEP-0198 §4)."""
    return ev.StanzasAcknowledged(len(stanzas), tuple(stanza.get("id") for stanza in stanzas))


def _stream_limit_untrusted(text: str | None) -> int | None:
    """A XEP-0478 ``max-bytes`` value, or None if absent or not a plausible positive integer."""
    value = (text or "").strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 12 or int(value) == 0:
        return None
    return int(value)


def _sasl_payload_untrusted(element: ET.Element) -> bytes:
    """The base64 content of a SASL element (RFC 6120 §6.4.2: '=' is an empty payload)."""
    text = "".join((element.text or "").split())
    if text in ("", "="):
        return b""
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AuthenticationFailed("the server sent invalid base64 in SASL") from exc
