"""The package's public surface: what a user of the two roles needs, no test seams, no names
that collide with the other protocol packages' when imported side by side."""

from __future__ import annotations

import gateway.edhoc as edhoc
from gateway.edhoc._endpoint import Injection


def test_every_exported_name_exists() -> None:
    missing = [name for name in edhoc.__all__ if not hasattr(edhoc, name)]
    assert missing == []


def test_the_injection_seam_is_not_public() -> None:
    assert "Injection" not in edhoc.__all__
    assert Injection().trace is None


def test_names_that_would_collide_carry_the_protocol_prefix() -> None:
    # wire has an ErrorCode and session and xmpp an Event; edhoc's are prefixed instead.
    assert {"ErrorCode", "Event"}.isdisjoint(edhoc.__all__)
    assert {"EdhocErrorCode", "EdhocEvent"} <= set(edhoc.__all__)


def test_crypto_internals_stay_in_their_module() -> None:
    assert {"Crypto", "CryptoCounter", "KeySchedule"}.isdisjoint(edhoc.__all__)
