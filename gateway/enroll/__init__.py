"""Enrollment of devices: the provisioning file a device receives, and (in submodules) the steps
that make a device known to the gateway.

Only the provisioning file's reader and writer are re-exported here: the device emulator imports
this package, and the provisioning module imports neither the store nor trio. The gateway side
is imported from its modules: :mod:`gateway.enroll.enrollment` (``enroll``),
:mod:`gateway.enroll.login` (checking an account by logging in), :mod:`gateway.enroll.registration`
(XEP-0077), :mod:`gateway.enroll.revocation` (telling a running gateway about a revocation) and
:mod:`gateway.enroll.revocation_watch` (the running gateway's half of it).
"""

from __future__ import annotations

from gateway.enroll.provisioning import (
    EDHOC_METHOD,
    EDHOC_SUITE,
    MAX_PROVISIONING_SIZE,
    PROVISIONING_VERSION,
    GatewayEndpoint,
    Provisioning,
    ProvisioningError,
    Transport,
    decode_provisioning_untrusted,
    encode_provisioning,
    read_provisioning_file,
    write_provisioning_file,
)

__all__ = [
    "EDHOC_METHOD",
    "EDHOC_SUITE",
    "MAX_PROVISIONING_SIZE",
    "PROVISIONING_VERSION",
    "GatewayEndpoint",
    "Provisioning",
    "ProvisioningError",
    "Transport",
    "decode_provisioning_untrusted",
    "encode_provisioning",
    "read_provisioning_file",
    "write_provisioning_file",
]
