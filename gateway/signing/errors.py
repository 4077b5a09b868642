"""Error tree of the signing package (CA, CMS/DER, S/MIME, ``<e2e/>``, key files).

Every error raised here is a :class:`SigningError`, so a caller can handle the package with one
``except`` clause. ``remote`` tells the peer's fault (a signature or entity received from the
network: :class:`~gateway.signing.cms.SignatureError` from an ``..._untrusted`` function) from
local misuse or local files (:class:`~gateway.signing.ca.CaError`,
:class:`~gateway.signing.keyfiles.KeyFileError`, and ``SignatureError(remote=False)`` from the
builders). Errors of the IMPP objects a signed entity carries (CPIM, PIDF, addresses) are
:class:`gateway.impp.ImppError`; the verifier turns them into a ``FAILED`` result.
"""

from __future__ import annotations

__all__ = ["SigningError"]


class SigningError(Exception):
    """Base class of every error raised by :mod:`gateway.signing`.

    ``remote`` is True when the error was found in bytes received from a peer and False when
    local code or local files are at fault.
    """

    def __init__(self, message: str, *, remote: bool = True) -> None:
        super().__init__(message)
        self.remote = remote
