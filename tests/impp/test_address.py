"""IMPP addresses and the RFC 3922 §3 XMPP <-> CPIM address mapping."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from precis_i18n import get_profile

from gateway.impp import AddressError, ImppAddress, cpim_to_jid, jid_to_cpim
from gateway.jid import Jid

# Localpart characters: letters, digits and printable ASCII XMPP allows (RFC 7622 §3.3.1).
_LOCAL_ALPHABET = st.sampled_from(
    [*"abcdefghijklmnopqrstuvwxyz0123456789!#$%*+-.;=?^_`{|}~", "é", "ü", "ж", "名"]
)
locals_ = st.text(_LOCAL_ALPHABET, min_size=1, max_size=20)
# LDH labels; IDNA2008 reserves "--" in the third and fourth positions (RFC 5891 §4.2.3.1).
labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True).filter(
    lambda label: label[2:4] != "--"
)
domains = st.lists(labels, min_size=1, max_size=3).map(".".join)
_OPAQUE_STRING = get_profile("OpaqueString")


def _is_opaque_string(text: str) -> bool:
    """Whether precis-i18n's OpaqueString (RFC 8265 §4.2) accepts and keeps ``text``."""
    try:
        return _OPAQUE_STRING.enforce(text) == text
    except UnicodeError:
        return False


# Resourceparts: OpaqueString texts (RFC 7622 §3.4), already in their enforced form.
resources = st.none() | st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Cn", "Zl", "Zp")),
    min_size=1,
    max_size=12,
).filter(_is_opaque_string)
addresses = st.builds(ImppAddress, locals_, domains, resources)


def test_rfc3922_examples() -> None:
    # RFC 3922 §4.1.1: juliet@example.com/balcony -> im:juliet@example.com.
    assert jid_to_cpim("juliet@example.com/balcony") == "im:juliet@example.com"
    # RFC 3922 §5.1.1: pres: for presence.
    assert jid_to_cpim("juliet@example.com/balcony", scheme="pres") == "pres:juliet@example.com"
    # RFC 3922 §4.2.1: the scheme is removed.
    assert cpim_to_jid("im:romeo@example.net") == "romeo@example.net"


def test_parse_forms() -> None:
    jid = ImppAddress.parse("Juliet@Example.COM/balcony")
    assert (jid.local, jid.domain, jid.resource) == ("juliet", "example.com", "balcony")
    assert jid.jid == "juliet@example.com/balcony"
    assert jid.bare_jid == "juliet@example.com"
    assert jid.im_uri == "im:juliet@example.com"
    assert jid.pres_uri == "pres:juliet@example.com"
    assert ImppAddress.parse("im:juliet@example.com") == jid.bare
    assert ImppAddress.parse("pres:juliet@example.com") == jid.bare
    assert ImppAddress.parse("juliet@example.com") == jid.bare
    assert str(jid) == "juliet@example.com/balcony"


def test_escaping_rfc3922_section3() -> None:
    # §3.2 step 3: #26; #27; #2f; become & ' / and then (step 4) %-encoded.
    address = ImppAddress.parse("o#26;brien#27;s#2f;x@example.com")
    assert address.im_uri == "im:o%26brien%27s%2Fx@example.com"
    # §3.3: back again.
    assert ImppAddress.parse(address.im_uri) == address
    # Step 4: bytes outside A-Za-z0-9!$*.?_~+= are %hexhex of their UTF-8.
    assert jid_to_cpim("jean-luc@example.com") == "im:jean%2Dluc@example.com"
    assert jid_to_cpim("é@example.com") == "im:%C3%A9@example.com"
    assert jid_to_cpim("a!$*._~+=b@example.com") == "im:a!$*._~+=b@example.com"
    # "?" is in the safe set but starts mailto-style headers, so it is encoded.
    assert jid_to_cpim("a?b@example.com") == "im:a%3Fb@example.com"
    assert cpim_to_jid("im:a?b@example.com") == "a?b@example.com"
    # A literal & in a URI local part maps to #26; (§3.3 step 5).
    assert cpim_to_jid("im:a&b@example.com") == "a#26;b@example.com"
    assert cpim_to_jid("im:a'b@example.com") == "a#27;b@example.com"
    assert cpim_to_jid("im:a/b@example.com") == "a#2f;b@example.com"
    # The resource is discarded (§3.2 step 1).
    assert jid_to_cpim("a@example.com/phone") == "im:a@example.com"


def test_dots_stay_a_dot_atom() -> None:
    assert jid_to_cpim("a.b@example.com") == "im:a.b@example.com"
    assert jid_to_cpim(".a..b.@example.com") == "im:%2Ea.%2Eb%2E@example.com"
    assert cpim_to_jid("im:%2Ea.%2Eb%2E@example.com") == ".a..b.@example.com"


def test_internationalized_domain() -> None:
    address = ImppAddress.parse("anna@Bücher.example")
    assert address.domain == "bücher.example"
    assert address.im_uri == "im:anna@xn--bcher-kva.example"
    assert ImppAddress.parse(address.im_uri) == address


@pytest.mark.parametrize(
    ("text", "part"),
    [
        ("", "address"),
        ("example.com", "address"),
        ("@example.com", "local"),
        ("a@", "domain"),
        ("a@example.com/", "resource"),
        ("a b@example.com", "local"),
        ("a<b@example.com", "local"),
        ("a@exa_mple.com", "domain"),
        ("a@-example.com", "domain"),
        ("a@example..com", "domain"),
        ("a@" + "x" * 64 + ".com", "domain"),
        ("a@[::zz]", "domain"),
        ("x" * 1024 + "@example.com", "local"),
        ("im:a b@example.com", "local"),
        ("im:%4@example.com", "local"),
        ("im:%FF@example.com", "local"),
        ("im:%40@example.com", "local"),
        ("im:a@example.com/res", "domain"),
        ("im:example.com", "address"),
        ("im:é@example.com", "address"),
        ("im:a@example.com?subject=x", "address"),
        ("mailto:a@example.com", "local"),
        ("a@example.com/\u0007", "resource"),
    ],
)
def test_invalid_addresses_name_the_part(text: str, part: str) -> None:
    with pytest.raises(AddressError) as info:
        ImppAddress.parse(text)
    assert info.value.part == part
    assert info.value.remote is True
    assert str(info.value)


def test_constructor_errors_are_local() -> None:
    with pytest.raises(AddressError) as info:
        ImppAddress("a@b", "example.com")
    assert info.value.remote is False
    assert info.value.part == "local"


def test_too_long_text_refused_before_work() -> None:
    with pytest.raises(AddressError, match="longer than"):
        ImppAddress.parse("a" * 100_000)


def test_ipv6_literal() -> None:
    assert ImppAddress.parse("a@[0:0::1]").domain == "[::1]"


@given(addresses)
@settings(max_examples=200)
def test_jid_round_trip(address: ImppAddress) -> None:
    assert ImppAddress.parse(address.jid) == address


@given(addresses)
@settings(max_examples=200)
def test_uri_round_trip(address: ImppAddress) -> None:
    assert ImppAddress.parse(address.im_uri) == address.bare
    assert ImppAddress.parse(address.pres_uri) == address.bare
    assert address.im_uri.isascii()


@given(st.text(max_size=60))
@settings(max_examples=300)
def test_fuzz_parse_raises_only_address_error(text: str) -> None:
    for candidate in (text, "im:" + text, "pres:" + text, text + "@example.com"):
        try:
            result = ImppAddress.parse(candidate)
        except AddressError:  # any other exception fails the test
            continue
        else:
            assert ImppAddress.parse(result.jid) == result


def test_built_from_the_shared_jid() -> None:
    jid = Jid.parse_untrusted("Juliet@Example.COM/balcony")
    address = ImppAddress.from_jid(jid)
    assert address == ImppAddress.parse("juliet@example.com/balcony")
    assert address.to_jid() == jid
    with pytest.raises(AddressError) as info:
        ImppAddress.of(Jid.parse_untrusted("example.com/balcony"))
    assert info.value.part == "address"
    # An error of the shared type reaches IMPP callers as an AddressError naming the same part.
    with pytest.raises(AddressError) as info:
        ImppAddress.parse("henry\u2163@example.com")
    assert (info.value.part, info.value.remote) == ("local", True)


@given(addresses)
@settings(max_examples=100)
def test_address_and_jid_agree(address: ImppAddress) -> None:
    assert address.to_jid() == Jid.parse_untrusted(address.jid)
    assert str(address.to_jid()) == address.jid
