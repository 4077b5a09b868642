"""Tests of the trio adapters (gateway/transport)."""
