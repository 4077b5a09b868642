"""SCRAM-SHA-1/-256 against the RFC examples and an independent server, PLAIN, and selection."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.xmpp.errors import AuthenticationFailed, LocalXmppError
from gateway.xmpp.sasl import (
    DEFAULT_MAX_ITERATIONS,
    SaltedPasswordCache,
    ScramClient,
    ScramState,
    decode_sasl_payload_untrusted,
    encode_sasl_payload,
    plain_initial_response,
    saslprep,
    select_mechanism,
)

# RFC 5802 §5 (SCRAM-SHA-1, user 'user', password 'pencil'); the folded lines joined.
RFC5802_CLIENT_NONCE = "fyko+d2lbbFgONRv9qkxdawL"
RFC5802_CLIENT_FIRST = b"n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL"
RFC5802_SERVER_FIRST = b"r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096"
RFC5802_CLIENT_FINAL = (
    b"c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts="
)
RFC5802_SERVER_FINAL = b"v=rmF9pqV8S7suAoZWja4dJRkFsKQ="

# RFC 7677 §3 (SCRAM-SHA-256, user 'user', password 'pencil'); the folded lines joined.
RFC7677_CLIENT_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC7677_CLIENT_FIRST = b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
RFC7677_SERVER_FIRST = (
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
)
RFC7677_CLIENT_FINAL = (
    b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
)
RFC7677_SERVER_FINAL = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="

VECTORS = [
    pytest.param(
        "SCRAM-SHA-1",
        RFC5802_CLIENT_NONCE,
        RFC5802_CLIENT_FIRST,
        RFC5802_SERVER_FIRST,
        RFC5802_CLIENT_FINAL,
        RFC5802_SERVER_FINAL,
        id="rfc5802",
    ),
    pytest.param(
        "SCRAM-SHA-256",
        RFC7677_CLIENT_NONCE,
        RFC7677_CLIENT_FIRST,
        RFC7677_SERVER_FIRST,
        RFC7677_CLIENT_FINAL,
        RFC7677_SERVER_FINAL,
        id="rfc7677",
    ),
]


@pytest.mark.parametrize(
    ("mechanism", "nonce", "client_first", "server_first", "client_final", "server_final"),
    VECTORS,
)
def test_rfc_example_exchanges(
    mechanism: str,
    nonce: str,
    client_first: bytes,
    server_first: bytes,
    client_final: bytes,
    server_final: bytes,
) -> None:
    client = ScramClient(mechanism, "user", "pencil", client_nonce=nonce)
    assert client.client_first() == client_first
    assert client.receive_server_first(server_first) == client_final
    client.verify_server_final(server_final)
    assert client.state is ScramState.SUCCEEDED
    assert "pencil" not in repr(client)


@pytest.mark.parametrize(
    ("mechanism", "nonce", "server_first", "server_final"),
    [
        ("SCRAM-SHA-1", RFC5802_CLIENT_NONCE, RFC5802_SERVER_FIRST, RFC5802_SERVER_FINAL),
        ("SCRAM-SHA-256", RFC7677_CLIENT_NONCE, RFC7677_SERVER_FIRST, RFC7677_SERVER_FINAL),
    ],
)
def test_wrong_server_signature_fails(
    mechanism: str, nonce: str, server_first: bytes, server_final: bytes
) -> None:
    client = ScramClient(mechanism, "user", "pencil", client_nonce=nonce)
    client.client_first()
    client.receive_server_first(server_first)
    signature = bytearray(base64.b64decode(server_final[2:]))
    signature[-1] ^= 1
    with pytest.raises(AuthenticationFailed) as caught:
        client.verify_server_final(b"v=" + base64.b64encode(bytes(signature)))
    assert caught.value.condition is None
    assert client.state is ScramState.FAILED
    with pytest.raises(LocalXmppError):
        client.verify_server_final(server_final)  # terminal: no second chance


def test_wrong_password_gives_a_different_proof_and_fails_verification() -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "pencil2", client_nonce=RFC5802_CLIENT_NONCE)
    client.client_first()
    assert client.receive_server_first(RFC5802_SERVER_FIRST) != RFC5802_CLIENT_FINAL
    with pytest.raises(AuthenticationFailed):
        client.verify_server_final(RFC5802_SERVER_FINAL)


@pytest.mark.parametrize(
    "server_final",
    [b"e=invalid-proof", b"e=other-error", b"", b"x=1", b"v=", b"v=!!!", b"v=AAAA", b"\xff"],
)
def test_bad_server_final(server_final: bytes) -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "pencil", client_nonce=RFC5802_CLIENT_NONCE)
    client.client_first()
    client.receive_server_first(RFC5802_SERVER_FIRST)
    with pytest.raises(AuthenticationFailed):
        client.verify_server_final(server_final)
    assert client.state is ScramState.FAILED


NONCE = RFC5802_CLIENT_NONCE


@pytest.mark.parametrize(
    "server_first",
    [
        b"r=someoneelse123,s=QSXCR+Q6sek8bf92,i=4096",  # nonce not ours
        b"r=" + NONCE.encode() + b",s=QSXCR+Q6sek8bf92,i=4096",  # server added nothing
        b"r=" + NONCE[:-1].encode() + b",s=QSXCR+Q6sek8bf92,i=4096",
        b"m=ext,r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf92,i=4096",  # mandatory extension
        b"r=" + NONCE.encode() + b"x,i=4096",
        b"r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf92",
        b"s=QSXCR+Q6sek8bf92,r=" + NONCE.encode() + b"x,i=4096",  # wrong order
        b"r=" + NONCE.encode() + b"x,s=not base64!,i=4096",
        b"r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf9,i=4096",  # bad padding
        b"r=" + NONCE.encode() + b"x,s=,i=4096",  # empty salt
        b"r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf92,i=4095",  # below the RFC 7677 floor
        b"r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf92,i=0",
        b"r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf92,i=-4096",
        b"r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf92,i=04096",
        b"r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf92,i=4096.0",
        b"r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf92,i=99999999999999",  # above the ceiling
        b"r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf92,i=\xd9\xa4\xd9\xa0\xd9\xa9\xd9\xa6",
        b"r=" + NONCE.encode() + b"\x01,s=QSXCR+Q6sek8bf92,i=4096",  # unprintable nonce
        b"r=" + NONCE.encode() + b"\xc3\xa9,s=QSXCR+Q6sek8bf92,i=4096",
        b"\xff\xfe",
        b"",
        b"r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf92,i=4096," + b"x" * 5000,  # too long
    ],
)
def test_bad_server_first(server_first: bytes) -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "pencil", client_nonce=NONCE)
    client.client_first()
    with pytest.raises(AuthenticationFailed):
        client.receive_server_first(server_first)
    assert client.state is ScramState.FAILED
    with pytest.raises(LocalXmppError):
        client.receive_server_first(RFC5802_SERVER_FIRST)


def test_iteration_floor_is_configurable_and_extensions_are_ignored() -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "pencil", client_nonce=NONCE, min_iterations=1000)
    client.client_first()
    final = client.receive_server_first(
        b"r=" + NONCE.encode() + b"x,s=QSXCR+Q6sek8bf92,i=1000,x=optional-extension"
    )
    assert final.startswith(b"c=biws,r=" + NONCE.encode() + b"x,p=")


def test_steps_out_of_order_are_local_errors() -> None:
    client = ScramClient("SCRAM-SHA-256", "user", "pencil")
    with pytest.raises(LocalXmppError):
        client.receive_server_first(RFC7677_SERVER_FIRST)
    with pytest.raises(LocalXmppError):
        client.verify_server_final(RFC7677_SERVER_FINAL)
    client.client_first()
    with pytest.raises(LocalXmppError):
        client.client_first()


@pytest.mark.parametrize(
    "arguments",
    [
        {"mechanism": "SCRAM-MD5"},
        {"mechanism": "SCRAM-SHA-256-PLUS"},
        {"client_nonce": "has,comma"},
        {"client_nonce": ""},
        {"min_iterations": 0},
        {"min_iterations": 10, "max_iterations": 5},
        {"password": "bell\x07"},
        {"username": ""},
    ],
)
def test_bad_construction_is_local_misuse(arguments: dict[str, object]) -> None:
    values: dict[str, object] = {"mechanism": "SCRAM-SHA-1", "username": "u", "password": "p"}
    values.update(arguments)
    with pytest.raises(LocalXmppError) as caught:
        ScramClient(**values)  # type: ignore[arg-type]
    assert "bell" not in str(caught.value)


def test_default_client_nonce_is_random_and_printable() -> None:
    first = ScramClient("SCRAM-SHA-256", "user", "pencil").client_first()
    second = ScramClient("SCRAM-SHA-256", "user", "pencil").client_first()
    assert first != second
    nonce = first.split(b",r=")[1]
    assert len(base64.b64decode(nonce)) == 24
    assert all(0x21 <= byte <= 0x7E and byte != 0x2C for byte in nonce)


def test_username_escaping_and_authzid() -> None:
    client = ScramClient("SCRAM-SHA-1", "a=b,c", "pencil", client_nonce=NONCE, authzid="x,y")
    assert client.client_first() == b"n,a=x=2Cy,n=a=3Db=2Cc,r=" + NONCE.encode()
    final = client.receive_server_first(RFC5802_SERVER_FIRST)
    assert final.startswith(b"c=" + base64.b64encode(b"n,a=x=2Cy,") + b",r=")


# RFC 4013 §3 examples (the SASLprep test table), with their expected output or error.
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("I\u00adX", "IX"),  # 1. SOFT HYPHEN mapped to nothing
        ("user", "user"),  # 2. no transformation
        ("USER", "USER"),  # 3. case preserved
        ("\u00aa", "a"),  # 4. output is NFKC, input in ISO 8859-1
        ("\u2168", "IX"),  # 5. output is NFKC, will match 1.
        ("\u0007", None),  # 6. error - prohibited character
        ("\u0627\u0031", None),  # 7. error - bidirectional check
    ],
)
def test_saslprep_rfc4013_examples(given: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(LocalXmppError):
            saslprep(given)
    else:
        assert saslprep(given) == expected


def test_saslprep_more() -> None:
    assert saslprep("pen\u00a0cil") == "pen cil"  # C.1.2 non-ASCII space -> SPACE
    assert saslprep("\u0627\u0628") == "\u0627\u0628"  # pure right-to-left is fine
    for refused in ["\ue000", "\U000e0001", "\u0221", "a\u200eb", "\u00ad"]:
        with pytest.raises(LocalXmppError):
            saslprep(refused)  # private use, tag, unassigned in 3.2, LRM, empty after mapping


def test_saslprep_applies_to_the_password() -> None:
    """A no-break space in the password gives the same proof as a space (RFC 5802 Normalize)."""
    finals = []
    for password in ["pen cil", "pen\u00a0cil"]:
        client = ScramClient("SCRAM-SHA-1", "user", password, client_nonce=NONCE)
        client.client_first()
        finals.append(client.receive_server_first(RFC5802_SERVER_FIRST))
    assert finals[0] == finals[1]


# -- against an independent server written from RFC 5802 §3 with hashlib ------------------------


def scram_server(
    mechanism: str,
    password: str,
    salt: bytes,
    iterations: int,
    client_first: bytes,
    server_nonce: str,
) -> tuple[bytes, object]:
    """Return server-first and a function checking client-final and returning server-final."""
    name = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256"}[mechanism]
    bare = client_first.decode().split(",", 2)[2]
    client_nonce = bare.split(",r=")[1]
    server_first = (
        f"r={client_nonce}{server_nonce},s={base64.b64encode(salt).decode()},i={iterations}"
    )
    salted = hashlib.pbkdf2_hmac(name, password.encode(), salt, iterations)
    stored_key = hashlib.new(name, hmac.new(salted, b"Client Key", name).digest()).digest()
    server_key = hmac.new(salted, b"Server Key", name).digest()

    def finish(client_final: bytes) -> bytes:
        without_proof, _, proof = client_final.decode().rpartition(",p=")
        auth_message = f"{bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, auth_message, name).digest()
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), signature, strict=True))
        if hashlib.new(name, client_key).digest() != stored_key:
            return b"e=invalid-proof"
        return b"v=" + base64.b64encode(hmac.new(server_key, auth_message, name).digest())

    return server_first.encode(), finish


PASSWORDS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20)


@settings(max_examples=40)
@given(
    mechanism=st.sampled_from(["SCRAM-SHA-1", "SCRAM-SHA-256"]),
    username=PASSWORDS,
    password=PASSWORDS,
    salt=st.binary(min_size=1, max_size=32),
    iterations=st.integers(min_value=1, max_value=64),
    server_nonce=st.from_regex(r"[\x21-\x2b\x2d-\x7e]{1,24}", fullmatch=True),
)
def test_against_an_independent_server(
    mechanism: str, username: str, password: str, salt: bytes, iterations: int, server_nonce: str
) -> None:
    client = ScramClient(mechanism, username, password, min_iterations=1)
    server_first, finish = scram_server(
        mechanism, password, salt, iterations, client.client_first(), server_nonce
    )
    server_final = finish(client.receive_server_first(server_first))  # type: ignore[operator]
    assert server_final.startswith(b"v=")
    client.verify_server_final(server_final)
    assert client.state is ScramState.SUCCEEDED


@settings(max_examples=200)
@given(data=st.binary(max_size=200))
def test_garbage_server_first_is_authentication_failed_only(data: bytes) -> None:
    client = ScramClient(
        "SCRAM-SHA-1", "user", "pencil", client_nonce=NONCE, min_iterations=1, max_iterations=64
    )
    client.client_first()
    try:
        client.receive_server_first(b"r=" + NONCE.encode() + data)
    except AuthenticationFailed:
        assert client.state is ScramState.FAILED


@settings(max_examples=200)
@given(data=st.binary(max_size=100))
def test_garbage_server_final_is_authentication_failed_only(data: bytes) -> None:
    client = ScramClient("SCRAM-SHA-1", "user", "pencil", client_nonce=NONCE)
    client.client_first()
    client.receive_server_first(RFC5802_SERVER_FIRST)
    with pytest.raises(AuthenticationFailed):
        client.verify_server_final(data)


# -- PLAIN and mechanism selection -----------------------------------------------------------------


def test_plain_rfc4616_examples() -> None:
    # RFC 4616 §4, first and second examples.
    assert plain_initial_response("tim", "tanstaaftanstaaf") == b"\x00tim\x00tanstaaftanstaaf"
    assert plain_initial_response("Kurt", "xipj3plmq", authzid="Ursel") == (
        b"Ursel\x00Kurt\x00xipj3plmq"
    )
    assert plain_initial_response("j\u00fcrgen", "p\u00e4ss") == "\x00jürgen\x00päss".encode()


@pytest.mark.parametrize(
    ("username", "password", "authzid"),
    [
        ("a\x00b", "p", None),
        ("a", "p\x00", None),
        ("a", "p", "z\x00"),
        ("", "p", None),
        ("a", "", None),
    ],
)
def test_plain_refuses_nul_and_empty(username: str, password: str, authzid: str | None) -> None:
    with pytest.raises(LocalXmppError):
        plain_initial_response(username, password, authzid=authzid)


@pytest.mark.parametrize(
    ("offered", "tls_active", "expected"),
    [
        (["PLAIN", "SCRAM-SHA-1", "SCRAM-SHA-256"], True, "SCRAM-SHA-256"),
        (["SCRAM-SHA-1", "PLAIN"], True, "SCRAM-SHA-1"),
        (["SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"], False, "SCRAM-SHA-1"),
        (["PLAIN"], True, "PLAIN"),
        (["DIGEST-MD5", "PLAIN", "EXTERNAL"], True, "PLAIN"),
        ([" scram-sha-256 "], False, "SCRAM-SHA-256"),
    ],
)
def test_select_mechanism(offered: list[str], tls_active: bool, expected: str) -> None:
    assert select_mechanism(offered, tls_active=tls_active) == expected


@pytest.mark.parametrize(
    "offered",
    [["PLAIN"], ["DIGEST-MD5", "PLAIN"], [], ["SCRAM-SHA-256-PLUS"], ["X-OAUTH2"]],
)
def test_select_mechanism_refuses(offered: list[str]) -> None:
    with pytest.raises(AuthenticationFailed):
        select_mechanism(offered, tls_active=False)


def test_plain_rfc6120_example() -> None:
    # RFC 6120 §6.4.2: <auth mechanism='PLAIN'>AGp1bGlldAByMG0zMG15cjBtMzA=</auth>
    response = plain_initial_response("juliet", "r0m30myr0m30")
    assert encode_sasl_payload(response) == "AGp1bGlldAByMG0zMG15cjBtMzA="


def test_sasl_payload_encoding() -> None:
    """RFC 6120 §6.4.2 and §6.4.6: '=' is zero-length data; an empty element is no data."""
    assert encode_sasl_payload(b"") == "="
    assert (
        encode_sasl_payload(RFC5802_CLIENT_FIRST) == base64.b64encode(RFC5802_CLIENT_FIRST).decode()
    )
    assert decode_sasl_payload_untrusted(None) is None
    assert decode_sasl_payload_untrusted("  ") is None
    assert decode_sasl_payload_untrusted("=") == b""
    encoded = base64.b64encode(RFC7677_SERVER_FINAL).decode()
    assert decode_sasl_payload_untrusted(f"\n{encoded}\n") == RFC7677_SERVER_FINAL


@pytest.mark.parametrize("text", ["not base64!", "QUJD=", "QU JD", "Q", "A" * 10_000])
def test_sasl_payload_decoding_refuses(text: str) -> None:
    with pytest.raises(AuthenticationFailed):
        decode_sasl_payload_untrusted(text)


@settings(max_examples=200)
@given(text=st.text(max_size=50))
def test_sasl_payload_decoding_is_total(text: str) -> None:
    try:
        decoded = decode_sasl_payload_untrusted(text)
    except AuthenticationFailed:
        return
    assert decoded is None or isinstance(decoded, bytes)


# -- the cost of Hi(): a ceiling, a cache, and a derivation the adapter may run elsewhere ----------


def _server_first_with(iterations: int) -> bytes:
    return RFC7677_SERVER_FIRST.replace(b"i=4096", b"i=%d" % iterations)


def test_default_iteration_ceiling_refuses_what_a_hostile_server_asks() -> None:
    assert DEFAULT_MAX_ITERATIONS == 100_000
    client = ScramClient("SCRAM-SHA-256", "user", "pencil", client_nonce=RFC7677_CLIENT_NONCE)
    client.client_first()
    with pytest.raises(AuthenticationFailed, match="above the ceiling"):
        client.begin_server_first(_server_first_with(1_000_000))
    assert client.state is ScramState.FAILED
    raised = ScramClient(
        "SCRAM-SHA-256", "user", "pencil", client_nonce=RFC7677_CLIENT_NONCE,
        max_iterations=1_000_000, cache=None,
    )  # fmt: skip
    raised.client_first()
    assert raised.begin_server_first(_server_first_with(1_000_000)) is not None


def test_a_relogin_with_the_same_salt_costs_no_key_derivation() -> None:
    cache = SaltedPasswordCache()
    finals = []
    derivations = []
    for _ in range(3):
        client = ScramClient(
            "SCRAM-SHA-256", "user", "pencil", client_nonce=RFC7677_CLIENT_NONCE, cache=cache
        )
        client.client_first()
        derivation = client.begin_server_first(RFC7677_SERVER_FIRST)
        derivations.append(derivation)
        finals.append(
            client.finish_server_first(None if derivation is None else derivation.derive())
        )
        client.verify_server_final(RFC7677_SERVER_FINAL)
    assert finals == [RFC7677_CLIENT_FINAL] * 3
    assert derivations[0] is not None
    assert derivations[1:] == [None, None]
    assert (cache.misses, cache.hits) == (1, 2)  # one miss, then one look-up per exchange
    # Another salt or another password is another entry, never a wrong key.
    other = ScramClient(
        "SCRAM-SHA-256", "user", "pencil2", client_nonce=RFC7677_CLIENT_NONCE, cache=cache
    )
    other.client_first()
    assert other.begin_server_first(RFC7677_SERVER_FIRST) is not None
    assert "pencil" not in repr(cache)
    assert "pencil" not in repr(derivations[0])


def test_the_cache_is_bounded() -> None:
    cache = SaltedPasswordCache(max_entries=2)
    for index in range(3):
        cache.put(("SCRAM-SHA-256", f"pw{index}", b"salt", 4096), b"k%d" % index)
    assert len(cache) == 2
    assert cache.get(("SCRAM-SHA-256", "pw0", b"salt", 4096)) is None


def test_finish_without_a_key_or_a_cached_one_is_local_misuse() -> None:
    client = ScramClient(
        "SCRAM-SHA-256", "user", "pencil", client_nonce=RFC7677_CLIENT_NONCE, cache=None
    )
    client.client_first()
    assert client.begin_server_first(RFC7677_SERVER_FIRST) is not None
    with pytest.raises(LocalXmppError):
        client.finish_server_first(None)
