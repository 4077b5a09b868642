"""The device layer's own state per idle session, for ``gateway-capacity``, in its own process:
``python -m bench._capacity_state --sessions N [--seed S] [--tracemalloc]``.

Only the gateway's session core (:class:`~gateway.session.GatewaySessions` with default limits,
real EDHOC, the real wire codec) lives in this process: no relay, no upstream, no sockets, no
event loop. Each device is a real :class:`~gateway.session.DeviceSession` driven in lock step
with the core over an in-memory link (its own host address each), through the full handshake,
the ticket and the acknowledgements, with the clock run past every pending timer but the idle
timeout; then the device's side is dropped, so what stays allocated is the gateway's session
(keys, channel, replay window, ticket state, tables).

It prints one JSON line: the resident set (VmRSS) before and after, the sessions held, and with
``--tracemalloc`` the Python heap the core kept (``tracemalloc``, after a full collection). The
RSS delta includes what tracemalloc cannot see (OpenSSL's allocations behind the AEAD objects)
but is page-granular and lowered by the allocator reusing the dropped devices' memory; the
traced figure is exact for the Python heap and blind to OpenSSL, so neither bounds the other.
The traced run also names the allocation sites that grew most.
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from bench._capacity_gateway import gateway_core
from bench._device_pair import device_credential, gateway_credential
from device_sim.client.core import INITIATOR_CONNECTION_ID
from gateway import edhoc
from gateway.session import (
    DeviceSession,
    DeviceSessionState,
    EdhocInitiator,
    GatewaySessions,
    TicketReceived,
    WireCodec,
)

SETTLE_SECONDS = 5.0  # timers due within this much (acknowledgement delays) are run
TOP_SITES = 8  # allocation sites named in the traced breakdown


def rss_bytes() -> int:
    """This process's resident set (VmRSS in /proc/self/status)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line")


def _device(credential: edhoc.Credential, gateway: edhoc.Credential) -> DeviceSession:
    def lookup(id_cred: edhoc.IdCred) -> edhoc.Credential | None:
        return gateway if id_cred.matches(gateway) else None

    def make() -> EdhocInitiator:
        return EdhocInitiator(
            edhoc.Initiator(
                method=edhoc.Method.STATIC_DH_STATIC_DH,
                suites=[edhoc.CipherSuite.SUITE_2],
                c_i=INITIATOR_CONNECTION_ID,
                credential=credential,
                credential_lookup=lookup,
            )
        )

    return DeviceSession(handshake_factory=make, codec=WireCodec())


class Clock:
    """The one clock both sides read (seconds)."""

    def __init__(self) -> None:
        self.now = 1000.0


def _exchange(core: GatewaySessions, device: DeviceSession, address: Any, now: float) -> bool:
    moved = False
    for datagram in device.datagrams_to_send(now):
        moved = True
        core.receive_datagram(datagram, address, now)
    core.handle_timeout(now)
    core.events()
    for datagram, destination in core.datagrams_to_send(now):
        if destination == address:
            moved = True
            device.receive_datagram(datagram, now)
    return moved


def establish(core: GatewaySessions, device: DeviceSession, address: Any, clock: Clock) -> bool:
    """Handshake until the ticket is in and both sides are quiet; True if it got there."""
    device.connect(clock.now)
    ticket = False
    for _ in range(10_000):
        if _exchange(core, device, address, clock.now):
            ticket = ticket or any(isinstance(e, TicketReceived) for e in device.events())
            continue
        ticket = ticket or any(isinstance(e, TicketReceived) for e in device.events())
        if device.state is DeviceSessionState.CLOSED:
            return False
        limit = clock.now + SETTLE_SECONDS
        deadlines = [
            d
            for d in (device.next_deadline(), core.next_deadline())
            if d is not None and d <= limit
        ]
        if not deadlines:
            return ticket
        clock.now = max(clock.now, min(deadlines))
        device.handle_timeout(clock.now)
        core.handle_timeout(clock.now)
    return False


def measure(sessions: int, seed: int, traced: bool) -> dict[str, Any]:
    """Open ``sessions`` idle sessions in a core of this process; what they cost (see module)."""
    rng = random.Random(seed)
    gateway = gateway_credential(rng)
    credentials = [device_credential(index, rng) for index in range(1, sessions + 1)]
    public = {c.kid or b"": c.public() for c in credentials}
    core = gateway_core(gateway, public, seed)
    clock = Clock()
    # One session first: the caches, codecs and tables every session shares are not its cost.
    warm = device_credential(sessions + 1, rng)
    public[warm.kid or b""] = warm.public()
    establish(core, _device(warm, gateway.public()), ("10.255.255.254", 1), clock)
    gc.collect()
    if traced:
        tracemalloc.start()
    traced_before = tracemalloc.get_traced_memory()[0] if traced else 0
    snapshot = tracemalloc.take_snapshot() if traced else None
    rss_before = rss_bytes()
    failed = 0
    for index, credential in enumerate(credentials):
        address = (f"10.{index // 62500 % 250}.{index // 250 % 250}.{index % 250 + 1}", 40000)
        if not establish(core, _device(credential, gateway.public()), address, clock):
            failed += 1
    gc.collect()
    traced_after = tracemalloc.get_traced_memory()[0] if traced else 0
    rss_after = rss_bytes()
    held = core.statistics().sessions - 1
    top: list[str] = []
    if snapshot is not None:
        growth = tracemalloc.take_snapshot().compare_to(snapshot, "lineno")
        top = [
            f"{'/'.join(Path(s.traceback[0].filename).parts[-2:])}:{s.traceback[0].lineno} "
            f"{s.size_diff / max(1, held):,.0f} B/session"
            for s in growth[:TOP_SITES]
        ]
    return {
        "sessions": held,
        "failed": failed,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "rss_per_session": (rss_after - rss_before) / max(1, held),
        "traced_per_session": (traced_after - traced_before) / max(1, held) if traced else None,
        "traced_top": top,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, measure, print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m bench._capacity_state")
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.sessions, args.seed, args.tracemalloc)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
