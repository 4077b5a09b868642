"""XMPP addresses (RFC 7622): the one canonical address type that every package uses.

Theory of operation.  A JID is ``[localpart@]domainpart[/resourcepart]`` (RFC 7622 §3.1).  The
domainpart is what remains after removing everything from the first '/' on and everything up to
the first '@' (§3.2, the order that example 15 of §3.5 depends on); a '/' or '@' in the
resourcepart is therefore ordinary text.  Each part is enforced with the profile RFC 7622 names,
so that two JIDs are the same address exactly when their canonical texts are equal (§3.2.3,
§3.3.3, §3.4.3):

* localpart: PRECIS UsernameCaseMapped (RFC 8265 §3.3: width mapping, lower case, NFC, the
  IdentifierClass repertoire, the Bidi rule), then the characters ``"&'/:<>@`` that §3.3.1
  excludes on top of it;
* domainpart: one trailing dot stripped before anything else (§3.2), IPv6 literals in brackets
  and IPv4 addresses in their compressed forms, every other name through UTS 46 mapping and
  IDNA2008 validation (RFC 5891/5892, the ``idna`` package) and kept as U-labels (§3.2.1:
  A-labels are converted to U-labels);
* resourcepart: PRECIS OpaqueString (RFC 8265 §4.2: non-ASCII spaces to U+0020, NFC, the
  FreeformClass repertoire, the Bidi rule).

Each part is 1 to 1023 octets of UTF-8 after enforcement (§3.2, §3.3.1, §3.4.1).  Anything else is
refused with :class:`JidError`; :meth:`Jid.parse_untrusted` is total (any input gives a
:class:`Jid` or raises :class:`JidError`).  The constructor enforces too, so every :class:`Jid`
value is canonical and equality, hashing and dictionary lookups compare addresses as the RFC does.

PRECIS and IDNA are pure Python and cost tens of microseconds per part, while the XMPP client reads
the ``from``/``to`` of every stanza, so the canonical forms of recently seen texts and parts are
kept in bounded LRU caches.  Only successes are cached; a part whose input is longer than
:data:`MAX_INPUT_PART_BYTES` is refused before any PRECIS or IDNA work.
"""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
from typing import Final

import idna
from precis_i18n import get_profile

__all__ = ["JID_CACHE_SIZE", "MAX_INPUT_PART_BYTES", "MAX_PART_BYTES", "Jid", "JidError"]

# RFC 7622 §3.2, §3.3.1, §3.4.1: each part is 1 to 1023 octets once enforced and encoded as UTF-8.
MAX_PART_BYTES: Final = 1023
# A bound on work, not the RFC limit: the mappings shrink text by at most about three octets to one
# (width and space mapping, Hangul and other compositions), so a longer input part cannot enforce
# to 1023 octets and is refused without running PRECIS or IDNA on it.
MAX_INPUT_PART_BYTES: Final = 4 * MAX_PART_BYTES
# Longest whole text worth splitting: three maximal input parts and their two separators.
_MAX_INPUT_CHARS: Final = 3 * MAX_INPUT_PART_BYTES + 2
# Distinct texts (and, separately, distinct parts of each kind) whose canonical form is kept: a
# gateway's working set of peers, bounded so that a peer sending ever-new JIDs cannot grow memory.
JID_CACHE_SIZE: Final = 4096
# RFC 7622 §3.3.1: characters a localpart may not contain although UsernameCaseMapped allows them.
_LOCALPART_EXCLUDED: Final = frozenset("\"&'/:<>@")

_USERNAME_CASE_MAPPED: Final = get_profile("UsernameCaseMapped")
_OPAQUE_STRING: Final = get_profile("OpaqueString")


class JidError(ValueError):
    """A text or part is not a valid JID (RFC 7622).

    ``part`` names the offending component: ``"local"``, ``"domain"``, ``"resource"`` or
    ``"address"`` (the whole text, e.g. not text at all or too long).
    """

    def __init__(self, message: str, *, part: str = "address") -> None:
        super().__init__(message)
        self.part = part


@dataclasses.dataclass(frozen=True, order=True)
class Jid:
    """A canonical JID; ``str(jid)`` gives its canonical text.

    Constructing one enforces RFC 7622 on the parts (raising :class:`JidError`), so
    ``Jid("Alice", "Example.ORG") == Jid.parse_untrusted("alice@example.org")``.
    """

    local: str | None
    domain: str
    resource: str | None = None

    def __post_init__(self) -> None:
        local, domain, resource = self.local, self.domain, self.resource
        if local is not None and not isinstance(local, str):
            raise JidError("the localpart must be text or None", part="local")
        if not isinstance(domain, str):
            raise JidError("the domainpart must be text", part="domain")
        if resource is not None and not isinstance(resource, str):
            raise JidError("the resourcepart must be text or None", part="resource")
        object.__setattr__(self, "local", None if local is None else _localpart(local))
        object.__setattr__(self, "domain", _domainpart(domain))
        object.__setattr__(self, "resource", None if resource is None else _resourcepart(resource))

    @classmethod
    def parse_untrusted(cls, text: object) -> Jid:
        """Parse and canonicalize a JID from any source; raise :class:`JidError` if invalid."""
        if not isinstance(text, str):
            raise JidError(f"a JID is text, not {type(text).__name__}")
        if len(text) > _MAX_INPUT_CHARS:
            raise JidError(f"the text is longer than {_MAX_INPUT_CHARS} characters")
        # An exact str, so that a str subclass's own __eq__ or __hash__ never reaches the cache.
        return _parse_text(str.__str__(text))

    @property
    def bare(self) -> Jid:
        """This JID without its resourcepart (RFC 7622 §3.1 "bare JID")."""
        return self if self.resource is None else _canonical(self.local, self.domain, None)

    @property
    def is_bare(self) -> bool:
        """Whether the JID has no resourcepart."""
        return self.resource is None

    def with_resource(self, resource: str) -> Jid:
        """The full JID of this JID's account at ``resource`` (enforced as a resourcepart)."""
        if not isinstance(resource, str):
            raise JidError("the resourcepart must be text", part="resource")
        return _canonical(self.local, self.domain, _resourcepart(resource))

    def __str__(self) -> str:
        text = self.domain if self.local is None else f"{self.local}@{self.domain}"
        return text if self.resource is None else f"{text}/{self.resource}"


def _canonical(local: str | None, domain: str, resource: str | None) -> Jid:
    """A :class:`Jid` of parts that are already canonical, without enforcing them again."""
    jid = object.__new__(Jid)
    object.__setattr__(jid, "local", local)
    object.__setattr__(jid, "domain", domain)
    object.__setattr__(jid, "resource", resource)
    return jid


@functools.lru_cache(maxsize=JID_CACHE_SIZE)
def _parse_text(text: str) -> Jid:
    rest, slash, resource_text = text.partition("/")
    local_text, at, domain_text = rest.partition("@")
    if not at:
        domain_text = rest
    return _canonical(
        _localpart(local_text) if at else None,
        _domainpart(domain_text),
        _resourcepart(resource_text) if slash else None,
    )


def _why(exc: Exception) -> str:
    """The reason a PRECIS or IDNA check gave, short enough for a log line."""
    if isinstance(exc, UnicodeEncodeError) and 0 <= exc.start < len(exc.object):
        return f"U+{ord(exc.object[exc.start]):04X} at {exc.start}: {exc.reason}"[:120]
    return str(exc)[:120]


def _check_input(text: str, part: str, name: str) -> None:
    if not text:
        raise JidError(f"the {name} is empty", part=part)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_INPUT_PART_BYTES:
        raise JidError(f"the {name} is longer than {MAX_PART_BYTES} bytes", part=part)


def _check_length(canonical: str, part: str, name: str) -> None:
    if len(canonical.encode("utf-8")) > MAX_PART_BYTES:
        raise JidError(f"the {name} is longer than {MAX_PART_BYTES} bytes", part=part)


@functools.lru_cache(maxsize=JID_CACHE_SIZE)
def _localpart(text: str) -> str:
    """RFC 7622 §3.3: UsernameCaseMapped, then the §3.3.1 exclusions and the length limit."""
    _check_input(text, "local", "localpart")
    try:
        local = _USERNAME_CASE_MAPPED.enforce(text)
    except UnicodeError as exc:
        raise JidError(
            f"the localpart is not a PRECIS username: {_why(exc)}", part="local"
        ) from exc
    excluded = _LOCALPART_EXCLUDED.intersection(local)
    if excluded:
        raise JidError(
            f"the localpart contains {min(excluded)!r}, which RFC 7622 §3.3.1 excludes",
            part="local",
        )
    _check_length(local, "local", "localpart")
    return local


@functools.lru_cache(maxsize=JID_CACHE_SIZE)
def _domainpart(text: str) -> str:
    """RFC 7622 §3.2: trailing dot, IP literals, then UTS 46 + IDNA2008 to U-labels."""
    if text.endswith("."):
        text = text[:-1]  # §3.2: stripped before any other canonicalization step
    _check_input(text, "domain", "domainpart")
    if text.startswith("[") or text.endswith("]"):
        return _ipv6_literal(text)
    try:
        return str(ipaddress.IPv4Address(text))
    except ValueError:
        pass
    try:
        domain = idna.decode(idna.encode(text, uts46=True, std3_rules=True, transitional=False))
    except (idna.IDNAError, UnicodeError, ValueError) as exc:
        raise JidError(
            f"the domainpart is not an IDNA2008 domain name: {_why(exc)}", part="domain"
        ) from exc
    if domain.endswith("."):
        # A mapped separator (U+3002 and its kind) left an empty last label.
        raise JidError("the domainpart has an empty label", part="domain")
    _check_length(domain, "domain", "domainpart")
    return domain


def _ipv6_literal(text: str) -> str:
    if not (text.startswith("[") and text.endswith("]")):
        raise JidError("the domainpart has an unbalanced IPv6 literal", part="domain")
    inner = text[1:-1]
    if "%" in inner:
        raise JidError("a zone index is not part of an XMPP domainpart", part="domain")
    try:
        address = ipaddress.IPv6Address(inner)
    except ValueError as exc:
        raise JidError(f"{text[:48]!r} is not an IPv6 literal", part="domain") from exc
    return f"[{address.compressed}]"


@functools.lru_cache(maxsize=JID_CACHE_SIZE)
def _resourcepart(text: str) -> str:
    """RFC 7622 §3.4: OpaqueString and the length limit."""
    _check_input(text, "resource", "resourcepart")
    try:
        resource = _OPAQUE_STRING.enforce(text)
    except UnicodeError as exc:
        raise JidError(
            f"the resourcepart is not a PRECIS opaque string: {_why(exc)}", part="resource"
        ) from exc
    _check_length(resource, "resource", "resourcepart")
    return resource
