"""IMPP objects for the gateway: addresses, Message/CPIM, PIDF, XMPP <-> CPIM/PIDF mappings.

Sans-IO: every function takes and returns values; nothing here does I/O or reads the clock.
Signing these objects (the CA, CMS/S-MIME, RFC 3923 ``<e2e/>``) is :mod:`gateway.signing`, which
builds on this package; this package does not depend on it.

``__all__`` holds what a user of the package needs; limits, namespaces and text helpers stay
importable from their modules (:mod:`gateway.impp.cpim`, :mod:`gateway.impp.pidf`,
:mod:`gateway.impp.mapping_presence`).
"""

from __future__ import annotations

from gateway.impp.address import ImppAddress, cpim_to_jid, jid_to_cpim
from gateway.impp.cpim import (
    CpimAddress,
    CpimHeader,
    CpimMessage,
    Subject,
    parse_cpim_untrusted,
)
from gateway.impp.errors import AddressError, CpimError, ImppError, MappingError, PidfError
from gateway.impp.mapping_message import cpim_to_messages, message_to_cpim
from gateway.impp.mapping_presence import (
    cpim_to_presences,
    pidf_to_presences,
    presence_to_cpim,
    presence_to_pidf,
)
from gateway.impp.pidf import (
    PIDF_CONTENT_TYPE,
    Basic,
    Note,
    PidfContact,
    PidfDocument,
    PidfTuple,
    parse_pidf_untrusted,
)

__all__ = [
    "PIDF_CONTENT_TYPE",
    "AddressError",
    "Basic",
    "CpimAddress",
    "CpimError",
    "CpimHeader",
    "CpimMessage",
    "ImppAddress",
    "ImppError",
    "MappingError",
    "Note",
    "PidfContact",
    "PidfDocument",
    "PidfError",
    "PidfTuple",
    "Subject",
    "cpim_to_jid",
    "cpim_to_messages",
    "cpim_to_presences",
    "jid_to_cpim",
    "message_to_cpim",
    "parse_cpim_untrusted",
    "parse_pidf_untrusted",
    "pidf_to_presences",
    "presence_to_cpim",
    "presence_to_pidf",
]
