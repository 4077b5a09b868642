"""The cost model behind ``device-cost``: what a device's work costs, and the XMPP-direct device.

:class:`Cost` is what a device did for an operation or a day (primitives counted, bytes each way
with and without headers, round trips, wake-ups); :func:`cycles` and :func:`energy_mj` price it on
a device profile and a radio preset. The XMPP-direct device's CPU work is counted from the
protocols, primitive by primitive (:func:`tls13_full_handshake`, :func:`tls13_resumption`,
:func:`scram_login`), and its bytes are measured (:func:`xmpp_bytes_from_air_bytes`, else
:func:`measure_xmpp_bytes`); :func:`xmpp_day` builds its day both ways (kept alive, or logging in
again at each wake).
"""

from __future__ import annotations

import datetime
import json
import math
import tempfile
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from device_sim.budget import (
    DeviceProfile,
    PrimitiveCounts,
    RadioActivity,
    estimate,
    sha256_blocks,
)
from device_sim.radio.presets import LinkPreset
from gateway.edhoc.suites import Aead

IPV4_UDP = 28  # RFC 791 + RFC 768
IPV4_TCP = 20 + 20 + 12  # RFC 791 + RFC 9293 + the timestamps option Linux sends (RFC 7323)
DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Schedule:
    """A typical day."""

    messages_sent: int = 100
    presence_received: int = 300
    wake_interval: int = 600  # seconds: a wake every 10 minutes

    @property
    def wakes(self) -> int:
        """Wake-ups per day."""
        return DAY_SECONDS // self.wake_interval


DAY = Schedule()


# Idle TCP through a NAT. RFC 5382 REQ-5 asks that an established TCP flow be kept at least
# 2 h 4 min; carrier NATs are reported to time out far sooner (docs/device-budget.md cites the
# measurements; their figures are not reproduced here). The carrier case takes the emulator's
# LTE-M binding timeout (300 s, device_sim/radio/presets.py, a chosen figure); the RFC 5382 case
# is reported beside it.
RFC5382_TCP_TIMEOUT = 7440.0  # seconds: RFC 5382 REQ-5, 2 h 4 min for an established TCP flow
KEEPALIVE_MARGIN = 0.9  # send at 90 % of the timeout, so one late keep-alive does not lose it


# ---- counting helpers ------------------------------------------------------------------------


def difference(after: PrimitiveCounts, before: PrimitiveCounts) -> PrimitiveCounts:
    return PrimitiveCounts(
        **{f.name: getattr(after, f.name) - getattr(before, f.name) for f in fields(after)}
    )


@dataclass(frozen=True)
class Cost:
    """What a device did for one operation (or one day): primitives, bytes, waits, wake-ups."""

    counts: PrimitiveCounts
    payload_sent: int
    payload_received: int
    link_sent: int
    link_received: int
    round_trips: int
    wakeups: int = 0
    rsa2048_verifies: int = 0  # not in PrimitiveCounts: priced by :func:`rsa2048_verify_cycles`
    xml_bytes: int = 0  # parsed or written; priced as CBOR per byte (a lower bound for XML)

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            counts=self.counts + other.counts,
            payload_sent=self.payload_sent + other.payload_sent,
            payload_received=self.payload_received + other.payload_received,
            link_sent=self.link_sent + other.link_sent,
            link_received=self.link_received + other.link_received,
            round_trips=self.round_trips + other.round_trips,
            wakeups=self.wakeups + other.wakeups,
            rsa2048_verifies=self.rsa2048_verifies + other.rsa2048_verifies,
            xml_bytes=self.xml_bytes + other.xml_bytes,
        )

    def times(self, factor: int) -> Cost:
        """The same cost ``factor`` times."""
        total = Cost(PrimitiveCounts(), 0, 0, 0, 0, 0)
        for _ in range(factor):
            total = total + self
        return total

    @property
    def link_bytes(self) -> int:
        """Bytes on the link both ways, headers included."""
        return self.link_sent + self.link_received


def rsa2048_verify_cycles(profile: DeviceProfile) -> float:
    """Cycles of one RSA-2048 verification (e = 65537) on ``profile``, derived.

    e = 65537 takes 16 modular squarings and 1 multiplication of 2048-bit numbers. A 2048-bit
    Montgomery multiplication costs (2048/256)^2 = 64 times a 256-bit one, and a P-256 scalar
    multiplication takes about 3,300 256-bit field multiplications (256 doublings of ~10 and ~50
    additions of ~12, Jacobian coordinates), so one verification is about 17 * 64 / 3300 = 0.33
    P-256 scalar multiplications on the same core. The profiles hold no RSA figure; this keeps
    the baseline's cost proportionate to each core's measured big-number speed (and low: a real
    implementation adds reductions and copying).
    """
    return profile.p256_scalar_multiplication * (17 * 64 / 3300)


def cycles(profile: DeviceProfile, cost: Cost) -> float:
    """Cycles of ``cost`` on ``profile``."""
    counts = replace(
        cost.counts,
        cbor_bytes_decoded=cost.counts.cbor_bytes_decoded + cost.xml_bytes,
    )
    return profile.cycles(counts) + cost.rsa2048_verifies * rsa2048_verify_cycles(profile)


def energy_mj(profile: DeviceProfile, link: LinkPreset, cost: Cost, seconds: float) -> float:
    """Millijoules of ``cost`` on ``profile`` and ``link`` over ``seconds`` (sleep included)."""
    cpu_ms = cycles(profile, cost) / profile.clock_hz * 1000
    cpu_mj = cpu_ms / 1000 * profile.active_mw
    airtime = (
        cost.link_sent * 8 / link.uplink.bandwidth_bps
        + cost.link_received * 8 / link.downlink.bandwidth_bps
    )
    waiting = cost.round_trips * link.round_trip
    awake = airtime + waiting
    radio = estimate(
        profile,
        PrimitiveCounts(),
        link,
        RadioActivity(
            tx_bytes=cost.link_sent,
            rx_bytes=cost.link_received,
            wakeups=cost.wakeups,
            idle_seconds=waiting,
            sleep_seconds=max(0.0, seconds - awake),
        ),
    )
    return cpu_mj + radio.radio_mj


# ---- the XMPP-direct device, counted -------------------------------------------------------


def certificate_sizes() -> dict[str, int]:
    """DER sizes of a server certificate with an RSA-2048 and a P-256 key (generated here)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    sizes: dict[str, int] = {}
    keys: dict[str, Any] = {
        "rsa2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "p256": ec.generate_private_key(ec.SECP256R1()),
    }
    now = datetime.datetime.now(datetime.UTC)
    for name, key in keys.items():
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")])
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example CA")]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=90))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName("example.com")]), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        sizes[name] = len(certificate.public_bytes(serialization.Encoding.DER))
    return sizes


def tls13_full_handshake(certificate: str, certificate_der: int) -> Cost:
    """The client side of one TLS 1.3 full handshake (RFC 8446), primitive by primitive.

    X25519 key share: key generation and ECDH (2 scalar multiplications). Server authentication:
    the certificate's signature by its CA and the CertificateVerify signature (2 RSA-2048 or
    ECDSA P-256 verifications; a longer chain adds one per intermediate). Key schedule (§7.1):
    3 HKDF-Extract, 8 Derive-Secret, 8 traffic key/IV expansions, 2 finished keys, 2 Finished
    HMACs. Transcript hashing over the handshake messages; the TBS of the certificate hashed
    once more for its signature. Bytes and round trips are not counted here (they are measured).
    """
    signature = 256 if certificate == "rsa2048" else 72
    handshake_bytes = 250 + 90 + 30 + (certificate_der + 13) + (signature + 8) + 2 * 36
    counts = PrimitiveCounts(
        x25519_scalar_multiplications=2,
        ecdsa_p256_verifies=2 if certificate == "p256" else 0,
        sha256_bytes=handshake_bytes + certificate_der,
        sha256_blocks=sha256_blocks(handshake_bytes) + sha256_blocks(certificate_der),
        hkdf_calls=3 + 8 + 8 + 2,
    )
    for _ in range(3 + 8 + 8 + 2 + 2):
        counts.add_hmac(48)
    # The server's encrypted flight (EncryptedExtensions .. Finished) and the client's Finished.
    counts.add_aead(wire_aead := _tls_aead(), 30 + certificate_der + 13 + signature + 8 + 2 * 36)
    del wire_aead
    return Cost(
        counts=counts,
        payload_sent=0,
        payload_received=0,
        link_sent=0,
        link_received=0,
        round_trips=0,
        rsa2048_verifies=2 if certificate == "rsa2048" else 0,
    )


def _tls_aead() -> Aead:
    return Aead.AES_CCM_16_64_128  # AES-128-GCM, priced as AES-CCM (two AES passes per block)


def tls13_resumption() -> Cost:
    """TLS 1.3 resumption with a ticket (psk_dhe_ke, §2.2): ECDHE and the key schedule, no
    certificate."""
    counts = PrimitiveCounts(x25519_scalar_multiplications=2, hkdf_calls=3 + 9 + 8 + 2)
    for _ in range(3 + 9 + 8 + 2 + 3):  # + binder, 2 Finished
        counts.add_hmac(48)
    counts.sha256_bytes += 600
    counts.sha256_blocks += sha256_blocks(600)
    return Cost(counts, 0, 0, 0, 0, 0)


SCRAM_ITERATIONS = 4096  # Prosody's default; RFC 7677 §4 recommends at least 4096


def scram_login(*, cached_salted_password: bool) -> Cost:
    """SCRAM (RFC 5802 §3): PBKDF2 of ``i`` HMAC iterations, then ClientKey, StoredKey,
    ClientSignature, ServerKey and ServerSignature.

    Each PBKDF2 iteration is one HMAC over a 20/32-byte block: 2 compressions once the padded
    keys' states are kept. SHA-1 compressions are priced as SHA-256 ones (the profiles have no
    SHA-1 figure). With the salted password cached (RFC 5802 §5.1 allows it for the same salt and
    count), only the last five steps remain.
    """
    counts = PrimitiveCounts()
    if not cached_salted_password:
        counts.hmac_calls += SCRAM_ITERATIONS
        counts.sha256_blocks += 2 * SCRAM_ITERATIONS + 2
    for _ in range(4):
        counts.add_hmac(200)
    counts.sha256_bytes += 32
    counts.sha256_blocks += sha256_blocks(32)
    return Cost(counts, 0, 0, 0, 0, 0)


def tls_record(plaintext: int) -> PrimitiveCounts:
    """AEAD work of application data through TLS records."""
    counts = PrimitiveCounts()
    counts.add_aead(_tls_aead(), plaintext)
    return counts


@dataclass(frozen=True)
class LinkFigures:
    """One operation's bytes each way (payload, and on the link with headers) and round trips."""

    payload_up: int
    payload_down: int
    link_up: int
    link_down: int
    round_trips: int

    @classmethod
    def split(cls, payload: int, link: int, round_trips: int, up_share: float) -> LinkFigures:
        """Figures known only as totals, split ``up_share`` up (an estimate, said so)."""
        return cls(
            round(payload * up_share),
            payload - round(payload * up_share),
            round(link * up_share),
            link - round(link * up_share),
            round_trips,
        )

    @property
    def payload(self) -> int:
        """Payload bytes both ways."""
        return self.payload_up + self.payload_down


@dataclass(frozen=True)
class XmppBytes:
    """The XMPP-direct device's measured bytes per operation and where they come from."""

    login: LinkFigures
    resumption: LinkFigures
    message: LinkFigures
    presence_update: LinkFigures
    contact_presence: LinkFigures
    source: str
    certificate: str  # the key type of the server certificate the bytes were measured with


# Which air-bytes operation stands for each XMPP-direct figure: words its name must hold.
AIR_BYTES_OPERATIONS = {
    "login": ("set-up",),
    "resumption": ("resumption", "sleep"),
    "message": ("send", "delivery report"),
    "presence_update": ("presence update",),
    "contact_presence": ("contact's presence",),
}


def _figures_of(row: dict[str, Any]) -> LinkFigures | None:
    figures = row.get("baseline_figures")
    if not isinstance(figures, dict):
        return None
    try:
        return LinkFigures(
            int(figures["payload_up"]),
            int(figures["payload_down"]),
            int(figures["link_up"]),
            int(figures["link_down"]),
            int(figures["round_trips"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def xmpp_bytes_from_air_bytes(path: Path) -> XmppBytes | None:
    """The XMPP-direct figures of the air-bytes record, if it holds all that are needed."""
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    results = record.get("results") if isinstance(record, dict) else None
    rows = [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []
    found: dict[str, LinkFigures] = {}
    for key, words in AIR_BYTES_OPERATIONS.items():
        for row in rows:
            name = str(row.get("operation", "")).lower()
            figures = _figures_of(row)
            if figures is not None and all(word in name for word in words):
                found[key] = figures
                break
    if len(found) != len(AIR_BYTES_OPERATIONS):
        return None
    return XmppBytes(
        login=found["login"],
        resumption=found["resumption"],
        message=found["message"],
        presence_update=found["presence_update"],
        contact_presence=found["contact_presence"],
        source=(
            f"bench/results/{path.name} of {record.get('date', '?')} (slixmpp through a counting "
            "proxy to Prosody, TLS 1.3 with a P-256 certificate, kernel segment counts)"
        ),
        certificate="p256",
    )


# RFC 6120 with STARTTLS over TLS 1.3, computed: stream open, STARTTLS, the TLS flight, stream
# restart, SCRAM client-first and client-final, stream restart, bind, XEP-0198 enable, roster,
# initial presence.
LOGIN_ROUND_TRIPS = 11
# XEP-0198 resumption after a new TCP connection: the same but bind, roster and presence replaced
# by <resume/>, TLS resumed with its ticket.
RESUMPTION_ROUND_TRIPS = 8


def _tcp_link(payload: int, round_trips: int) -> int:
    """Link bytes of ``payload`` over TCP: each flight a segment each way plus its ACK."""
    return payload + IPV4_TCP * 2 * max(1, round_trips) + IPV4_TCP * math.ceil(payload / 1400)


def measure_xmpp_bytes() -> XmppBytes:
    """Measure the XMPP-direct device's bytes against a private Prosody (bench/xmpp.py's probe)."""
    import trio

    from bench.xmpp import _bytes_on_the_wire
    from device_sim.domain_server import running_prosody

    with (
        tempfile.TemporaryDirectory(prefix="bench-device-cost-") as directory,
        running_prosody(Path(directory)) as prosody,
    ):
        wire_bytes = trio.run(_bytes_on_the_wire, prosody)
    login = wire_bytes["login_with_roster_and_presence_wire_bytes"]
    message = wire_bytes["message_wire_bytes"]
    presence = wire_bytes["presence_wire_bytes"]
    # Resumption was not measured by this probe: the full login stands in (an upper bound).
    # Only totals were counted: 40 % is taken as sent by the device (an estimate).
    return XmppBytes(
        login=LinkFigures.split(login, _tcp_link(login, LOGIN_ROUND_TRIPS), LOGIN_ROUND_TRIPS, 0.4),
        resumption=LinkFigures.split(
            login, _tcp_link(login, RESUMPTION_ROUND_TRIPS), RESUMPTION_ROUND_TRIPS, 0.4
        ),
        message=LinkFigures.split(message, _tcp_link(message, 1), 1, 0.6),
        presence_update=LinkFigures.split(presence, _tcp_link(presence, 1), 1, 0.6),
        contact_presence=LinkFigures.split(presence, _tcp_link(presence, 1), 0, 0.0),
        source=(
            "measured now: the gateway's XMPP client on a counting socket under TLS to a private "
            "Prosody (no usable air-bytes record); TCP/IP headers computed per flight; "
            "resumption taken as a full login; round trips computed from RFC 6120's login "
            "sequence; directions split by estimate"
        ),
        certificate="prosody fixture",
    )


def _xmpp_cost(figures: LinkFigures) -> Cost:
    return Cost(
        counts=tls_record(figures.payload),
        payload_sent=figures.payload_up,
        payload_received=figures.payload_down,
        link_sent=figures.link_up,
        link_received=figures.link_down,
        round_trips=figures.round_trips,
        xml_bytes=figures.payload,
    )


SIGNATURE_BYTES = {"rsa2048": 256, "p256": 72}  # an RSA-2048 signature; a DER ECDSA P-256 one


def xmpp_operations(measured: XmppBytes, certificate: str, der: dict[str, int]) -> dict[str, Cost]:
    """The XMPP-direct device's cost per operation, for one kind of server certificate.

    When the bytes were measured with the other kind of certificate, the login's downstream
    bytes are corrected by the difference of the generated certificates' DER sizes and of the
    two signatures (certificate and CertificateVerify): computed, not measured.
    """
    login_figures = measured.login
    if measured.certificate in der and measured.certificate != certificate:
        extra = der[certificate] - der[measured.certificate]
        extra += 2 * (SIGNATURE_BYTES[certificate] - SIGNATURE_BYTES[measured.certificate])
        login_figures = replace(
            login_figures,
            payload_down=login_figures.payload_down + extra,
            link_down=login_figures.link_down + extra,
        )
    login = (
        _xmpp_cost(login_figures)
        + tls13_full_handshake(certificate, der[certificate])
        + scram_login(cached_salted_password=False)
    )
    resumption = (
        _xmpp_cost(measured.resumption)
        + tls13_resumption()
        + scram_login(cached_salted_password=True)
    )
    return {
        "login": replace(login, wakeups=1),
        "resumption": replace(resumption, wakeups=1),
        "message": _xmpp_cost(measured.message),
        "presence update": _xmpp_cost(measured.presence_update),
        "contact presence": _xmpp_cost(measured.contact_presence),
    }


def keepalive_cost() -> Cost:
    """One keep-alive on an idle TLS connection: a whitespace ping in a TLS record and its ACK."""
    record = 1 + 22  # one space, TLS 1.3 record header and tag (RFC 8446 §5.2)
    return Cost(
        counts=tls_record(1),
        payload_sent=record,
        payload_received=0,
        link_sent=record + IPV4_TCP,
        link_received=IPV4_TCP,
        round_trips=1,
        wakeups=1,
    )


def xmpp_day(
    operations: dict[str, Cost],
    schedule: Schedule,
    link: LinkPreset,
    nat_timeout: float | None = None,
) -> dict[str, tuple[Cost, str]]:
    """The XMPP-direct device's day both ways: kept alive, or logging in again at each wake."""
    work = operations["message"].times(schedule.messages_sent) + operations[
        "contact presence"
    ].times(schedule.presence_received)
    timeout = nat_timeout or link.nat.binding_timeout or RFC5382_TCP_TIMEOUT
    keepalive_interval = timeout * KEEPALIVE_MARGIN
    per_interval = max(0, math.ceil(schedule.wake_interval / keepalive_interval) - 1)
    keepalives = per_interval * schedule.wakes
    # Kept alive: one login a day, the scheduled wakes (radio up, a round trip to collect what
    # waits), keep-alives between them to hold the NAT binding.
    kept = operations["login"] + work + keepalive_cost().times(keepalives)
    kept = kept + replace(keepalive_cost(), wakeups=1).times(schedule.wakes - 1)
    again = operations["login"] + operations["resumption"].times(schedule.wakes - 1) + work
    return {
        "keep-alive": (
            kept,
            f"TCP kept open, a keep-alive every {keepalive_interval:.0f} s (90 % of a NAT "
            f"binding timeout of {timeout:.0f} s): "
            f"{keepalives} keep-alive wake-ups besides the {schedule.wakes} scheduled",
        ),
        "log in again": (
            again,
            "a new TCP connection at each wake: TLS 1.3 resumption, SCRAM with the salted "
            "password cached, XEP-0198 resumption",
        ),
    }
