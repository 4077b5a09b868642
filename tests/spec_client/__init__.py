"""A device client written from docs/protocol.md alone, run against the real gateway over UDP."""
