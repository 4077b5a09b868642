"""The XMPP error tree: one root, our misuse split from the peer's fault, each with its wire code.

Theory of operation.  Every failure in gateway/xmpp raises a subclass of :class:`XmppError`:

* :class:`LocalXmppError`: *we* misused the API (a method called in the wrong state, an element
  that cannot be serialized).  Nothing is sent to the peer; it is a bug on our side.
* :class:`RemoteXmppError`: the *peer* broke the protocol.  Its subclasses say what to do next:

  * :class:`StreamError` (RFC 6120 §4.9): the peer sent something that forces us to close the
    stream; ``condition`` is the defined condition (RFC 6120 §4.9.3) we send back in
    ``<stream:error/>`` before ``</stream:stream>`` (:meth:`StreamError.to_element`).
  * :class:`PeerStreamError`: the peer *sent us* a ``<stream:error/>``.  RFC 6120 §4.9.1.1 forbids
    answering a stream error with a stream error, so this is a separate class, not a StreamError.
  * :class:`AuthenticationFailed` (RFC 6120 §6.4.5, §6.5): SASL failed, either because the server
    said ``<failure/>`` (``condition`` is its RFC 6120 §6.5 condition) or because the server could
    not prove it knows the password (a bad SCRAM server signature, RFC 5802 §3).

* :class:`StanzaError` (RFC 6120 §8.3): an error *stanza* (``type`` plus a defined condition).
  It is not a protocol violation: the stream stays up, and the client maps it to a typed result.
  It can be parsed from a received ``<error/>`` (:meth:`StanzaError.from_element_untrusted`) and
  built into one to answer a request (:meth:`StanzaError.to_element`).

Conditions are :class:`enum.StrEnum` members, so ``StreamError("not-well-formed")`` and
``StreamError(StreamCondition.NOT_WELL_FORMED)`` are the same thing and compare equal to the string.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from typing import TypeVar

__all__ = [
    "STANZAS_NS",
    "STREAMS_NS",
    "STREAM_NS",
    "XML_LANG",
    "AuthenticationFailed",
    "LocalXmppError",
    "PeerStreamError",
    "RemoteXmppError",
    "SaslCondition",
    "StanzaError",
    "StanzaErrorCondition",
    "StanzaErrorType",
    "StanzaTooLargeError",
    "StreamCondition",
    "StreamError",
    "XmppError",
]

# RFC 6120 §4.8.1: the stream namespace (qualifies <stream:stream/>, <stream:features/>, ...).
STREAM_NS = "http://etherx.jabber.org/streams"
# RFC 6120 §4.9.2: namespace of the defined stream error conditions.
STREAMS_NS = "urn:ietf:params:xml:ns:xmpp-streams"
# RFC 6120 §8.3.2: namespace of the defined stanza error conditions.
STANZAS_NS = "urn:ietf:params:xml:ns:xmpp-stanzas"
# The xml:lang attribute in Clark notation (the xml prefix is bound by definition).
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"


class StreamCondition(enum.StrEnum):
    """Defined stream error conditions, RFC 6120 §4.9.3."""

    BAD_FORMAT = "bad-format"  # §4.9.3.1
    BAD_NAMESPACE_PREFIX = "bad-namespace-prefix"  # §4.9.3.2
    CONFLICT = "conflict"  # §4.9.3.3
    CONNECTION_TIMEOUT = "connection-timeout"  # §4.9.3.4
    HOST_GONE = "host-gone"  # §4.9.3.5
    HOST_UNKNOWN = "host-unknown"  # §4.9.3.6
    IMPROPER_ADDRESSING = "improper-addressing"  # §4.9.3.7
    INTERNAL_SERVER_ERROR = "internal-server-error"  # §4.9.3.8
    INVALID_FROM = "invalid-from"  # §4.9.3.9
    INVALID_NAMESPACE = "invalid-namespace"  # §4.9.3.10
    INVALID_XML = "invalid-xml"  # §4.9.3.11
    NOT_AUTHORIZED = "not-authorized"  # §4.9.3.12
    NOT_WELL_FORMED = "not-well-formed"  # §4.9.3.13
    POLICY_VIOLATION = "policy-violation"  # §4.9.3.14
    REMOTE_CONNECTION_FAILED = "remote-connection-failed"  # §4.9.3.15
    RESET = "reset"  # §4.9.3.16
    RESOURCE_CONSTRAINT = "resource-constraint"  # §4.9.3.17
    RESTRICTED_XML = "restricted-xml"  # §4.9.3.18
    SEE_OTHER_HOST = "see-other-host"  # §4.9.3.19
    SYSTEM_SHUTDOWN = "system-shutdown"  # §4.9.3.20
    UNDEFINED_CONDITION = "undefined-condition"  # §4.9.3.21
    UNSUPPORTED_ENCODING = "unsupported-encoding"  # §4.9.3.22
    UNSUPPORTED_FEATURE = "unsupported-feature"  # §4.9.3.23
    UNSUPPORTED_STANZA_TYPE = "unsupported-stanza-type"  # §4.9.3.24
    UNSUPPORTED_VERSION = "unsupported-version"  # §4.9.3.25


class StanzaErrorType(enum.StrEnum):
    """The 'type' attribute of a stanza <error/>, RFC 6120 §8.3.2."""

    AUTH = "auth"  # retry after providing credentials
    CANCEL = "cancel"  # do not retry (the error cannot be remedied)
    CONTINUE = "continue"  # proceed (the condition was only a warning)
    MODIFY = "modify"  # retry after changing the data sent
    WAIT = "wait"  # retry after waiting (the error is temporary)


class StanzaErrorCondition(enum.StrEnum):
    """Defined stanza error conditions, RFC 6120 §8.3.3."""

    BAD_REQUEST = "bad-request"  # §8.3.3.1
    CONFLICT = "conflict"  # §8.3.3.2
    FEATURE_NOT_IMPLEMENTED = "feature-not-implemented"  # §8.3.3.3
    FORBIDDEN = "forbidden"  # §8.3.3.4
    GONE = "gone"  # §8.3.3.5
    INTERNAL_SERVER_ERROR = "internal-server-error"  # §8.3.3.6
    ITEM_NOT_FOUND = "item-not-found"  # §8.3.3.7
    JID_MALFORMED = "jid-malformed"  # §8.3.3.8
    NOT_ACCEPTABLE = "not-acceptable"  # §8.3.3.9
    NOT_ALLOWED = "not-allowed"  # §8.3.3.10
    NOT_AUTHORIZED = "not-authorized"  # §8.3.3.11
    POLICY_VIOLATION = "policy-violation"  # §8.3.3.12
    RECIPIENT_UNAVAILABLE = "recipient-unavailable"  # §8.3.3.13
    REDIRECT = "redirect"  # §8.3.3.14
    REGISTRATION_REQUIRED = "registration-required"  # §8.3.3.15
    REMOTE_SERVER_NOT_FOUND = "remote-server-not-found"  # §8.3.3.16
    REMOTE_SERVER_TIMEOUT = "remote-server-timeout"  # §8.3.3.17
    RESOURCE_CONSTRAINT = "resource-constraint"  # §8.3.3.18
    SERVICE_UNAVAILABLE = "service-unavailable"  # §8.3.3.19
    SUBSCRIPTION_REQUIRED = "subscription-required"  # §8.3.3.20
    UNDEFINED_CONDITION = "undefined-condition"  # §8.3.3.21
    UNEXPECTED_REQUEST = "unexpected-request"  # §8.3.3.22


class SaslCondition(enum.StrEnum):
    """SASL failure conditions, RFC 6120 §6.5."""

    ABORTED = "aborted"  # §6.5.1
    ACCOUNT_DISABLED = "account-disabled"  # §6.5.2
    CREDENTIALS_EXPIRED = "credentials-expired"  # §6.5.3
    ENCRYPTION_REQUIRED = "encryption-required"  # §6.5.4
    INCORRECT_ENCODING = "incorrect-encoding"  # §6.5.5
    INVALID_AUTHZID = "invalid-authzid"  # §6.5.6
    INVALID_MECHANISM = "invalid-mechanism"  # §6.5.7
    MALFORMED_REQUEST = "malformed-request"  # §6.5.8
    MECHANISM_TOO_WEAK = "mechanism-too-weak"  # §6.5.9
    NOT_AUTHORIZED = "not-authorized"  # §6.5.10
    TEMPORARY_AUTH_FAILURE = "temporary-auth-failure"  # §6.5.11


_Condition = TypeVar("_Condition", bound=enum.StrEnum)


class XmppError(Exception):
    """Root of every error raised by gateway/xmpp."""


class LocalXmppError(XmppError):
    """We misused the API (wrong state, unserializable element): a bug here, not the peer's."""


class StanzaTooLargeError(LocalXmppError):
    """A stanza we were asked to send is larger than the server accepts; it was not sent.

    ``size`` is its serialized length in bytes, ``limit`` the bound it broke (our configured
    ``max_outbound_stanza_size`` or the server's advertised XEP-0478 ``max-bytes``).
    """

    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"stanza of {size} bytes exceeds the server's limit of {limit} bytes")


class RemoteXmppError(XmppError):
    """The peer broke the protocol."""


class StreamError(RemoteXmppError):
    """The peer's input forces us to close the stream with ``<stream:error/>`` (RFC 6120 §4.9).

    ``condition`` is the defined condition to send (RFC 6120 §4.9.3); ``text`` is a human-readable
    explanation for logs and for the optional ``<text/>`` child.  It never contains peer-supplied
    message bodies, only a description of what was wrong.
    """

    def __init__(self, condition: StreamCondition | str, text: str = "") -> None:
        self.condition = _member(StreamCondition, condition)
        self.text = text
        super().__init__(f"{self.condition}: {text}" if text else str(self.condition))

    def to_element(self, *, include_text: bool = True) -> ET.Element:
        """The ``<stream:error/>`` element to send before closing the stream (RFC 6120 §4.9.2)."""
        error = ET.Element(f"{{{STREAM_NS}}}error")
        ET.SubElement(error, f"{{{STREAMS_NS}}}{self.condition}")
        if include_text and self.text:
            text = ET.SubElement(error, f"{{{STREAMS_NS}}}text")
            text.text = self.text
        return error


class PeerStreamError(RemoteXmppError):
    """The peer sent ``<stream:error/>`` and is closing the stream (RFC 6120 §4.9.1.1).

    Do not answer with a stream error.  ``see_other_host`` is the alternate host of a
    ``<see-other-host/>`` condition (RFC 6120 §4.9.3.19), ``application_condition`` the Clark
    name of an application-specific condition element (RFC 6120 §4.9.4), if present.
    """

    def __init__(
        self,
        condition: StreamCondition | str,
        text: str = "",
        *,
        application_condition: str | None = None,
        see_other_host: str | None = None,
    ) -> None:
        self.condition = _member(StreamCondition, condition)
        self.text = text
        self.application_condition = application_condition
        self.see_other_host = see_other_host
        super().__init__(f"peer stream error {self.condition}" + (f": {text}" if text else ""))

    @classmethod
    def from_element_untrusted(cls, element: ET.Element) -> PeerStreamError:
        """Read a received ``<stream:error/>``; total (unknown conditions: undefined-condition)."""
        condition = StreamCondition.UNDEFINED_CONDITION
        text = ""
        application_condition: str | None = None
        see_other_host: str | None = None
        for child in element:
            namespace, local = _split_clark(child.tag)
            if namespace == STREAMS_NS and local == "text":
                text = child.text or ""
            elif namespace == STREAMS_NS:
                try:
                    condition = StreamCondition(local)
                except ValueError:
                    condition = StreamCondition.UNDEFINED_CONDITION
                if condition is StreamCondition.SEE_OTHER_HOST:
                    see_other_host = (child.text or "").strip() or None
            elif application_condition is None:
                application_condition = child.tag
        return cls(
            condition,
            text,
            application_condition=application_condition,
            see_other_host=see_other_host,
        )


class AuthenticationFailed(RemoteXmppError):  # noqa: N818 - names the outcome, as SASL does
    """SASL authentication failed (RFC 6120 §6.4.5) or the server failed to authenticate itself.

    ``condition`` is the server's RFC 6120 §6.5 condition when it sent ``<failure/>``, or ``None``
    when we rejected the server (bad SCRAM server signature, nonce, iteration count, malformed
    challenge).  ``text`` never contains the password or any derived key.
    """

    def __init__(self, text: str, *, condition: SaslCondition | str | None = None) -> None:
        self.condition: SaslCondition | None = (
            None if condition is None else _member(SaslCondition, condition)
        )
        self.text = text
        prefix = f"{self.condition}: " if self.condition is not None else ""
        super().__init__(prefix + text)

    @classmethod
    def from_failure_untrusted(cls, element: ET.Element) -> AuthenticationFailed:
        """Read a received SASL ``<failure/>`` (RFC 6120 §6.4.5); total."""
        condition: SaslCondition | None = None
        text = ""
        for child in element:
            _, local = _split_clark(child.tag)
            if local == "text":
                text = child.text or ""
            elif condition is None:
                condition = _sasl_condition(local)
        if condition is None:
            # RFC 6120 §6.4.5: a <failure/> without a defined condition is still a failure.
            condition = SaslCondition.NOT_AUTHORIZED
        return cls(text or "server refused authentication", condition=condition)


def _member(enumeration: type[_Condition], value: str) -> _Condition:
    """``enumeration(value)``; an unknown value is our misuse (peer input is mapped before)."""
    try:
        return enumeration(value)
    except ValueError as exc:
        raise LocalXmppError(f"{value!r} is not a {enumeration.__name__}") from exc


def _sasl_condition(value: str) -> SaslCondition:
    """A SASL condition; unknown values (a newer server) degrade to not-authorized."""
    try:
        return SaslCondition(value)
    except ValueError:
        return SaslCondition.NOT_AUTHORIZED


class StanzaError(XmppError):
    """An XMPP stanza error (RFC 6120 §8.3): ``type``, a defined ``condition`` and optional text.

    ``application_condition`` is the Clark name of an application-specific child (RFC 6120 §8.3.4),
    ``redirect`` the XMPP URI carried by ``<gone/>`` or ``<redirect/>`` (§8.3.3.5, §8.3.3.14),
    ``by`` the entity that generated the error (§8.3.2).
    """

    def __init__(
        self,
        type: StanzaErrorType | str,  # the RFC's attribute name
        condition: StanzaErrorCondition | str,
        text: str = "",
        *,
        application_condition: str | None = None,
        redirect: str | None = None,
        by: str | None = None,
    ) -> None:
        self.type = _member(StanzaErrorType, type)
        self.condition = _member(StanzaErrorCondition, condition)
        self.text = text
        self.application_condition = application_condition
        self.redirect = redirect
        self.by = by
        super().__init__(f"{self.type}/{self.condition}" + (f": {text}" if text else ""))

    def to_element(self, content_namespace: str = "jabber:client") -> ET.Element:
        """The ``<error/>`` child to put in an error stanza (RFC 6120 §8.3.2)."""
        error = ET.Element(f"{{{content_namespace}}}error", {"type": str(self.type)})
        if self.by is not None:
            error.set("by", self.by)
        condition = ET.SubElement(error, f"{{{STANZAS_NS}}}{self.condition}")
        if self.redirect is not None and self.condition in _REDIRECTING_CONDITIONS:
            condition.text = self.redirect
        if self.text:
            text = ET.SubElement(error, f"{{{STANZAS_NS}}}text")
            text.text = self.text
        if self.application_condition is not None:
            ET.SubElement(error, self.application_condition)
        return error

    @classmethod
    def from_element_untrusted(cls, element: ET.Element) -> StanzaError:
        """Read a received ``<error/>`` (the child of an error stanza, or the stanza itself); total.

        Missing or unknown ``type`` becomes ``cancel`` and a missing or unknown condition becomes
        ``undefined-condition``: a peer's malformed error must still end the request as an error.
        """
        if _split_clark(element.tag)[1] != "error":
            for child in element:
                if _split_clark(child.tag)[1] == "error":
                    element = child
                    break
        try:
            error_type = StanzaErrorType(element.get("type", ""))
        except ValueError:
            error_type = StanzaErrorType.CANCEL
        condition = StanzaErrorCondition.UNDEFINED_CONDITION
        seen_condition = False
        text = ""
        application_condition: str | None = None
        redirect: str | None = None
        for child in element:
            namespace, local = _split_clark(child.tag)
            if namespace == STANZAS_NS and local == "text":
                text = child.text or ""
            elif namespace == STANZAS_NS and not seen_condition:
                seen_condition = True
                try:
                    condition = StanzaErrorCondition(local)
                except ValueError:
                    condition = StanzaErrorCondition.UNDEFINED_CONDITION
                if condition in _REDIRECTING_CONDITIONS:
                    redirect = (child.text or "").strip() or None
            elif namespace != STANZAS_NS and application_condition is None:
                application_condition = child.tag
        return cls(
            error_type,
            condition,
            text,
            application_condition=application_condition,
            redirect=redirect,
            by=element.get("by"),
        )


_REDIRECTING_CONDITIONS = frozenset({StanzaErrorCondition.GONE, StanzaErrorCondition.REDIRECT})


def _split_clark(tag: object) -> tuple[str, str]:
    """('namespace', 'local') from a Clark name; ('', tag) without a namespace, ('', '') if odd."""
    if not isinstance(tag, str):
        return "", ""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag
