"""The one signature-status flag shared by the device protocol and the signature verifier.

A device receives, with each inbound message or presence, what the gateway found when it checked
the sender's RFC 3923 signature. The verifier (:mod:`gateway.signing`) produces the flag and the
wire protocol (:mod:`gateway.wire`) carries it as its integer value; the enum lives here, outside
both packages, so that neither depends on the other to share it.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["SignatureStatus"]


class SignatureStatus(IntEnum):
    """What the gateway found when it checked the sender's signature (RFC 3923)."""

    NONE = 0  # the object was not signed (no <e2e/>)
    VERIFIED = 1  # signed, and the signature and the signer's certificate checked out
    FAILED = 2  # signed, but the signature or certificate did not verify
