"""The trio IMPP gateway: compact EDHOC-authenticated CBOR sessions from constrained devices in,
full XMPP with Message/CPIM, PIDF and S/MIME (RFC 3923) toward the devices' domain servers out.

Each subpackage holds one idea; see docs/architecture.md for the layers and the data flow.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
