"""XMPP addresses for the XMPP package: the shared :mod:`gateway.jid` type, re-exported.

The JID and its canonicalization (RFC 7622 with PRECIS and IDNA2008) live in :mod:`gateway.jid`
so that :mod:`gateway.impp` builds its addresses on the same type without depending on this
package; ``gateway.xmpp.Jid`` and ``gateway.xmpp.jid.Jid`` are that one class.
"""

from __future__ import annotations

from gateway.jid import MAX_PART_BYTES, Jid, JidError

__all__ = ["MAX_PART_BYTES", "Jid", "JidError"]
