"""A loopback UDP relay that puts a :class:`DuplexLink` between a device socket and a gateway.

The device sends to the relay's port instead of the gateway's; the relay applies the uplink model
and forwards what survives to the gateway from one socket per NAT mapping (so a NAT rebinding is
a real change of source port the gateway sees); what the gateway answers to a mapping's socket
goes through the NAT check and the downlink model back to the device's address. The relay serves
one device: the latest address it heard from. Times are ``trio.current_time()``; everything else
lives in the sans-IO :class:`DuplexLink`.
"""

from __future__ import annotations

import math
import socket as stdlib_socket
from collections import Counter
from dataclasses import dataclass
from typing import Any

import trio

from device_sim.radio.duplex import DuplexLink, DuplexStatistics
from device_sim.radio.link import DatagramTooLargeError

__all__ = ["RadioRelay", "RelayStatistics"]

MAX_DATAGRAM = 65_535  # any UDP payload; the link model applies the MTU
KEEP_OLD_MAPPINGS = 4  # sockets of expired mappings kept open so late inbound is seen and dropped


@dataclass(frozen=True)
class RelayStatistics:
    """The link's counters and the relay's own drops by reason."""

    link: DuplexStatistics
    dropped: dict[str, int]


class RadioRelay:
    """Relay between one device and ``gateway`` (host, port) through ``link``."""

    def __init__(
        self, link: DuplexLink, gateway: tuple[str, int], *, host: str = "127.0.0.1"
    ) -> None:
        self.link = link
        self.gateway = gateway
        self.host = host
        self._family = stdlib_socket.AF_INET6 if ":" in host else stdlib_socket.AF_INET
        self._device_socket: trio.socket.SocketType | None = None
        self._device_address: Any = None
        self._mappings: dict[int, trio.socket.SocketType] = {}
        self._wakeup = trio.Event()
        self._dropped: Counter[str] = Counter()
        self._nursery: trio.Nursery | None = None

    def statistics(self) -> RelayStatistics:
        """A snapshot of the counters."""
        return RelayStatistics(link=self.link.statistics(), dropped=dict(self._dropped))

    async def serve(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind the device-facing socket, report its address, and relay until cancelled."""
        sock = trio.socket.socket(self._family, stdlib_socket.SOCK_DGRAM)
        with sock:
            await sock.bind((self.host, 0))
            self._device_socket = sock
            try:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._from_device, sock)
                    nursery.start_soon(self._scheduler)
                    task_status.started(sock.getsockname())
            finally:
                for mapping in self._mappings.values():
                    mapping.close()
                self._mappings.clear()

    async def _from_device(self, sock: trio.socket.SocketType) -> None:
        while True:
            try:
                data, address = await sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                self._dropped["device_receive_error"] += 1
                continue
            self._device_address = address
            try:
                self.link.send_up(data, trio.current_time())
            except DatagramTooLargeError:
                self._dropped["too_large_reported"] += 1
            self._wakeup.set()

    async def _from_gateway(self, generation: int, sock: trio.socket.SocketType) -> None:
        while True:
            try:
                data, address = await sock.recvfrom(MAX_DATAGRAM)
            except OSError:
                self._dropped["gateway_receive_error"] += 1
                continue
            if tuple(address[:2]) != tuple(self.gateway):
                self._dropped["not_from_gateway"] += 1
                continue
            if self.link.send_down(data, generation, trio.current_time()) is None:
                self._dropped["nat_no_mapping"] += 1
            self._wakeup.set()

    async def _mapping_socket(self, generation: int) -> trio.socket.SocketType:
        existing = self._mappings.get(generation)
        if existing is not None:
            return existing
        sock = trio.socket.socket(self._family, stdlib_socket.SOCK_DGRAM)
        await sock.bind((self.host, 0))
        self._mappings[generation] = sock
        assert self._nursery is not None
        self._nursery.start_soon(self._from_gateway, generation, sock)
        for old in [g for g in self._mappings if g <= generation - KEEP_OLD_MAPPINGS]:
            self._mappings.pop(old).close()
        return sock

    async def _scheduler(self) -> None:
        while True:
            now = trio.current_time()
            for up in self.link.uplink_due(now):
                mapping = await self._mapping_socket(up.generation)
                try:
                    await mapping.sendto(up.datagram, self.gateway)
                except OSError:
                    self._dropped["gateway_send_error"] += 1
            for down in self.link.downlink_due(now):
                if self._device_socket is None or self._device_address is None:
                    self._dropped["no_device_address"] += 1
                    continue
                try:
                    await self._device_socket.sendto(down.datagram, self._device_address)
                except OSError:
                    self._dropped["device_send_error"] += 1
            deadline = self.link.next_deadline()
            with trio.move_on_at(math.inf if deadline is None else deadline):
                await self._wakeup.wait()
            self._wakeup = trio.Event()
