"""The one address model (gateway/jid.py): RFC 7622 canonicalization shared by xmpp and impp."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gateway.xmpp
from gateway.impp import AddressError, ImppAddress
from gateway.jid import MAX_PART_BYTES, Jid, JidError

# RFC 7622 §3.5, Table 1 ("A Sample of Legal JIDs"), with the parts each one canonicalizes to.
RFC7622_TABLE_1 = [
    (1, "juliet@example.com", ("juliet", "example.com", None)),
    (2, "juliet@example.com/foo", ("juliet", "example.com", "foo")),
    (3, "juliet@example.com/foo bar", ("juliet", "example.com", "foo bar")),
    (4, "juliet@example.com/foo@bar", ("juliet", "example.com", "foo@bar")),
    (5, "foo\\20bar@example.com", ("foo\\20bar", "example.com", None)),
    (6, "fussball@example.com", ("fussball", "example.com", None)),
    (7, "fu\u00dfball@example.com", ("fu\u00dfball", "example.com", None)),
    (8, "\u03c0@example.com", ("\u03c0", "example.com", None)),
    # The notes after Table 1: U+03A3 case-maps to U+03C3, so examples 9 and 10 are the same JID...
    (9, "\u03a3@example.com/foo", ("\u03c3", "example.com", "foo")),
    (10, "\u03c3@example.com/foo", ("\u03c3", "example.com", "foo")),
    # ... and final sigma is not mapped, so example 11 is another JID.
    (11, "\u03c2@example.com/foo", ("\u03c2", "example.com", "foo")),
    (12, "king@example.com/\u265a", ("king", "example.com", "\u265a")),
    (13, "example.com", (None, "example.com", None)),
    (14, "example.com/foobar", (None, "example.com", "foobar")),
    (15, "a.example.com/b@example.net", (None, "a.example.com", "b@example.net")),
]

# RFC 7622 §3.5, Table 2 ("A Sample of Strings That Violate the JID Rules"), with the part at fault.
# Example 18, "juliet@example.com/ foo" (leading space in the resourcepart), is left out: RFC 7622
# Errata ID 4560 notes that OpaqueString allows it, so it is a valid JID (see the test below).
RFC7622_TABLE_2 = [
    (16, '"juliet"@example.com', "local"),
    (17, "foo bar@example.com", "local"),
    (19, "@example.com/", "local"),
    (20, "henry\u2163@example.com", "local"),
    (21, "\u265a@example.com", "local"),
    (22, "juliet@", "domain"),
    (23, "/foobar", "domain"),
]


@pytest.mark.parametrize(("number", "text", "parts"), RFC7622_TABLE_1)
def test_rfc7622_table_1_legal_jids(
    number: int, text: str, parts: tuple[str | None, str, str | None]
) -> None:
    jid = Jid.parse_untrusted(text)
    assert (jid.local, jid.domain, jid.resource) == parts, f"example {number}"
    assert Jid.parse_untrusted(str(jid)) == jid
    assert Jid(*parts) == jid


@pytest.mark.parametrize(("number", "text", "part"), RFC7622_TABLE_2)
def test_rfc7622_table_2_non_jids(number: int, text: str, part: str) -> None:
    with pytest.raises(JidError) as info:
        Jid.parse_untrusted(text)
    assert info.value.part == part, f"example {number}"


def test_rfc7622_section_3_5_comparisons() -> None:
    # The notes after Table 1: 6 and 7 differ; 9 and 10 match; 11 matches neither.
    assert Jid.parse_untrusted("fussball@example.com") != Jid.parse_untrusted(
        "fu\u00dfball@example.com"
    )
    sigma, small_sigma, final_sigma = (
        Jid.parse_untrusted(f"{char}@example.com/foo") for char in "\u03a3\u03c3\u03c2"
    )
    assert sigma == small_sigma
    assert final_sigma not in (sigma, small_sigma)


def test_rfc7622_errata_4560_leading_space_in_resourcepart_is_legal() -> None:
    assert Jid.parse_untrusted("juliet@example.com/ foo").resource == " foo"


# -- the two divergences of issue 11 point 1: one canonical form for xmpp and impp ---------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        # The localpart is case-mapped (UsernameCaseMapped), the domain too (IDNA2008/UTS 46), the
        # resource is kept (OpaqueString).
        ("Alice@Example.ORG/Phone", "alice@example.org/Phone"),
        # Width mapping: FULLWIDTH LATIN SMALL LETTER B (U+FF42) becomes "b".
        ("\uff42ob@example.org", "bob@example.org"),
    ],
)
def test_xmpp_and_impp_agree(text: str, canonical: str) -> None:
    jid = gateway.xmpp.Jid.parse_untrusted(text)
    address = ImppAddress.parse(text)
    assert str(jid) == canonical
    assert address.jid == canonical
    assert address.to_jid() == jid
    assert ImppAddress.of(jid) == address
    # A table keyed on either form finds the other.
    assert {jid: "row"}[address.to_jid()] == "row"


def test_xmpp_reexports_the_shared_type() -> None:
    assert gateway.xmpp.Jid is Jid
    assert gateway.xmpp.JidError is JidError


# -- domainparts ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("domain", "canonical"),
    [
        ("EXAMPLE.com.", "example.com"),  # §3.2: a trailing dot is stripped first
        ("B\u00fccher.example", "b\u00fccher.example"),
        ("xn--bcher-kva.example", "b\u00fccher.example"),  # §3.2.1: A-labels become U-labels
        ("XN--BCHER-KVA.example", "b\u00fccher.example"),
        ("\uff45xample.com", "example.com"),  # UTS 46 width mapping
        ("a\u3002example.com", "a.example.com"),  # UTS 46 maps the ideographic full stop
        ("[0:0::1]", "[::1]"),
        ("[2001:DB8::1]", "[2001:db8::1]"),
        ("192.0.2.1", "192.0.2.1"),
        ("localhost", "localhost"),
    ],
)
def test_domainpart_canonical_forms(domain: str, canonical: str) -> None:
    assert Jid.parse_untrusted(f"juliet@{domain}").domain == canonical


@pytest.mark.parametrize(
    "domain",
    [
        "",
        ".",
        "example..com",
        ".example.com",
        "example.com..",
        "example.com\u3002",  # the mapped separator would leave an empty last label
        "exa mple.com",
        "exa_mple.com",
        "-example.com",
        "ab--cd.example",  # IDNA2008: hyphens in the third and fourth positions
        "xn--zz.example",  # not a valid A-label
        "x" * 64 + ".com",  # a DNS label is at most 63 octets
        ".".join(["a" * 63] * 4),  # a DNS name is at most 253 octets
        "[::1",
        "::1]",
        "[::zz]",
        "[fe80::1%eth0]",
        "\ud800.example",
    ],
)
def test_domainpart_refused(domain: str) -> None:
    with pytest.raises(JidError) as info:
        Jid.parse_untrusted(f"juliet@{domain}")
    assert info.value.part == "domain"


# -- lengths (RFC 7622 §3.2, §3.3.1, §3.4.1: 1 to 1023 octets after enforcement) -----------------


def test_part_length_limits_are_octets_after_enforcement() -> None:
    # 1023 octets is the largest legal localpart and resourcepart; 1024 is refused.
    assert Jid.parse_untrusted("a" * MAX_PART_BYTES + "@example.com").local == "a" * MAX_PART_BYTES
    assert Jid.parse_untrusted("example.com/" + "r" * MAX_PART_BYTES).resource
    with pytest.raises(JidError) as info:
        Jid.parse_untrusted("a" * (MAX_PART_BYTES + 1) + "@example.com")
    assert info.value.part == "local"
    with pytest.raises(JidError) as info:
        Jid.parse_untrusted("example.com/" + "r" * (MAX_PART_BYTES + 1))
    assert info.value.part == "resource"
    # Octets, not characters: 512 two-octet letters are 1024 octets.
    with pytest.raises(JidError):
        Jid.parse_untrusted("\u00e9" * 512 + "@example.com")
    # After enforcement: 1023 fullwidth letters (3069 octets) width-map to 1023 octets.
    assert Jid.parse_untrusted("\uff41" * MAX_PART_BYTES + "@example.com").local == "a" * 1023


def test_huge_text_refused_before_work() -> None:
    with pytest.raises(JidError, match="longer than"):
        Jid.parse_untrusted("a" * 1_000_000)


# -- the constructor enforces too -----------------------------------------------------------------


def test_constructor_canonicalizes_and_refuses() -> None:
    assert Jid("Alice", "Example.ORG.", "Phone") == Jid.parse_untrusted("alice@example.org/Phone")
    with pytest.raises(JidError) as info:
        Jid("a@b", "example.com")
    assert info.value.part == "local"
    with pytest.raises(JidError) as info:
        Jid("a", "example.com", "\u0007")
    assert info.value.part == "resource"
    with pytest.raises(JidError):
        Jid.parse_untrusted("a@example.com").with_resource("")


def test_non_text_refused() -> None:
    for value in (None, b"a@example.com", 42):
        with pytest.raises(JidError):
            Jid.parse_untrusted(value)


def test_str_subclass_cannot_alias_a_cached_jid() -> None:
    class AlwaysEqual(str):
        """Text that claims to equal, and hash like, every other such text."""

        __slots__ = ()

        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return 0

    assert str(Jid.parse_untrusted(AlwaysEqual("alice@example.org"))) == "alice@example.org"
    assert str(Jid.parse_untrusted(AlwaysEqual("mallory@example.org"))) == "mallory@example.org"


# -- properties -----------------------------------------------------------------------------------

# Texts near the JID grammar: the separators and the characters that PRECIS and IDNA treat apart
# (case, width, compatibility, spaces, controls, symbols, dots) are drawn often.
_NEAR_JID_ALPHABET = st.sampled_from(
    [
        *"aZ09-._@/ \"&'<>:[]%\\",
        *"\u00df\u03a3\u00e9\u0301\uff42\u3002\u2163\u265a",
        *"\u00a0\u0007\u200d\u05d0\ud800\u212a",
    ]
)
_PART = st.text(_NEAR_JID_ALPHABET, max_size=6)
_LABEL = st.text(st.sampled_from([*"aZ09-", "\u00df", "\u00e9", "\uff42", "\u212a"]), max_size=6)
_STRUCTURED = st.builds(
    lambda local, labels, resource: f"{local}@{'.'.join(labels)}/{resource}",
    st.text(st.sampled_from([*"aZ0.\\", "\u00df", "\u03a3", "\u00e9", "\uff42"]), max_size=6)
    | _PART,
    st.lists(_LABEL, min_size=1, max_size=3),
    st.text(st.characters(), max_size=6) | _PART,
)
_JID_LIKE = _STRUCTURED | st.text(_NEAR_JID_ALPHABET, max_size=24) | st.text(max_size=40)


@given(_JID_LIKE)
@settings(max_examples=500)
def test_parse_is_idempotent_and_raises_only_jid_error(text: str) -> None:
    try:
        jid = Jid.parse_untrusted(text)
    except JidError:  # any other exception fails the test
        return
    again = Jid.parse_untrusted(str(jid))
    assert again == jid
    assert str(again) == str(jid)
    assert Jid(jid.local, jid.domain, jid.resource) == jid


@given(_JID_LIKE)
@settings(max_examples=300)
def test_impp_address_agrees_with_jid(text: str) -> None:
    try:
        jid = Jid.parse_untrusted(text)
    except JidError:
        with pytest.raises(AddressError):
            ImppAddress.from_jid(text)
        return
    if jid.local is None:
        with pytest.raises(AddressError):
            ImppAddress.from_jid(text)
        return
    address = ImppAddress.from_jid(text)
    assert address.to_jid() == jid
    assert ImppAddress.parse(address.im_uri) == ImppAddress.of(jid.bare)
