"""Device emulator: the device side of the compact protocol, radio links, CPU and energy budgets.

It drives the gateway the way handhelds and sensors on GPRS or NB-IoT would, and accounts for the
CPU and energy each operation costs a device. See docs/architecture.md.
"""

from __future__ import annotations

__all__: list[str] = []
