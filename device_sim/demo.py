"""``impp-devices demo``: one device's message and presence, end to end, through the real pieces.

The relay (which binds a device session to its upstream account) and the durable store are not
built yet, so the demo does their wiring itself, in order, and says so. Everything else is the
project's own code talking to real processes over loopback:

1. a private Prosody (device_sim/domain_server.py) with two accounts, the device's and a person's;
2. enrollment: the gateway's CA issues the device an S/MIME certificate (gateway/signing), and
   device and gateway get EDHOC credentials (CCS, P-256);
3. the device authenticates to the gateway with EDHOC (method 3, suite 2) inside the session
   layer's handshake packets, over a real UDP socket (gateway/session, gateway/transport);
4. the device sends a SendMessage (gateway/wire) in a protected record;
5. the gateway maps it to Message/CPIM, signs it on the device's behalf (RFC 3923), and sends it
   as the device's account with our XMPP client (STARTTLS, SCRAM); the person, a second session
   of our client, receives it and checks the ``<e2e/>`` signature; the receipt and the person's
   reply travel back to the device as a DeliveryReport and an IncomingMessage;
6. the device's SetPresence becomes a signed PIDF in a directed ``<presence/>``;
7. a table of bytes per operation, and the list of what is not built yet.

Every figure printed is measured in this run. Nothing is faked: a step that fails stops the demo
with a non-zero exit status and says which step and why.
"""

from __future__ import annotations

import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import trio
from cryptography.hazmat.primitives.serialization import Encoding

from device_sim.demo_parts import (
    HandshakeRecord,
    RecordingInitiator,
    RecordingResponder,
    Tap,
    TappedDeviceSession,
    new_p256_private_key,
)
from device_sim.demo_report import DemoError, Narrator
from device_sim.demo_steps import (
    STEP_TIMEOUT,
    DemoRun,
    Upstream,
    authenticate,
    log_in,
    relay_message,
    say_goodbye,
    send_from_device,
    update_presence,
)
from device_sim.domain_server import Account, ProsodyError, ProsodyServer
from gateway import wire
from gateway.edhoc import CipherSuite, Credential, Curve, IdCred, Initiator, Method, Responder
from gateway.impp import ImppAddress
from gateway.session import (
    EdhocInitiator,
    EdhocResponder,
    GatewaySessions,
    TicketKeyRing,
    WireCodec,
)
from gateway.signing import CertificateAuthority, E2eVerifier
from gateway.transport import DeviceDriver, UdpEndpoint, run_device_over_udp
from gateway.xmpp import ClientConfig, Jid
from gateway.xmpp.net import ServerAddress, TrustStore, UpstreamSettings, open_upstream_manager

DEVICE_LOCALPART = "sensor-1"
PERSON_LOCALPART = "alice"
DEVICE_KID = b"\x01"
GATEWAY_KID = b"\x0a"
DEVICE_C_I = b"\x37"


def run_demo(out: TextIO) -> int:
    """Run the whole demo, writing the narrative to ``out``; 0 on success, 1 on failure."""
    narrator = Narrator(out)
    narrator.title("impp-devices demo: a constrained device talks to an XMPP user via the gateway")
    started = time.monotonic()
    try:
        directory = _run_in_temporary_directory(narrator)
    except BaseException as raised:  # every failure becomes one clear message and status 1
        failure = _unwrap(raised)
        if isinstance(failure, KeyboardInterrupt | SystemExit):
            raise
        step = narrator.current_step
        if isinstance(failure, DemoError | ProsodyError):
            out.write(f"\ndemo failed at step {step}: {failure}\n")
        elif isinstance(failure, trio.TooSlowError):
            out.write(f"\ndemo failed at step {step}: no answer within {STEP_TIMEOUT:.0f} s\n")
        else:
            out.write(f"\ndemo failed at step {step}: unexpected {type(failure).__name__}\n")
            traceback.print_exception(failure, file=out)
        return 1
    narrator.step(7, "What it cost, and what is missing")
    narrator.summary()
    narrator.not_built()
    out.write(
        f"\nDemo finished in {time.monotonic() - started:.1f} s. Prosody stopped, no process "
        f"left behind, temporary directory {directory} removed.\n"
    )
    return 0


def _unwrap(error: BaseException) -> BaseException:
    """The first real failure inside (possibly nested) exception groups."""
    while isinstance(error, BaseExceptionGroup):
        inner = [e for e in error.exceptions if not isinstance(e, trio.Cancelled)]
        error = (inner or list(error.exceptions))[0]
    return error


def _run_in_temporary_directory(narrator: Narrator) -> str:
    """Step 1, then steps 2-6 under trio; Prosody and its directory are gone on return."""
    with tempfile.TemporaryDirectory(prefix="impp-demo-") as directory:
        narrator.step(1, "A private XMPP domain server (Prosody) on loopback")
        server = ProsodyServer(Path(directory))
        try:
            server.start()
            narrator.say(
                f"Prosody serves {server.domain} on {server.host}:{server.c2s_port} (c2s, "
                "STARTTLS with a certificate from a throw-away CA)"
            )
            device_account = server.create_user(DEVICE_LOCALPART)
            person_account = server.create_user(PERSON_LOCALPART)
            narrator.say(f"registered {device_account.jid} (the device's account)")
            narrator.say(f"registered {person_account.jid} (a person)")
            trio.run(_demo, narrator, server, device_account, person_account)
        finally:
            server.stop()
        leftover = server.running_processes()
    _check_clean(leftover, directory)
    return directory


def _check_clean(leftover: list[int], directory: str) -> None:
    if leftover:
        raise DemoError(f"Prosody processes left behind: {leftover}")
    if Path(directory).exists():
        raise DemoError(f"temporary directory {directory} was not removed")


def _lookup(credential: Credential) -> Callable[[IdCred], Credential | None]:
    """A one-entry credential registry (the store will hold the real one)."""
    public = credential.public()

    def lookup(id_cred: IdCred) -> Credential | None:
        return public if id_cred.matches(public) else None

    return lookup


async def _demo(
    narrator: Narrator, server: ProsodyServer, device_account: Account, person_account: Account
) -> None:
    """Steps 2 to 6."""
    narrator.step(2, "Enrollment: the gateway certifies the device and both get EDHOC keys")
    device_address = ImppAddress.parse(device_account.jid)
    ca = CertificateAuthority.create(now=time.time())
    credential = ca.enroll(device_address, now=time.time())
    certificate = credential.certificate.public_bytes(Encoding.DER)
    narrator.say(
        f"the gateway's CA ({ca.name!r}) issued the S/MIME certificate of "
        f"{device_address.im_uri}: {len(certificate)} B DER, P-256; it stays at the gateway, "
        "which signs on the device's behalf"
    )
    device_edhoc = Credential.new_ccs(
        curve=Curve.P256,
        private_key=new_p256_private_key(),
        kid=DEVICE_KID,
        subject=device_account.jid,
    )
    gateway_edhoc = Credential.new_ccs(
        curve=Curve.P256,
        private_key=new_p256_private_key(),
        kid=GATEWAY_KID,
        subject=f"gateway.{server.domain}",
    )
    narrator.say(
        f"device EDHOC credential: CCS of {len(device_edhoc.encoded)} B, kid "
        f"0x{DEVICE_KID.hex()}, static P-256 DH key"
    )
    narrator.say(
        f"gateway EDHOC credential: CCS of {len(gateway_edhoc.encoded)} B, kid "
        f"0x{GATEWAY_KID.hex()}; each side trusts the other's public credential (in memory: "
        "gateway/store is not built yet)"
    )
    record = HandshakeRecord()

    def responder(connection_id: bytes) -> RecordingResponder:
        edhoc = Responder(
            suites=[CipherSuite.SUITE_2],
            c_r=connection_id,
            credential=gateway_edhoc,
            credential_lookup=_lookup(device_edhoc),
        )
        return RecordingResponder(EdhocResponder(edhoc), record)

    def initiator() -> RecordingInitiator:
        edhoc = Initiator(
            method=Method.STATIC_DH_STATIC_DH,
            suites=[CipherSuite.SUITE_2],
            c_i=DEVICE_C_I,
            credential=device_edhoc,
            credential_lookup=_lookup(gateway_edhoc),
        )
        return RecordingInitiator(EdhocInitiator(edhoc), record)

    core = GatewaySessions(
        handshake_factory=responder, codec=WireCodec(), ticket_keys=TicketKeyRing()
    )
    tap = Tap()
    device = TappedDeviceSession(tap=tap, handshake_factory=initiator, codec=WireCodec())
    run = DemoRun(
        narrator=narrator,
        endpoint=UdpEndpoint(core, host="127.0.0.1", port=0),
        driver=DeviceDriver(device),
        tap=tap,
        record=record,
        device_account=device_account,
        person_account=person_account,
        ca=ca,
        credential=credential,
    )
    async with trio.open_nursery() as nursery:
        address = await nursery.start(run.endpoint.serve)
        nursery.start_soon(run_device_over_udp, run.driver, ("127.0.0.1", address[1]))
        await authenticate(run, address)
        operation, record_size = await send_from_device(run)
        await _upstream(run, server, operation, record_size)
        await say_goodbye(run)
        nursery.cancel_scope.cancel()


async def _upstream(
    run: DemoRun, server: ProsodyServer, operation: wire.SendMessage, record_size: int
) -> None:
    """Steps 5 and 6, with both XMPP sessions open; leaving closes them cleanly."""
    run.narrator.step(5, "The gateway signs the message for the device and sends it over XMPP")
    settings = UpstreamSettings(
        trust=TrustStore(ca_file=server.ca_file, use_system_store=False),
        static_hosts={server.domain: [ServerAddress(server.host, server.c2s_port)]},
    )
    device_jid = Jid.parse_untrusted(run.device_account.jid)
    person_jid = Jid.parse_untrusted(run.person_account.jid)
    async with open_upstream_manager(settings) as manager:
        up = Upstream(
            device=await manager.open_session(
                ClientConfig(
                    jid=device_jid, password=run.device_account.password, resource="gateway"
                )
            ),
            person=await manager.open_session(
                ClientConfig(jid=person_jid, password=run.person_account.password, resource="phone")
            ),
            device_jid=device_jid,
            person_jid=person_jid,
            person_verifier=E2eVerifier(run.ca.trust_store()),
            gateway_verifier=E2eVerifier(run.ca.trust_store()),
        )
        await log_in(up, run.narrator)
        full_jid = await relay_message(run, up, operation, record_size)
        await update_presence(run, up, full_jid)
        run.narrator.say(
            "closing: both XMPP streams end with </stream:stream>; the gateway says goodbye "
            "to the device"
        )
