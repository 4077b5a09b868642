"""The enrollment tests' gateway fixture (an ``init``-ed gateway for the private Prosody)."""

from __future__ import annotations

from tests.enroll.conftest import gateway

__all__ = ["gateway"]
