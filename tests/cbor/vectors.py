"""CBOR test vectors shared by the core's tests and each package's policy tests."""

from __future__ import annotations

from gateway.cbor import CborValue

# Examples from RFC 8949 Appendix A (the well-formed, deterministic ones in our subset).
RFC8949_APPENDIX_A: list[tuple[str, CborValue]] = [
    ("00", 0),
    ("17", 23),
    ("1818", 24),
    ("1903e8", 1000),
    ("1a000f4240", 1000000),
    ("1b000000e8d4a51000", 1000000000000),
    ("1bffffffffffffffff", 18446744073709551615),
    ("20", -1),
    ("3863", -100),
    ("3bffffffffffffffff", -18446744073709551616),
    ("f4", False),
    ("f5", True),
    ("f6", None),
    ("40", b""),
    ("4401020304", b"\x01\x02\x03\x04"),
    ("60", ""),
    ("6161", "a"),
    ("62c3bc", "\u00fc"),
    ("64f0908591", "\U00010151"),
    ("80", []),
    ("83010203", [1, 2, 3]),
    ("8301820203820405", [1, [2, 3], [4, 5]]),
    ("a0", {}),
    ("a201020304", {1: 2, 3: 4}),
]
