"""The private Prosody used by the fixtures (the launcher lives in device_sim.domain_server)."""

from __future__ import annotations

from device_sim.domain_server import (
    Account,
    ProsodyError,
    ProsodyServer,
    make_test_pki,
    prosody_available,
    running_prosody,
)

__all__ = [
    "Account",
    "ProsodyError",
    "ProsodyServer",
    "make_test_pki",
    "prosody_available",
    "running_prosody",
]
