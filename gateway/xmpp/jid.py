"""XMPP addresses (RFC 7622): parsing, validation, bare and full forms.

Theory of operation.  A JID is ``[localpart@]domainpart[/resourcepart]`` (RFC 7622 §3.1): the
first '/' starts the resourcepart, and the last '@' before it ends the localpart.  Each part is at
most 1023 bytes of UTF-8 (§3.2.1, §3.3.1, §3.4.1).  We apply the checks that matter for routing
and comparison without a full PRECIS implementation (RFC 8264): the localpart may not contain the
characters RFC 7622 §3.3.1 excludes (``"&'/:<>@`` and whitespace) nor controls, the domainpart is
case-folded, NFC-normalised and loses a trailing dot (§3.2), the resourcepart is NFC-normalised and
must not contain controls.  Anything else is refused with :class:`JidError`, a
:class:`~gateway.xmpp.errors.RemoteProtocolError` because JIDs mostly arrive from the network.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from typing import Final

from gateway.xmpp.errors import RemoteProtocolError

__all__ = ["MAX_PART_BYTES", "Jid", "JidError"]

# RFC 7622 §3.2.1, §3.3.1, §3.4.1: each part is 1 to 1023 octets once encoded as UTF-8.
MAX_PART_BYTES: Final = 1023
# RFC 7622 §3.3.1: characters a localpart may never contain (besides whitespace and controls).
_LOCALPART_FORBIDDEN: Final = frozenset("\"&'/:<>@")


class JidError(RemoteProtocolError):
    """A string is not a valid JID (RFC 7622)."""


@dataclasses.dataclass(frozen=True, order=True)
class Jid:
    """A parsed JID; ``str(jid)`` gives its canonical text."""

    local: str | None
    domain: str
    resource: str | None = None

    @classmethod
    def parse_untrusted(cls, text: object) -> Jid:
        """Parse and normalise a JID from any source; raise :class:`JidError` if invalid."""
        if not isinstance(text, str):
            raise JidError(f"a JID is text, not {type(text).__name__}")
        rest, slash, resource_text = text.partition("/")
        local_text, at, domain_text = rest.rpartition("@")
        local = _localpart(local_text) if at else None
        resource = _resourcepart(resource_text) if slash else None
        return cls(local, _domainpart(domain_text), resource)

    @property
    def bare(self) -> Jid:
        """This JID without its resourcepart (RFC 7622 §3.1 "bare JID")."""
        return self if self.resource is None else Jid(self.local, self.domain)

    @property
    def is_bare(self) -> bool:
        """Whether the JID has no resourcepart."""
        return self.resource is None

    def with_resource(self, resource: str) -> Jid:
        """The full JID of this bare JID's ``resource``."""
        return Jid(self.local, self.domain, _resourcepart(resource))

    def __str__(self) -> str:
        text = self.domain if self.local is None else f"{self.local}@{self.domain}"
        return text if self.resource is None else f"{text}/{self.resource}"


def _check_length(part: str, what: str) -> None:
    size = len(part.encode("utf-8", "surrogatepass"))
    if not 1 <= size <= MAX_PART_BYTES:
        raise JidError(f"the {what} must be 1 to {MAX_PART_BYTES} bytes")


def _has_control(text: str) -> bool:
    return any(unicodedata.category(char) in ("Cc", "Cs") for char in text)


def _localpart(text: str) -> str:
    local = unicodedata.normalize("NFC", text)
    _check_length(local, "localpart")
    if any(char in _LOCALPART_FORBIDDEN or char.isspace() for char in local) or _has_control(local):
        raise JidError("the localpart contains a forbidden character")
    return local


def _domainpart(text: str) -> str:
    domain = unicodedata.normalize("NFC", text).casefold()
    if domain.endswith("."):
        domain = domain[:-1]  # RFC 7622 §3.2: a trailing dot is stripped before comparison
    _check_length(domain, "domainpart")
    if any(char.isspace() or char in "@/" for char in domain) or _has_control(domain):
        raise JidError("the domainpart contains a forbidden character")
    if domain.startswith("[") != domain.endswith("]"):
        raise JidError("the domainpart has an unbalanced IPv6 literal")
    return domain


def _resourcepart(text: str) -> str:
    resource = unicodedata.normalize("NFC", text)
    _check_length(resource, "resourcepart")
    if _has_control(resource):
        raise JidError("the resourcepart contains a control character")
    return resource
