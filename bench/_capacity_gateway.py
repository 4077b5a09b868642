"""The gateway side of ``gateway-capacity``, run as its own process: ``python -m
bench._capacity_gateway --devices N [--seed S] [--mode null|echo] [--profile FILE]``.

Mode ``null``: the gateway's real :class:`~gateway.transport.udp.UdpEndpoint` and session core
(default limits) with a :class:`~gateway.relay.DeviceRelay` per session whose upstream is null:
every stanza the relay sends is accepted and receipted at once, so the process measures the
gateway alone (no XMPP server, no store). It knows ``N`` enrolled devices (credentials derived
from the seed, as the load generator derives the private keys). Mode ``echo``: a bare trio UDP
echo server, the ceiling for any trio server on this machine.

It prints ``READY <port>`` once listening and runs until its standard input closes or says
``quit``; with ``--profile`` it runs under cProfile and writes the statistics to FILE on exit.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import random
import sys
from collections.abc import Callable
from typing import Any

import trio

from bench._device_pair import device_credential, gateway_credential
from gateway import edhoc
from gateway.jid import Jid
from gateway.relay import DeviceRelay
from gateway.relay import commands as cmd
from gateway.relay.inputs import DeviceLinkUp
from gateway.session import (
    DeviceSessionEstablished,
    DeviceSessionResumed,
    EdhocResponder,
    GatewayConfig,
    GatewaySessions,
    OperationReceived,
    TicketKeyRing,
    WireCodec,
)
from gateway.session.errors import LocalSessionError
from gateway.transport.udp import UdpEndpoint
from gateway.xmpp import events as ev

PEER = Jid.parse_untrusted("friend@example.com")


def credentials(count: int, seed: int) -> tuple[Any, dict[bytes, Any]]:
    """The gateway credential and ``count`` device credentials (public halves for the gateway)."""
    rng = random.Random(seed)
    gateway = gateway_credential(rng)
    devices = {}
    for index in range(1, count + 1):
        device = device_credential(index, rng)
        devices[device.kid or b""] = device
    return gateway, devices


def gateway_core(
    gateway: edhoc.Credential, devices: dict[bytes, edhoc.Credential], seed: int
) -> GatewaySessions:
    """The session core with default limits, real EDHOC (suite 2) and the real wire codec.

    EDHOC's credential lookup is by kid in a table, as the service's device registry does it
    (:meth:`gateway.service.registry.DeviceRegistry.lookup`): a scan of every credential would
    cost the gateway 50,000 comparisons per handshake at the 50k level, a cost of this
    benchmark and not of the gateway.
    """

    def lookup(id_cred: edhoc.IdCred) -> edhoc.Credential | None:
        if id_cred.kid is None:
            return None
        candidate = devices.get(id_cred.kid)
        return candidate if candidate is not None and id_cred.matches(candidate) else None

    def responder(connection_id: bytes) -> EdhocResponder:
        return EdhocResponder(
            edhoc.Responder(
                suites=[edhoc.CipherSuite.SUITE_2],
                c_r=connection_id,
                credential=gateway,
                credential_lookup=lookup,
            )
        )

    return GatewaySessions(
        handshake_factory=responder,
        codec=WireCodec(),
        ticket_keys=TicketKeyRing(),
        config=GatewayConfig(),
        rng=random.Random(seed),
        random_bytes=random.Random(seed + 100).randbytes,
    )


class NullUpstreamGateway:
    """The session core, one relay per session, and an upstream that accepts everything."""

    def __init__(self, endpoint: UdpEndpoint) -> None:
        self.endpoint = endpoint
        self.relays: dict[bytes, DeviceRelay] = {}  # by device identity
        self.sessions: dict[bytes, bytes] = {}  # connection id -> identity
        self.counter = 0

    def _relay(self, identity: bytes) -> DeviceRelay:
        relay = self.relays.get(identity)
        if relay is None:
            account = Jid.parse_untrusted(f"device-{identity.hex()}@example.com")
            relay = DeviceRelay(account, aliases={PEER: 1}, upstream_ready=True)
            relay.upstream_event(ev.SessionEstablished(account, True, True), trio.current_time())
            self.relays[identity] = relay
        return relay

    def _carry_out(self, connection_id: bytes, relay: DeviceRelay, commands: list[Any]) -> None:
        now = trio.current_time()
        pending = list(commands)
        while pending:
            command = pending.pop(0)
            if isinstance(command, cmd.SendToDevice):
                with contextlib.suppress(LocalSessionError):  # the session ended meanwhile
                    self.endpoint.send_operation(connection_id, command.message)
            elif isinstance(command, cmd.UpstreamSendMessage):
                pending += relay.upstream_event(
                    ev.StanzasAcknowledged(1, (command.message_id,)), now
                )
                pending += relay.upstream_event(
                    ev.ReceiptReceived(command.to, command.message_id), now
                )
            # Store commands, presence and acknowledgements: the null upstream and store take all.

    async def run(self) -> None:
        async for item in self.endpoint.events:
            event = item.event
            if isinstance(event, DeviceSessionEstablished | DeviceSessionResumed):
                self.sessions[item.connection_id] = event.peer_identity
                relay = self._relay(event.peer_identity)
                self._carry_out(
                    item.connection_id,
                    relay,
                    relay.device_operation(DeviceLinkUp(), trio.current_time()),
                )
            elif isinstance(event, OperationReceived):
                identity = self.sessions.get(item.connection_id)
                if identity is None:
                    continue
                relay = self._relay(identity)
                self._carry_out(
                    item.connection_id,
                    relay,
                    relay.device_operation(event.message, trio.current_time()),
                )


async def _until_quit(report: Callable[[], dict[str, Any]] | None = None) -> None:
    """Answer ``stats`` lines with one JSON line; return on ``quit`` or end of input."""
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buffer = b""
    while True:
        data = await stdin.receive_some(1024)
        if not data:
            return
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip() == b"quit":
                return
            if line.strip() == b"stats":
                print(json.dumps(report() if report is not None else {}), flush=True)


async def serve_null(devices: int, seed: int) -> None:
    """The gateway with a null upstream until told to quit."""
    gateway_identity, known = credentials(devices, seed)
    public = {kid: credential.public() for kid, credential in known.items()}
    del known
    core = gateway_core(gateway_identity, public, seed)
    endpoint = UdpEndpoint(core, host="127.0.0.1", port=0)
    app = NullUpstreamGateway(endpoint)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(endpoint.serve)
        nursery.start_soon(app.run)
        print(f"READY {address[1]}", flush=True)

        def report() -> dict[str, Any]:
            statistics = core.statistics()
            transport = endpoint.statistics()
            return {
                "sessions": statistics.sessions,
                "handshakes_completed": statistics.handshakes_completed,
                "resumptions": statistics.resumptions,
                "retransmissions": statistics.retransmissions,
                "core_dropped": dict(statistics.dropped),
                "transport_dropped": dict(transport.dropped),
                "relays": len(app.relays),
            }

        await _until_quit(report)
        nursery.cancel_scope.cancel()


async def serve_echo() -> None:
    """A trio UDP echo server until told to quit."""
    sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))

    async def echo() -> None:
        while True:
            data, address = await sock.recvfrom(2048)
            await sock.sendto(data, address)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(echo)
        print(f"READY {sock.getsockname()[1]}", flush=True)
        await _until_quit()
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m bench._capacity_gateway")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--mode", choices=("null", "echo"), default="null")
    parser.add_argument("--profile", default=None)
    args = parser.parse_args(argv)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    try:
        if args.mode == "echo":
            trio.run(serve_echo)
        else:
            trio.run(serve_null, args.devices, args.seed)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
