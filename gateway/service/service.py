"""The running gateway: device listeners, one upstream session and relay per enrolled device.

Theory of operation. :class:`GatewayService` is the trio composition of the pieces (issue 12
point 4, transparent mode). From a validated :class:`~gateway.config.Configuration` and an open
:class:`~gateway.store.GatewayStore` it:

1. loads the gateway's EDHOC identity and its S/MIME CA;
2. restores the session layer's ticket key ring from the store's named blob
   :data:`TICKET_RING_BLOB` (or makes one; :mod:`gateway.service.tickets`) and saves it back at
   once (the restore rotated it); afterwards each listener's send gate commits it whenever it
   changed, *before* the datagram with the NewTicket sealed by it is sent (after a handshake or
   a resumption), and at shutdown;
3. takes a snapshot of the device registry (:class:`~gateway.service.registry.DeviceRegistry`),
   which EDHOC's credential lookup reads: only enrolled devices have a credential, so a revoked
   device's handshake fails; its resumption (no credential involved) is closed on arrival;
4. opens one upstream XMPP session per enrolled device *at start*, not at the device's first
   session: a device that sleeps through a gateway restart must still appear available to its
   watchers and have what is sent to it collected, which needs the session before the device
   speaks. Sessions are kept while the device sleeps (the relay sets CSI inactive);
5. runs one :class:`~gateway.service.binding.DeviceBinding` per device (its relay and executor) in
   its own task scope, fed by the listeners' session events through a bounded inbox per device;
6. starts the UDP and TCP listeners of the configuration, and re-reads the registry every
   ``registry_refresh`` seconds: new devices get a binding, revoked ones lose their session,
   binding and upstream at once.

:meth:`GatewayService.request_stop` (the CLI calls it on SIGTERM/SIGINT) drains the gateway:
:attr:`GatewayService.draining` turns true at once (readiness reports it), new handshakes are
refused, the listeners stop (each says Close to its sessions; a device keeps its resumption
ticket and resumes against the next process, whose ticket ring is the one saved here), the
bindings stop, each upstream stream's XEP-0198 resumption id and counters are persisted
(committed), and then every upstream connection is dropped *without* closing its stream
(:meth:`~gateway.xmpp.net.UpstreamManager.hibernate`): the server keeps the session for
resumption, the restarted gateway resumes it from the store, and the server redelivers what
it sent meanwhile. The ticket ring is saved last; all of it within ``[gateway] drain_timeout``
seconds. The caller then closes the store, which commits what was submitted. A device's
revocation, by contrast, closes its upstream stream cleanly: nothing should resume it.

The operations side (metrics, readiness, the status page, the admin socket) is mounted in the
same nursery by :mod:`gateway.service.ops`, which reads this object's tables.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from gateway import edhoc
from gateway.config import (
    Configuration,
    ReloadPlan,
    live_configuration,
    load_gateway_identity,
    plan_reload,
)
from gateway.metrics import retire_relay
from gateway.observability import bind_context
from gateway.relay import DeviceRelay, RelayStatistics
from gateway.service.binding import (
    DeviceBinding,
    DeviceLink,
)
from gateway.service.latency import EndToEndLatency
from gateway.service.ops import start_operations
from gateway.service.registry import DeviceRegistry, EnrolledDevice
from gateway.service.relay_state import SigningKeys, relay_from_store
from gateway.service.tickets import TICKET_RING_BLOB, StoredTicketRing
from gateway.service.upstreams import UpstreamDirectory
from gateway.session import (
    ChannelConfig,
    DeviceSessionEstablished,
    DeviceSessionResumed,
    EdhocResponder,
    GatewayConfig,
    GatewaySessions,
    SessionClosed,
    WireCodec,
)
from gateway.signing import (
    CertificateAuthority,
    E2eVerifier,
    KeyEncryptionKey,
    OnBehalfSigner,
    SigningError,
)
from gateway.signing.keyfiles import read_protected_file
from gateway.store import GatewayStore, StoreError
from gateway.transport import DeviceSessionEvent, TcpListener, UdpEndpoint
from gateway.transport._internal_errors import InternalErrors
from gateway.xmpp import Jid, JidError
from gateway.xmpp.net import (
    UpstreamManager,
    UpstreamSession,
)

__all__ = [
    "DEFAULT_DEVICE_INBOX",
    "DEFAULT_REGISTRY_REFRESH",
    "TICKET_RING_BLOB",
    "GatewayService",
    "ServiceAddresses",
]

DEFAULT_REGISTRY_REFRESH = 5.0  # seconds between registry re-reads: how late a revocation bites
DEFAULT_DEVICE_INBOX = (
    64  # session events waiting for one device's binding before its listener waits
)

logger = logging.getLogger("gateway.service")


@dataclass(frozen=True)
class ServiceAddresses:
    """The bound addresses of the listeners (what ``task_status.started`` reports), and of the
    operations endpoint and admin socket when they are mounted."""

    udp: tuple[Any, ...]
    tcp: tuple[Any, ...]
    metrics_port: int | None = None
    admin_socket: Path | None = None


@dataclass
class _Listener:
    name: str
    facade: UdpEndpoint | TcpListener
    core: GatewaySessions


@dataclass
class _Bound:
    device: EnrolledDevice
    binding: DeviceBinding
    inbox: trio.MemorySendChannel[tuple[DeviceLink, object]]
    account: Jid
    verifier: E2eVerifier
    links: set[tuple[int, bytes]] = field(default_factory=set)
    last_activity: float | None = None  # trio time the device was last heard from


class GatewayService:
    """The long-running gateway (see the module docstring)."""

    def __init__(
        self,
        configuration: Configuration,
        store: GatewayStore,
        *,
        clock: Callable[[], float] = time.time,
        registry_refresh: float = DEFAULT_REGISTRY_REFRESH,
    ) -> None:
        self.configuration = configuration
        self.store = store
        self.clock = clock
        self.registry_refresh = registry_refresh
        self.registry = DeviceRegistry()
        self.counters: dict[str, int] = {}
        self._errors = InternalErrors(self.counters, logger)
        self._stop = trio.Event()
        self._counted = trio.Event()
        self._bound: dict[bytes, _Bound] = {}
        self._links: dict[tuple[int, bytes], bytes] = {}
        self._listeners: list[_Listener] = []
        self._upstreams = UpstreamDirectory(configuration, self._count)
        self._nursery: trio.Nursery | None = None
        self._tickets = StoredTicketRing(store, clock, self._count)
        self._ca: CertificateAuthority | None = None
        self._kek: KeyEncryptionKey | None = None
        self._on_behalf = OnBehalfSigner()
        self.draining = False  # true from request_stop on: readiness says so, handshakes refused
        self.listening = False  # true once every listener is bound, until the drain stops them
        self.started_at = 0.0  # trio time serve() began (uptime)
        self.verifiers: dict[bytes, E2eVerifier] = {}  # by kid, for the signature metrics
        self.latency = EndToEndLatency()  # shared by every binding; the metrics' histograms
        self.retired_relays: RelayStatistics | None = None  # unbound devices' relays, summed

    # -- public -----------------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Ask :meth:`serve` to drain and shut down (see the module docstring)."""
        self.draining = True
        self._stop.set()

    def apply_configuration(self, new: Configuration) -> ReloadPlan:
        """Take what can change live from ``new`` (a SIGHUP's re-read file; see
        :mod:`gateway.config.reload`): the session cores' limits and timeouts, the drain budget,
        the log level (the caller applies that one to logging). Returns what changed, and what
        keeps its running value until a restart."""
        plan = plan_reload(self.configuration, new)
        self.configuration = live_configuration(self.configuration, new)
        limits = self.configuration.limits
        for listener in self._listeners:
            listener.core.config = dataclasses.replace(
                listener.core.config,
                max_sessions=limits.max_sessions,
                max_handshakes=limits.max_handshakes,
                max_handshakes_per_host=limits.max_handshakes_per_host,
                handshake_timeout=limits.handshake_timeout,
                idle_timeout=limits.idle_timeout,
            )
        return plan

    @property
    def listeners(self) -> list[_Listener]:
        """The running device listeners (name, transport facade, session core)."""
        return list(self._listeners)

    @property
    def managers(self) -> dict[str, UpstreamManager]:
        """The upstream connection managers by domain ("" for the default one)."""
        return dict(self._upstreams.managers)

    @property
    def bound(self) -> dict[bytes, _Bound]:
        """Every bound device by kid: binding, account, links, last activity."""
        return dict(self._bound)

    def upstream_session(self, account: Jid) -> UpstreamSession | None:
        """The upstream session of ``account``, if its manager holds one."""
        return self._upstreams.session_of(account)

    async def close_device_session(self, kid: bytes) -> bool:
        """End every live session of the device ``kid`` (it hears Close); False if none."""
        bound = self._bound.get(kid)
        if bound is None or not bound.links:
            return False
        for index, connection_id in list(bound.links):
            listener = self._listeners[index]
            listener.core.close_session(connection_id, trio.current_time())
            await listener.facade.driver.flush()
        logger.info("%s: session closed by the operator", bound.binding.name)
        return True

    def bindings(self) -> dict[bytes, DeviceBinding]:
        """The live bindings by device kid (for tests and statistics)."""
        return {kid: bound.binding for kid, bound in self._bound.items()}

    async def serve(
        self, *, task_status: trio.TaskStatus[ServiceAddresses] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run until :meth:`request_stop`; ``task_status`` gets the listeners' addresses."""
        configuration = self.configuration
        self.started_at = trio.current_time()
        identity = load_gateway_identity(
            configuration.edhoc.key_file, configuration.edhoc.credential_file
        )
        passphrase = None
        if configuration.signing.passphrase_file is not None:
            passphrase = read_protected_file(configuration.signing.passphrase_file).strip()
        self._ca = CertificateAuthority.load(configuration.signing.ca_dir, passphrase=passphrase)
        self._kek = KeyEncryptionKey.load(configuration.signing.ca_dir, passphrase=passphrase)
        await self._tickets.restore()
        self.registry.replace(await self.store.list_devices())
        # The operations side (readiness, metrics, admin) outlives the drain, so a load
        # balancer and an operator see "draining" until the very end.
        async with trio.open_nursery() as operations:
            drain = trio.CancelScope()  # its deadline is set when the drain begins
            with drain:
                await self._serve_until_drained(identity, drain, operations, task_status)
                await self._tickets.save()
            if drain.cancelled_caught:
                self._count("drain-timed-out")
                logger.warning(
                    "drain timed out after %gs: the rest was cancelled",
                    configuration.gateway.drain_timeout,
                )
            operations.cancel_scope.cancel()
        logger.info("stopped")

    async def _serve_until_drained(
        self,
        identity: edhoc.Credential,
        drain: trio.CancelScope,
        operations: trio.Nursery,
        task_status: trio.TaskStatus[ServiceAddresses],
    ) -> None:
        configuration = self.configuration
        async with AsyncExitStack() as stack:
            # Managers first, outside the nursery that runs the bindings (trio nests scopes):
            # one per configured domain, and one for every other domain (SRV, default trust).
            await self._upstreams.open_managers(stack)
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for device in self.registry.devices():
                    await self._bind(device)
                addresses = await self._start_listeners(nursery, identity)
                self.listening = True
                nursery.start_soon(self._refresh_loop)
                addresses = await start_operations(self, operations, addresses)
                logger.info(
                    "gateway running: %d enrolled devices, udp %s, tcp %s",
                    len(self._bound),
                    ", ".join(_address(a) for a in addresses.udp) or "none",
                    ", ".join(_address(a) for a in addresses.tcp) or "none",
                )
                task_status.started(addresses)
                await self._stop.wait()
                drain.deadline = trio.current_time() + configuration.gateway.drain_timeout
                logger.info("draining: closing device sessions")
                self.listening = False
                for listener in self._listeners:
                    await listener.facade.aclose()
                for bound in self._bound.values():
                    bound.binding.stop()
                nursery.cancel_scope.cancel()
            self._nursery = None
            await self._leave_upstreams_resumable()

    async def _leave_upstreams_resumable(self) -> None:
        """Persist each upstream stream's resumption state, then drop the connections without
        closing the streams (a planned restart resumes them; see the module docstring).

        The bindings have stopped, so nothing acknowledges inbound stanzas any more: the
        checkpoint persisted here is final, and what the server sent after it is redelivered
        to the next process.
        """
        persisted = 0

        async def persist(bound: _Bound) -> None:
            nonlocal persisted
            try:
                if not await bound.binding.checkpoint_upstream():
                    return
            except StoreError as exc:
                self._count("drain-resumption-not-persisted")
                logger.warning(
                    "%s: resumption state not persisted: %s", bound.binding.name, type(exc).__name__
                )
                return
            persisted += 1

        async with trio.open_nursery() as nursery:  # concurrently: one group commit for all
            for bound in self._bound.values():
                nursery.start_soon(persist, bound)
        left = 0
        for manager in self._upstreams.managers.values():
            left += await manager.hibernate()
        self._count("drain-upstreams-hibernated", left)
        logger.info(
            "draining: %d upstream streams left resumable (%d checkpoints persisted)",
            left,
            persisted,
        )

    # -- start-up ---------------------------------------------------------------------------------

    async def _start_listeners(
        self, nursery: trio.Nursery, identity: edhoc.Credential
    ) -> ServiceAddresses:
        limits = self.configuration.limits

        def responder(connection_id: bytes) -> EdhocResponder:
            return EdhocResponder(
                edhoc.Responder(
                    suites=[edhoc.CipherSuite.SUITE_2],
                    c_r=connection_id,
                    credential=identity,
                    credential_lookup=self._lookup_unless_draining,
                )
            )

        def core(stream: bool) -> GatewaySessions:
            config = GatewayConfig(
                channel=ChannelConfig(stream=stream),
                max_sessions=limits.max_sessions,
                max_handshakes=limits.max_handshakes,
                max_handshakes_per_host=limits.max_handshakes_per_host,
                handshake_timeout=limits.handshake_timeout,
                idle_timeout=limits.idle_timeout,
                # A device's record is acknowledged only once the binding committed (or handed
                # on) every operation in it (docs/protocol.md §3.5).
                hold_acknowledgements=True,
            )
            return GatewaySessions(
                handshake_factory=responder,
                codec=WireCodec(),
                ticket_keys=self._tickets.ring,
                config=config,
            )

        udp: list[Any] = []
        tcp: list[Any] = []
        for address in self.configuration.listen.udp:
            udp_core = core(False)
            endpoint = UdpEndpoint(udp_core, host=address.host, port=address.port)
            endpoint.driver.send_gate = self._tickets.commit_if_changed
            bound = await nursery.start(endpoint.serve)
            udp.append(bound)
            self._listeners.append(_Listener(f"udp {_address(bound)}", endpoint, udp_core))
        for address in self.configuration.listen.tcp:
            tcp_core = core(True)
            listener = TcpListener(tcp_core, host=address.host, port=address.port)
            listener.driver.send_gate = self._tickets.commit_if_changed
            bound = await nursery.start(listener.serve)
            tcp.append(bound)
            self._listeners.append(_Listener(f"tcp {_address(bound)}", listener, tcp_core))
        for index in range(len(self._listeners)):
            nursery.start_soon(self._listener_loop, index)
        return ServiceAddresses(tuple(udp), tuple(tcp))

    # -- bindings ---------------------------------------------------------------------------------

    async def _bind(self, device: EnrolledDevice) -> None:
        """Build the device's relay from the store, open its upstream session, start it."""
        assert self._nursery is not None
        assert self._ca is not None
        record = device.record
        name = f"device 0x{record.kid.hex()}"
        try:
            account = Jid.parse_untrusted(record.account_jid).bare
        except JidError:
            self._count("device-account-invalid")
            logger.warning("%s: its account address is not valid; not bound", name)
            return
        try:
            relay = await self._relay_for(device, account)
        except (StoreError, SigningError) as exc:
            self._count("bind-store-error" if isinstance(exc, StoreError) else "bind-signing-error")
            logger.warning("%s: cannot read its state (%s); not bound", name, type(exc).__name__)
            return
        upstream = await self._upstreams.open_session(self.store, name, account)
        binding = DeviceBinding(
            kid=record.kid, relay=relay, store=self.store, upstream=upstream, latency=self.latency
        )
        send, receive = trio.open_memory_channel[tuple[DeviceLink, object]](DEFAULT_DEVICE_INBOX)
        verifier = self.verifiers[record.kid]
        self._bound[record.kid] = _Bound(device, binding, send, account, verifier)
        self._nursery.start_soon(self._run_binding, binding, receive, account)
        logger.info("%s: bound to %s", name, account)

    async def _relay_for(self, device: EnrolledDevice, account: Jid) -> DeviceRelay:
        assert self._ca is not None
        assert self._kek is not None
        kid = device.record.kid
        signing = SigningKeys(self._ca, self._kek, self._on_behalf)
        relay, verifier = await relay_from_store(
            self.store,
            self.configuration,
            signing,
            kid,
            account,
            now=self.clock(),
            count=self._count,
        )
        self.verifiers[kid] = verifier
        return relay

    async def _run_binding(
        self,
        binding: DeviceBinding,
        inbox: trio.MemoryReceiveChannel[tuple[DeviceLink, object]],
        account: Jid,
    ) -> None:
        """The binding's own tasks and its inbox, in one task scope; failures are contained.

        The device's kid and account are bound to this task's logging context first, so every
        line its tasks log names them (the tasks started here copy the context).
        """
        bind_context(kid=binding.kid, account=str(account))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._contained, binding.run, f"binding {binding.name}")

            async def consume() -> None:
                async for link, event in inbox:
                    if isinstance(event, DeviceSessionEstablished | DeviceSessionResumed):
                        await binding.attach(link)
                    elif isinstance(event, SessionClosed):
                        await binding.detach(link)
                    else:
                        await binding.device_event(link, event)

            nursery.start_soon(self._contained, consume, f"inbox {binding.name}")
            await binding.stopped.wait()
            nursery.cancel_scope.cancel()

    async def _contained(self, task: Callable[[], Any], what: str) -> None:
        try:
            await task()
        except Exception as exc:
            self._errors.record(f"task-failed {what}", exc)

    async def _unbind(self, kid: bytes) -> None:
        bound = self._bound.pop(kid, None)
        if bound is None:
            return
        for index, connection_id in list(bound.links):
            self._links.pop((index, connection_id), None)
            listener = self._listeners[index]
            listener.core.close_session(connection_id, trio.current_time())
            await listener.facade.driver.flush()
        bound.binding.stop()
        bound.inbox.close()
        self.retired_relays = retire_relay(self.retired_relays, bound.binding.relay.statistics())
        self.verifiers.pop(kid, None)
        await self._upstreams.manager_for(bound.account).close_session(bound.account)
        logger.info("device 0x%s: unbound (revoked or removed)", kid.hex())

    # -- the registry -----------------------------------------------------------------------------

    async def _refresh_loop(self) -> None:
        while True:
            await trio.sleep(self.registry_refresh)
            try:
                await self.refresh_registry()
            except StoreError as exc:
                self._count("registry-refresh-failed")
                logger.warning("registry refresh failed: %s", type(exc).__name__)

    async def refresh_registry(self) -> None:
        """Re-read the registry: bind new devices, unbind revoked ones (their sessions end).

        Before :meth:`serve` has started (or after it ended) there is nothing to act on.
        """
        if self._nursery is None or self._stop.is_set():
            return
        self.registry.replace(await self.store.list_devices())
        enrolled = {device.record.kid: device for device in self.registry.devices()}
        for kid in [kid for kid in self._bound if kid not in enrolled]:
            await self._unbind(kid)
        for kid, device in enrolled.items():
            if kid not in self._bound:
                await self._bind(device)

    # -- session events ---------------------------------------------------------------------------

    async def _listener_loop(self, index: int) -> None:
        listener = self._listeners[index]
        async for item in listener.facade.events:
            try:
                await self._route(index, listener, item)
            except Exception as exc:
                self._errors.record("route-failed", exc)

    async def _route(self, index: int, listener: _Listener, item: DeviceSessionEvent) -> None:
        event = item.event
        key = (index, item.connection_id)
        if isinstance(event, DeviceSessionEstablished | DeviceSessionResumed):
            device = self.registry.by_identity(event.peer_identity)
            bound = self._bound.get(device.record.kid) if device is not None else None
            what = "resumed" if isinstance(event, DeviceSessionResumed) else "established"
            if self.draining:
                self._count("session-refused-draining")
                logger.info("%s: session %s while draining: closed", listener.name, what)
                listener.core.close_session(item.connection_id, trio.current_time())
                await listener.facade.driver.flush()
                return
            if bound is None:
                self._count("session-refused")
                logger.warning(
                    "%s: session %s by identity 0x%s refused (not enrolled, or revoked)",
                    listener.name,
                    what,
                    event.peer_identity.hex(),
                )
                listener.core.close_session(item.connection_id, trio.current_time())
                await listener.facade.driver.flush()
                return
            self._links[key] = bound.device.record.kid
            bound.links.add(key)
            self._count(f"session-{what}")
            logger.info("%s: session %s via %s", bound.binding.name, what, listener.name)
        kid = self._links.get(key)
        if kid is None:
            return
        bound = self._bound.get(kid)
        if bound is None:
            return
        bound.last_activity = trio.current_time()
        if isinstance(event, SessionClosed):
            self._links.pop(key, None)
            bound.links.discard(key)
            self._count("session-closed")
            logger.info("%s: session closed (%s)", bound.binding.name, event.reason)
        link = DeviceLink(listener.facade, listener.name, item.connection_id)
        try:
            await bound.inbox.send((link, event))
        except trio.ClosedResourceError:
            self._count("event-after-unbind")

    def _count(self, reason: str, amount: int = 1) -> None:
        self.counters[reason] = self.counters.get(reason, 0) + amount
        self._counted.set()
        self._counted = trio.Event()

    async def wait_for_counters(self, predicate: Callable[[dict[str, int]], bool]) -> None:
        """Return once ``predicate(counters)`` holds, checked after each count (callers bound
        the wait); for tests and tools that act on what the service did."""
        while not predicate(self.counters):
            await self._counted.wait()

    def _lookup_unless_draining(self, id_cred: edhoc.IdCred) -> edhoc.Credential | None:
        """EDHOC's credential lookup; none while draining, so no new handshake completes."""
        if self.draining:
            self._count("handshake-refused-draining")
            return None
        return self.registry.lookup(id_cred)


def _address(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(address)
