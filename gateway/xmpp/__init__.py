"""XMPP upstream (RFC 6120/6121): sans-IO stream parser, serializer, SASL and client."""
