"""RFC 3923 ``<e2e/>``: signed CPIM/PIDF objects inside XMPP stanzas, out and in.

Theory of operation. Outbound (RFC 3923 §3.1, §4.1): the signed ``multipart/signed`` entity goes
as character data into ``<e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'/>`` (the RFC shows a CDATA
section; escaped character data is the same XML text), beside a plain ``<body/>`` so that clients
that do not know RFC 3923 still show the message (§7 case #1 lets them ignore ``<e2e/>``).

Inbound, :class:`E2eVerifier` turns a stanza into one compact :class:`VerificationResult`:
``NONE`` (no ``<e2e/>``), ``VERIFIED`` or ``FAILED`` with a :class:`VerificationFailure`. In order:

1. the entity is put back into canonical CRLF form (XML turned its CRLFs into LFs) and its CMS
   signature, digest and certificate path are verified against the trust store
   (:mod:`gateway.signing.smime`, :mod:`gateway.signing.cms`);
2. the sender's JID (``from``, resource ignored) must be named by the certificate, as an
   id-on-xmppAddr or ``im:``/``pres:`` URI (§6.3); so must the object's own sender (CPIM ``From``,
   PIDF ``entity``); if a recipient is given, a CPIM object must be addressed to it;
3. the object's timestamp (CPIM ``DateTime``, else the CMS signingTime; for PIDF the later of the
   signingTime and the latest tuple ``<timestamp>``) must be within five minutes of ``now`` (§6.9,
   first rule);
4. the same signature must not have been accepted before (replay), and the timestamp must be greater
   than any accepted from the same sender in the last ten minutes (§6.9, second rule);
5. (:meth:`E2eVerifier.verify_stanza`) a ``<message/>`` must carry a signed Message/CPIM and a
   ``<presence/>`` a signed PIDF, and a plain ``<body/>`` beside ``<e2e/>`` must be the signed
   text: the body is not signed, so VERIFIED must not vouch for a body somebody swapped in.

Only objects that pass every check are remembered, as §6.9 says. Remembered signatures are kept
until their timestamp leaves the window (a replay after that fails rule 3); when the bounded memory
is full of still-live entries the verifier fails closed (``replay-memory-full``) rather than forget.
Sans-IO: ``now`` is an argument; nothing here reads a clock or logs.
"""

from __future__ import annotations

import heapq
import xml.etree.ElementTree as ET
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field

from gateway.impp.address import ImppAddress
from gateway.impp.cpim import parse_cpim_untrusted
from gateway.impp.errors import ImppError
from gateway.impp.pidf import parse_pidf_untrusted
from gateway.signature_status import SignatureStatus
from gateway.signing.ca import certificate_addresses
from gateway.signing.cms import SignatureError, SignerTrustStore, VerificationFailure
from gateway.signing.smime import (
    DEFAULT_MAX_SIGNED_ENTITY_SIZE,
    VerifiedEntity,
    verify_multipart_signed_untrusted,
)

__all__ = [
    "DEFAULT_MAX_REMEMBERED_SIGNATURES",
    "DEFAULT_ORDER_MEMORY",
    "DEFAULT_TIMESTAMP_WINDOW",
    "E2E_ERROR_NAMESPACE",
    "E2E_NAMESPACE",
    "E2E_TAG",
    "E2eVerifier",
    "VerificationResult",
    "VerifierStatistics",
    "build_e2e_element",
    "find_e2e_untrusted",
]

E2E_NAMESPACE = "urn:ietf:params:xml:ns:xmpp-e2e"  # RFC 3923 §9
E2E_TAG = f"{{{E2E_NAMESPACE}}}e2e"
# RFC 3923 §7 application-specific conditions. The RFC's own examples write this namespace
# without ":ns:" (urn:ietf:params:xml:xmpp-e2e); we follow them for the error elements.
E2E_ERROR_NAMESPACE = "urn:ietf:params:xml:xmpp-e2e"

DEFAULT_TIMESTAMP_WINDOW = 300.0  # RFC 3923 §6.9: "within five minutes of the current time"
DEFAULT_ORDER_MEMORY = 600.0  # RFC 3923 §6.9: "any timestamp received in the last 10 minutes"
DEFAULT_MAX_REMEMBERED_SIGNATURES = 100_000  # ~330 signed stanzas/s sustained over the window
DEFAULT_MAX_REMEMBERED_SENDERS = 100_000  # senders whose last timestamp is kept

_TIMESTAMP_REASONS = frozenset(
    {
        VerificationFailure.MISSING_TIMESTAMP,
        VerificationFailure.OLD_TIMESTAMP,
        VerificationFailure.FUTURE_TIMESTAMP,
        VerificationFailure.DECREASING_TIMESTAMP,
        VerificationFailure.REPLAYED,
    }
)


@dataclass(frozen=True)
class VerificationResult:
    """The outcome of checking one inbound stanza: a status, and a reason when it failed.

    ``reason`` is a bounded label for logs and metrics; nothing here holds key material.
    ``entity`` is the verified signed entity (VERIFIED only), for callers that want the signed
    object rather than the stanza's plain children.
    """

    status: SignatureStatus
    reason: VerificationFailure | None = None
    signer: ImppAddress | None = None
    timestamp: float | None = None
    entity: VerifiedEntity | None = field(default=None, repr=False)

    @property
    def error_condition(self) -> tuple[str, str] | None:
        """The stanza error RFC 3923 §7 suggests: (defined condition, e2e condition), or None.

        Case #3 (timestamps) -> not-acceptable + bad-timestamp; case #4 (signature cannot be
        verified) -> not-acceptable + unverified-signature. Sending it is optional (MAY/SHOULD).
        """
        if self.status is not SignatureStatus.FAILED or self.reason is None:
            return None
        if self.reason in _TIMESTAMP_REASONS:
            return ("not-acceptable", "bad-timestamp")
        return ("not-acceptable", "unverified-signature")


@dataclass(frozen=True)
class VerifierStatistics:
    """A snapshot of an :class:`E2eVerifier`'s counters, for metrics."""

    verified: int
    unsigned: int
    failed: Mapping[str, int]
    remembered_signatures: int
    remembered_senders: int


def build_e2e_element(signed_entity: bytes) -> ET.Element:
    """``<e2e xmlns='urn:ietf:params:xml:ns:xmpp-e2e'>`` holding a signed entity (§3.1 step 3).

    The entity must be UTF-8 text (ours is: a CPIM or PIDF object and base64).
    """
    try:
        text = signed_entity.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SignatureError("a signed entity in <e2e/> must be UTF-8", remote=False) from exc
    element = ET.Element(E2E_TAG)
    element.text = text
    return element


def find_e2e_untrusted(
    stanza: ET.Element, *, max_size: int = DEFAULT_MAX_SIGNED_ENTITY_SIZE
) -> bytes | None:
    """The entity carried in a stanza's ``<e2e/>`` child, or None when there is none.

    Total: raises only :class:`SignatureError` (two ``<e2e/>`` children, child elements inside
    it, an entity above ``max_size``).
    """
    found = [child for child in stanza if child.tag == E2E_TAG]
    if not found:
        return None
    if len(found) > 1:
        raise SignatureError("more than one <e2e/> element")
    element = found[0]
    if len(element):
        raise SignatureError("<e2e/> must hold only character data")
    text = element.text or ""
    if not isinstance(text, str) or len(text) > max_size:
        raise SignatureError(
            "the <e2e/> content is too large", reason=VerificationFailure.TOO_LARGE
        )
    data = text.strip().encode("utf-8", errors="surrogatepass")
    if len(data) > max_size:
        raise SignatureError(
            "the <e2e/> content is too large", reason=VerificationFailure.TOO_LARGE
        )
    return data


class E2eVerifier:
    """Checks inbound ``<e2e/>`` signatures: trust, names, timestamp window, replay (§6.3, §6.9).

    One verifier serves a gateway; its memory of accepted signatures is what stops replays, so
    keep one instance for as long as the process runs.
    """

    def __init__(
        self,
        trust_store: SignerTrustStore,
        *,
        timestamp_window: float = DEFAULT_TIMESTAMP_WINDOW,
        order_memory: float = DEFAULT_ORDER_MEMORY,
        require_increasing: bool = True,
        max_remembered_signatures: int = DEFAULT_MAX_REMEMBERED_SIGNATURES,
        max_remembered_senders: int = DEFAULT_MAX_REMEMBERED_SENDERS,
        max_entity_size: int = DEFAULT_MAX_SIGNED_ENTITY_SIZE,
    ) -> None:
        self._trust_store = trust_store
        self._window = timestamp_window
        self._order_memory = order_memory
        self._require_increasing = require_increasing
        self._max_signatures = max_remembered_signatures
        self._max_senders = max_remembered_senders
        self._max_entity_size = max_entity_size
        self._seen: dict[bytes, float] = {}  # replay key -> forget after (timestamp + window)
        self._expiry: list[tuple[float, bytes]] = []  # heap over the same entries
        self._last: OrderedDict[str, tuple[float, float]] = OrderedDict()  # jid -> (ts, received)
        self._verified = 0
        self._unsigned = 0
        self._failed: Counter[str] = Counter()

    @property
    def trust_store(self) -> SignerTrustStore:
        """The trust anchors signatures are checked against."""
        return self._trust_store

    def replace_trust_store(self, trust_store: SignerTrustStore) -> None:
        """Use new trust anchors (after a CA rotation or a configuration reload)."""
        self._trust_store = trust_store

    def statistics(self) -> VerifierStatistics:
        """Counters by outcome and reason, and how much the verifier remembers."""
        return VerifierStatistics(
            self._verified, self._unsigned, dict(self._failed), len(self._seen), len(self._last)
        )

    def verify_stanza(
        self, stanza: ET.Element, *, now: float, recipient: ImppAddress | None = None
    ) -> VerificationResult:
        """Check a received ``<message/>`` or ``<presence/>``; never raises for bad input."""
        try:
            entity = find_e2e_untrusted(stanza, max_size=self._max_entity_size)
        except SignatureError as exc:
            return self._failure(exc.reason)
        if entity is None:
            self._unsigned += 1
            return VerificationResult(SignatureStatus.NONE)
        sender_text = stanza.get("from")
        if sender_text is None:
            return self._failure(VerificationFailure.MALFORMED)
        try:
            sender = ImppAddress.parse(sender_text)
        except ImppError:
            return self._failure(VerificationFailure.MALFORMED)
        kind = stanza.tag.rpartition("}")[2]
        bodies = [child for child in stanza if child.tag.rpartition("}")[2] == "body"]
        if kind not in _SIGNED_TYPE_OF_STANZA or len(bodies) > 1 or any(len(b) for b in bodies):
            return self._failure(VerificationFailure.CONTENT_MISMATCH)
        return self.verify_entity(
            entity,
            sender=sender,
            now=now,
            recipient=recipient,
            content_type=_SIGNED_TYPE_OF_STANZA[kind],
            plain_body=(bodies[0].text or "") if bodies else None,
        )

    def verify_entity(
        self,
        signed_entity: bytes,
        *,
        sender: ImppAddress,
        now: float,
        recipient: ImppAddress | None = None,
        content_type: str | None = None,
        plain_body: str | None = None,
    ) -> VerificationResult:
        """Check a signed ``multipart/signed`` entity said to come from ``sender``.

        ``content_type``, when given, is the media type the signed object must have (a
        ``<message/>`` carries Message/CPIM, a ``<presence/>`` PIDF). ``plain_body``, when
        given, is the text of the stanza's plain ``<body/>``: it must be the signed object's
        text, so that VERIFIED also covers the text a device is shown (else
        ``content-mismatch``).
        """
        self._forget_expired(now)
        try:
            verified = verify_multipart_signed_untrusted(
                signed_entity, self._trust_store, now=now, max_size=self._max_entity_size
            )
            _check_content_type(verified, content_type)
            timestamp = self._check_names_and_timestamp(verified, sender, recipient)
            if plain_body is not None:
                _check_plain_body(verified, plain_body)
        except SignatureError as exc:
            return self._failure(exc.reason)
        if timestamp is None:
            return self._failure(VerificationFailure.MISSING_TIMESTAMP)
        if timestamp < now - self._window:
            return self._failure(VerificationFailure.OLD_TIMESTAMP)
        if timestamp > now + self._window:
            return self._failure(VerificationFailure.FUTURE_TIMESTAMP)
        replay_key = verified.signer.replay_key
        if replay_key in self._seen:
            return self._failure(VerificationFailure.REPLAYED)
        sender_key = sender.jid  # full JID: each client keeps its own clock
        last = self._last.get(sender_key)
        if self._require_increasing and last is not None and timestamp <= last[0]:
            return self._failure(VerificationFailure.DECREASING_TIMESTAMP)
        if len(self._seen) >= self._max_signatures:
            return self._failure(VerificationFailure.REPLAY_MEMORY_FULL)
        self._remember(replay_key, timestamp, sender_key, now)
        self._verified += 1
        return VerificationResult(SignatureStatus.VERIFIED, None, sender.bare, timestamp, verified)

    # -- internals ---------------------------------------------------------------------

    def _failure(self, reason: VerificationFailure) -> VerificationResult:
        self._failed[reason.value] += 1
        return VerificationResult(SignatureStatus.FAILED, reason)

    def _check_names_and_timestamp(
        self, verified: VerifiedEntity, sender: ImppAddress, recipient: ImppAddress | None
    ) -> float | None:
        """Raise unless the certificate names the sender; return the object's timestamp."""
        named = certificate_addresses(verified.signer.certificate)
        if sender.bare not in named:
            raise SignatureError("the certificate does not name the sender", reason=_MISMATCH)
        timestamp = verified.signer.signing_time
        if verified.content_type == "message/cpim":
            try:
                message = parse_cpim_untrusted(verified.content, with_mime_headers=True)
                author = message.sender.address if message.sender is not None else None
                addressees = [a.address.bare for a in (*message.recipients, *message.cc)]
                moment = message.date_time
            except ImppError as exc:
                raise SignatureError("the signed Message/CPIM is malformed") from exc
            if author is not None and author.bare not in named:
                raise SignatureError("CPIM From is not the certificate's name", reason=_MISMATCH)
            if recipient is not None and recipient.bare not in addressees:
                raise SignatureError("the message is not addressed to us", reason=_MISMATCH)
            if moment is not None:
                timestamp = moment.timestamp()
        elif verified.content_type == "application/pidf+xml":
            entity, latest = _pidf_entity_and_timestamp(verified.body)
            if entity.bare not in named:
                raise SignatureError("PIDF entity is not the certificate's name", reason=_MISMATCH)
            # The later of the two signed times: the tuple <timestamp> has the sub-second
            # precision that ordering needs (the signingTime has whole seconds), but a tuple
            # may legitimately date an old status change, so it never makes an object older.
            if latest is not None and (timestamp is None or latest > timestamp):
                timestamp = latest
        return timestamp

    def _forget_expired(self, now: float) -> None:
        while self._expiry and self._expiry[0][0] < now:
            _, key = heapq.heappop(self._expiry)
            self._seen.pop(key, None)
        horizon = now - self._order_memory
        while self._last:
            oldest_key, (_, received) = next(iter(self._last.items()))
            if received >= horizon and len(self._last) <= self._max_senders:
                break
            del self._last[oldest_key]

    def _remember(self, replay_key: bytes, timestamp: float, sender_key: str, now: float) -> None:
        forget_after = timestamp + self._window
        self._seen[replay_key] = forget_after
        heapq.heappush(self._expiry, (forget_after, replay_key))
        self._last[sender_key] = (timestamp, now)
        self._last.move_to_end(sender_key)
        if len(self._last) > self._max_senders:
            self._last.popitem(last=False)


_MISMATCH = VerificationFailure.NAME_MISMATCH
_SIGNED_TYPE_OF_STANZA = {"message": "message/cpim", "presence": "application/pidf+xml"}


def _check_content_type(verified: VerifiedEntity, content_type: str | None) -> None:
    """A ``<message/>`` carries signed Message/CPIM and a ``<presence/>`` signed PIDF."""
    if content_type is not None and verified.content_type != content_type:
        raise SignatureError(
            f"a stanza that should carry {content_type} carries another signed object",
            reason=VerificationFailure.CONTENT_MISMATCH,
        )


def _lines(text: str) -> str:
    """Text with every line break as LF: XML transport turns CRLF into LF (XML 1.0 §2.11)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _check_plain_body(verified: VerifiedEntity, plain_body: str) -> None:
    """The stanza's plain ``<body/>`` must be the signed Message/CPIM text (RFC 3923 §3.1).

    The plain body is not covered by the signature; a flag saying VERIFIED beside a body that
    differs from the signed text would vouch for words the sender never signed.
    """
    try:
        message = parse_cpim_untrusted(verified.content, with_mime_headers=True)
        media_type, parameters = message.content_type
        charset = parameters.get("charset", "utf-8").lower()
        signed_text = message.body.decode("utf-8") if charset in ("utf-8", "us-ascii") else None
    except (ImppError, UnicodeDecodeError) as exc:
        raise SignatureError("the signed Message/CPIM is malformed") from exc
    if media_type != "text/plain" or signed_text is None:
        raise SignatureError(
            "a plain <body/> beside a signed object that is not text",
            reason=VerificationFailure.CONTENT_MISMATCH,
        )
    if _lines(signed_text).strip() != _lines(plain_body).strip():
        raise SignatureError(
            "the plain <body/> is not the signed text", reason=VerificationFailure.CONTENT_MISMATCH
        )


def _pidf_entity_and_timestamp(body: bytes) -> tuple[ImppAddress, float | None]:
    """The ``entity`` of a signed PIDF document (RFC 3863 §4.1.1) and its latest tuple
    ``<timestamp>`` (RFC 3923 §6.9), or None when no tuple carries one."""
    try:
        document = parse_pidf_untrusted(body)
        entity = document.entity_address
    except ImppError as exc:
        raise SignatureError("the signed PIDF document is malformed") from exc
    stamps = [t.timestamp.timestamp() for t in document.tuples if t.timestamp is not None]
    return entity, (max(stamps) if stamps else None)
