"""Error tree of the IMPP objects (addresses, Message/CPIM, PIDF, XMPP mappings).

Every parser of untrusted bytes in :mod:`gateway.impp` raises only a subclass of
:class:`ImppError`, so a caller can drop a bad object with one ``except`` clause.
Each object kind has its own class; an error says which part of the object is wrong
and why. Builders (``to_bytes`` and the dataclass constructors) raise the same classes
when handed values that cannot be encoded: both sides share the validation code, so an
object that builds also parses. A caller that must tell our misuse from the peer's
fault knows which one it called; the ``remote`` flag records it for logging and metrics.
"""

from __future__ import annotations

__all__ = [
    "AddressError",
    "CpimError",
    "ImppError",
    "MappingError",
    "PidfError",
]


class ImppError(Exception):
    """Base class of every error raised by the IMPP objects.

    ``remote`` is True when the error was found in bytes or text received from a peer
    (an ``..._untrusted`` parser) and False when local code built an invalid object.
    """

    def __init__(self, message: str, *, remote: bool = True) -> None:
        super().__init__(message)
        self.remote = remote


class AddressError(ImppError):
    """An IMPP address, ``im:``/``pres:`` URI or XMPP address is malformed.

    ``part`` names the offending component: ``"scheme"``, ``"local"``, ``"domain"``,
    ``"resource"`` or ``"address"`` (the whole text, e.g. too long or no ``@``).
    """

    def __init__(self, message: str, *, part: str = "address", remote: bool = True) -> None:
        super().__init__(message, remote=remote)
        self.part = part


class CpimError(ImppError):
    """A Message/CPIM object (RFC 3862) is malformed, too large, or cannot be encoded."""


class PidfError(ImppError):
    """A PIDF presence document (RFC 3863) is malformed, unsafe, too large, or cannot be
    encoded. (An unknown ``mustUnderstand`` extension is not an error: RFC 3863 §4.2.3 has the
    element that encloses it ignored, see :mod:`gateway.impp.pidf`.)"""


class MappingError(ImppError):
    """An XMPP stanza and a CPIM/PIDF object cannot be mapped onto each other (RFC 3922)."""
