"""IMPP addresses: ``im:``/``pres:`` URIs, ``user@domain`` and XMPP addresses.

Theory of operation
-------------------
An :class:`ImppAddress` is one account-level identity with an optional XMPP resource. It is
held in the *XMPP form* (RFC 7622): ``local`` is the XMPP localpart, ``domain`` the domainpart
in Unicode, ``resource`` the resourcepart or None. The two spellings of the same identity are
produced from it:

* :attr:`ImppAddress.jid` -- ``local@domain/resource`` (RFC 7622 §3.1);
* :attr:`ImppAddress.im_uri` / :attr:`ImppAddress.pres_uri` -- the CPIM URIs of RFC 3860
  Appendix A and RFC 3859, built with the local-part mapping of RFC 3922 §3.2 (the resource
  is discarded, as step 1 says).

RFC 3922 §3 local-part mapping, exactly:

* XMPP -> CPIM (§3.2): translate ``#26;`` to ``&``, ``#27;`` to ``'``, ``#2f;`` to ``/``;
  then every UTF-8 *byte* outside ``A-Za-z0-9!$*.?_~+=`` becomes ``%HH`` (uppercase hex).
  We also percent-encode a ``.`` that would otherwise start or end the local part or follow
  another ``.``, so the result is always an RFC 2822 dot-atom, and ``?``, which the
  mailto-style im: syntax (RFC 3860 Appendix A) reads as the start of header fields; a
  decoder cannot tell the difference (RFC 3986 §2.1). On input a ``?`` in the local part is
  a literal character, as RFC 3922 allows it; after the ``@`` it starts headers, refused.
* CPIM -> XMPP (§3.3): split at the first ``@``; decode ``%HH``; the octets must be UTF-8;
  translate ``&`` to ``#26;``, ``'`` to ``#27;``, ``/`` to ``#2f;`` (the RFC prints ``#2f``
  without its ``;`` -- a typo, the inverse of §3.2 step 3 needs it).

The identity itself is a :class:`gateway.jid.Jid`: the local part, domain and resource are
canonicalized by RFC 7622 there (PRECIS UsernameCaseMapped for the localpart, UTS 46 and
IDNA2008 to U-labels for the domain, PRECIS OpaqueString for the resource), and this module
adds only what the IMPP model needs on top: a local part is required, and the ``im:``/``pres:``
URIs carry the domain as A-labels. ``ImppAddress.parse("Alice@Example.ORG/Phone")`` and
``Jid.parse_untrusted("Alice@Example.ORG/Phone")`` are both ``alice@example.org/Phone``.

Text without a scheme is an XMPP address (``user@domain`` is one); a text with the ``im:`` or
``pres:`` scheme is a CPIM address. Every error is an :class:`AddressError` naming the part
that is wrong and why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import idna

from gateway.impp.errors import AddressError
from gateway.jid import MAX_PART_BYTES, Jid, JidError

__all__ = [
    "DEFAULT_MAX_ADDRESS_LENGTH",
    "MAX_PART_BYTES",
    "ImppAddress",
    "cpim_to_jid",
    "jid_to_cpim",
]

# Longest text worth reading: a percent-encoded local part (up to 3 characters per octet) plus
# a domain and a resource of at most 1023 octets each, a scheme and separators. Longer texts
# are refused before any work.
DEFAULT_MAX_ADDRESS_LENGTH = 5 * MAX_PART_BYTES + 8

# RFC 3922 §3.2 step 4: bytes left as they are in an im:/pres: local part.
_URI_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!$*.?_~+=")
# RFC 2822 §3.2.4 atext plus "." and "%": what we accept, undecoded, in a URI local part.
_URI_LOCAL_CHARS = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-/=?^_`{|}~."
)
# RFC 3922 §3.2 step 3 / §3.3 step 5.
_XMPP_TO_CPIM_ESCAPES = (("#26;", "&"), ("#27;", "'"), ("#2f;", "/"))
_HEX = frozenset("0123456789abcdefABCDEF")

Scheme = Literal["im", "pres"]


def _err(message: str, part: str, remote: bool) -> AddressError:
    return AddressError(message, part=part, remote=remote)


def _from_jid_error(exc: JidError, remote: bool) -> AddressError:
    return _err(str(exc), exc.part, remote)


def _ascii_domain(domain: str) -> str:
    """The A-label (ASCII) form of a canonical domain, for URIs."""
    if domain.isascii():
        return domain
    return idna.encode(domain).decode("ascii")


def _local_to_uri(local: str) -> str:
    """RFC 3922 §3.2 steps 3-4: XMPP localpart -> percent-encoded URI local part."""
    for escaped, plain in _XMPP_TO_CPIM_ESCAPES:
        local = local.replace(escaped, plain)
    raw = local.encode("utf-8")
    out: list[str] = []
    for index, byte in enumerate(raw):
        dot_needs_escape = byte == 0x2E and (
            index == 0 or index == len(raw) - 1 or raw[index - 1] == 0x2E
        )
        if byte in _URI_SAFE and not dot_needs_escape and byte != 0x3F:
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _uri_to_local(text: str, remote: bool) -> str:
    """RFC 3922 §3.3 steps 3-5: percent-encoded URI local part -> XMPP localpart."""
    if not text:
        raise _err("the local part is empty", "local", remote)
    bad = [ch for ch in text if ch not in _URI_LOCAL_CHARS]
    if bad:
        raise _err(
            f"the URI local part contains {bad[0]!r}; other characters must be percent-encoded",
            "local",
            remote,
        )
    octets = bytearray()
    index = 0
    while index < len(text):
        ch = text[index]
        if ch == "%":
            hex_digits = text[index + 1 : index + 3]
            if len(hex_digits) != 2 or not set(hex_digits) <= _HEX:
                raise _err(
                    f"'%' at offset {index} of the local part is not followed by two hex digits",
                    "local",
                    remote,
                )
            octets.append(int(hex_digits, 16))
            index += 3
        else:
            octets.append(ord(ch))
            index += 1
    try:
        decoded = octets.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _err("the percent-decoded local part is not UTF-8", "local", remote) from exc
    for escaped, plain in _XMPP_TO_CPIM_ESCAPES:
        decoded = decoded.replace(plain, escaped)
    return decoded


@dataclass(frozen=True)
class ImppAddress:
    """An IMPP identity: XMPP localpart, domain and optional resource, canonicalized.

    Constructing one validates and canonicalizes the parts (raising :class:`AddressError`
    with ``remote=False``); :meth:`parse` does the same for received text.
    """

    local: str
    domain: str
    resource: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.local, str):
            raise _err(f"local must be a str, not {type(self.local).__name__}", "local", False)
        try:
            jid = Jid(self.local, self.domain, self.resource)
        except JidError as exc:
            raise _from_jid_error(exc, remote=False) from exc
        # Frozen dataclass: the canonical forms of gateway.jid are stored once, at construction.
        object.__setattr__(self, "local", jid.local)
        object.__setattr__(self, "domain", jid.domain)
        object.__setattr__(self, "resource", jid.resource)

    @classmethod
    def of(cls, jid: Jid, *, remote: bool = False) -> ImppAddress:
        """The IMPP address of a :class:`~gateway.jid.Jid`, which must have a localpart."""
        if jid.local is None:
            raise _err(
                f"{str(jid)[:64]!r} has no localpart: an IMPP address needs one", "address", remote
            )
        return cls(jid.local, jid.domain, jid.resource)

    def to_jid(self) -> Jid:
        """This address as the shared JID type (resource included if there is one)."""
        return Jid(self.local, self.domain, self.resource)

    @classmethod
    def parse(
        cls, text: str, *, remote: bool = True, max_length: int = DEFAULT_MAX_ADDRESS_LENGTH
    ) -> ImppAddress:
        """Parse ``im:user@domain``, ``pres:user@domain``, ``user@domain`` or an XMPP JID.

        Total: returns an address or raises :class:`AddressError`.
        """
        if not isinstance(text, str):
            raise _err("an address must be text", "address", remote)
        if len(text) > max_length:
            raise _err(f"the address is longer than {max_length} characters", "address", remote)
        lowered = text[:5].lower()
        if lowered.startswith("im:"):
            return cls.from_uri(text, remote=remote)
        if lowered.startswith("pres:"):
            return cls.from_uri(text, remote=remote)
        return cls.from_jid(text, remote=remote)

    @classmethod
    def from_jid(cls, text: str | Jid, *, remote: bool = True) -> ImppAddress:
        """Parse an XMPP address ``[local@]domain[/resource]`` (RFC 7622 §3.1).

        The text is canonicalized by :meth:`gateway.jid.Jid.parse_untrusted`; the IMPP model
        needs a local part, so a bare domain is refused.
        """
        if isinstance(text, Jid):
            return cls.of(text, remote=remote)
        if not isinstance(text, str):
            raise _err("an address must be text", "address", remote)
        if len(text) > DEFAULT_MAX_ADDRESS_LENGTH:
            raise _err("the address is too long", "address", remote)
        if "@" not in text.partition("/")[0]:
            raise _err(
                f"{text[:64]!r} has no '@': an IMPP address needs a local part", "address", remote
            )
        try:
            jid = Jid.parse_untrusted(text)
        except JidError as exc:
            raise _from_jid_error(exc, remote) from exc
        return cls.of(jid, remote=remote)

    @classmethod
    def from_uri(cls, text: str, *, remote: bool = True) -> ImppAddress:
        """Parse an ``im:`` or ``pres:`` URI (RFC 3860 Appendix A, RFC 3922 §3.3)."""
        if not isinstance(text, str):
            raise _err("an address must be text", "address", remote)
        if len(text) > DEFAULT_MAX_ADDRESS_LENGTH:
            raise _err("the address is too long", "address", remote)
        scheme, colon, rest = text.partition(":")
        if not colon or scheme.lower() not in ("im", "pres"):
            raise _err(f"{text[:16]!r}... is not an im: or pres: URI", "scheme", remote)
        if not rest.isascii():
            raise _err(
                "a URI is ASCII: non-ASCII characters must be percent-encoded", "address", remote
            )
        local, at, domain = rest.partition("@")
        if "?" in domain:
            raise _err(
                "URI header fields ('?...') are not supported in addresses", "address", remote
            )
        if not at:
            raise _err(f"{text!r} has no '@' between local part and domain", "address", remote)
        if "/" in domain:
            raise _err("an im:/pres: URI carries no resource", "domain", remote)
        if "@" in domain:
            raise _err("the domain contains a second '@'", "domain", remote)
        try:
            jid = Jid(_uri_to_local(local, remote), domain)
        except JidError as exc:
            raise _from_jid_error(exc, remote) from exc
        return cls.of(jid, remote=remote)

    @property
    def bare(self) -> ImppAddress:
        """The address without its resource."""
        if self.resource is None:
            return self
        return ImppAddress(self.local, self.domain)

    def with_resource(self, resource: str | None) -> ImppAddress:
        """The same account with another (or no) resource."""
        return ImppAddress(self.local, self.domain, resource)

    @property
    def jid(self) -> str:
        """The XMPP address, with the resource if there is one (RFC 7622 §3.1)."""
        bare = f"{self.local}@{self.domain}"
        return bare if self.resource is None else f"{bare}/{self.resource}"

    @property
    def bare_jid(self) -> str:
        """The XMPP address without resource: ``local@domain``."""
        return f"{self.local}@{self.domain}"

    def uri(self, scheme: Scheme) -> str:
        """The ``im:`` or ``pres:`` URI of this identity (RFC 3922 §3.2; resource dropped)."""
        return f"{scheme}:{_local_to_uri(self.local)}@{_ascii_domain(self.domain)}"

    @property
    def im_uri(self) -> str:
        """``im:local@domain``, the INSTANT INBOX address (RFC 3860 §3.2)."""
        return self.uri("im")

    @property
    def pres_uri(self) -> str:
        """``pres:local@domain``, the PRESENTITY address (RFC 3859)."""
        return self.uri("pres")

    def __str__(self) -> str:
        return self.jid


def jid_to_cpim(jid: str, *, scheme: Scheme = "im", remote: bool = True) -> str:
    """Map an XMPP address to an ``im:`` or ``pres:`` URI (RFC 3922 §3.2, resource dropped)."""
    return ImppAddress.from_jid(jid, remote=remote).uri(scheme)


def cpim_to_jid(uri: str, *, remote: bool = True) -> str:
    """Map an ``im:`` or ``pres:`` URI to a bare XMPP address (RFC 3922 §3.3)."""
    return ImppAddress.from_uri(uri, remote=remote).bare_jid
