"""Tests of the strict CBOR core shared by every protocol package."""
