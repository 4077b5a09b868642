"""What a device spends per operation and per typical day: CPU, radio bytes, energy, battery life.

Ours is measured by running the real device client (device_sim.client) against the real gateway
session core in lock step (:mod:`bench._device_pair`): EDHOC work is counted exactly on a
:class:`~device_sim.budget.MeteredCrypto`, record AEAD and CBOR bytes per datagram, bytes per
datagram plus the link's IPv4+UDP headers, round trips as the device's flights. The typical day
(:data:`DAY`) is run for real: one full handshake, then every ten minutes a wake (resumption with
the ticket, Wake, the held presence after a MissedSummary), the messages due, and Sleep.

The baseline is a device speaking XMPP itself (RFC 6120 with STARTTLS, TLS 1.3, SCRAM, XEP-0198).
Its bytes come from ``bench/results/air-bytes.json`` when that record exists (slixmpp through a
counting proxy to Prosody, same machine); otherwise they are measured here with the gateway's own
XMPP client on a counting socket under TLS against a private Prosody (``bench/xmpp.py``'s probe).
Its CPU work is counted from the protocols, primitive by primitive (bench/_device_cost_model.py:
``tls13_full_handshake``, ``scram_login``): the device must do that work whatever library it
runs. Its idle cost is the cheaper of keeping TCP and the carrier's NAT binding alive (a
keep-alive inside every NAT timeout) and logging in again at each wake (TLS 1.3 resumption, SCRAM
with a cached salted password, XEP-0198 resumption); the record says which, and gives the case
of a NAT that keeps idle TCP as long as RFC 5382 asks beside it.

Energy: CPU cycles on each device profile (device_sim/budget.py, docs/device-budget.md) and the
radio's power on the LTE-M preset (device_sim/radio/presets.py): airtime for the bytes, the
wake-up energy, the radio idle while waiting on round trips, the sleep current the rest of the
day. Battery life is a named battery's energy over a day's energy.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from bench._device_cost_model import (
    DAY,
    DAY_SECONDS,
    IPV4_UDP,
    RFC5382_TCP_TIMEOUT,
    Cost,
    Schedule,
    certificate_sizes,
    cycles,
    difference,
    energy_mj,
    measure_xmpp_bytes,
    rsa2048_verify_cycles,
    xmpp_bytes_from_air_bytes,
    xmpp_day,
    xmpp_operations,
)
from bench._device_pair import CountedPair
from bench._framework import RESULTS_DIR, Chart, Goal, Report, Table, comparison
from device_sim.budget import (
    PROFILES,
    DeviceProfile,
    RadioActivity,
    radio_energy,
)
from device_sim.radio.presets import LinkPreset, preset
from gateway import wire

DESCRIPTION = "device CPU, radio bytes, energy and battery life per operation and per day"

TEXT_20 = "See you at six, ok?!"  # 20 characters, as in air-bytes
assert len(TEXT_20) == 20
LINK = "lte-m"  # the preset whose radio power prices the bytes (device_sim/radio/presets.py)


@dataclass(frozen=True)
class Battery:
    """A named battery: nominal voltage and capacity, with where the figures come from."""

    name: str
    volts: float
    milliamp_hours: float
    source: str

    @property
    def joules(self) -> float:
        """Energy at the nominal voltage."""
        return self.volts * self.milliamp_hours / 1000 * 3600


BATTERY = Battery(
    name="2x AA lithium (Energizer L91) in series",
    volts=3.0,
    milliamp_hours=3000.0,
    source=(
        "Energizer L91 datasheet: 1.5 V nominal per cell, about 3000-3500 mAh depending on "
        "drain; 3000 mAh taken"
    ),
)

# ---- ours, measured ------------------------------------------------------------------------


class _Meter:
    """Differences of the pair's counters around one operation."""

    def __init__(self, pair: CountedPair) -> None:
        self.pair = pair
        self.counts = replace(pair.budget.counts)
        self.tally = pair.tally.snapshot()
        self.wakeups = pair.budget.wakeups

    def cost(self) -> Cost:
        sent_n, sent_b, received_n, received_b, flights = (
            a - b for a, b in zip(self.pair.tally.snapshot(), self.tally, strict=True)
        )
        return Cost(
            counts=difference(self.pair.budget.counts, self.counts),
            payload_sent=sent_b,
            payload_received=received_b,
            link_sent=sent_b + IPV4_UDP * sent_n,
            link_received=received_b + IPV4_UDP * received_n,
            round_trips=flights,
            wakeups=self.pair.budget.wakeups - self.wakeups,
        )


def measure_ours_operations() -> dict[str, Cost]:
    """Each operation once, on the real client and gateway core."""
    pair = CountedPair()
    costs: dict[str, Cost] = {}
    meter = _Meter(pair)
    pair.connect()
    costs["session set-up (EDHOC, ticket included)"] = replace(meter.cost(), wakeups=1)
    meter = _Meter(pair)
    pair.client.send_text(1, TEXT_20)
    pair.settle()
    costs["send a 20-character message (ack + delivery report)"] = meter.cost()
    meter = _Meter(pair)
    pair.application.deliver(wire.PresenceNotification(contact=2, open=True))
    pair.settle()
    costs["receive a contact's presence"] = meter.cost()
    meter = _Meter(pair)
    pair.client.set_presence(available=True, show=wire.Show.AWAY)
    pair.settle()
    costs["presence update"] = meter.cost()
    meter = _Meter(pair)
    pair.sleep_until_radio_off(DAY.wake_interval)
    pair.now += DAY.wake_interval
    pair.wake()
    costs["sleep, then wake with resumption (nothing held)"] = meter.cost()
    return costs


def measure_ours_day(schedule: Schedule) -> Cost:
    """The typical day, run for real: one handshake, then wake / work / sleep every interval."""
    pair = CountedPair(seed=11)
    meter = _Meter(pair)
    pair.connect()
    presence_sent = messages_sent = 0
    for wake in range(schedule.wakes):
        if wake:
            pair.now += schedule.wake_interval
            pair.wake()
        due_messages = (wake + 1) * schedule.messages_sent // schedule.wakes - messages_sent
        for _ in range(due_messages):
            pair.client.send_text(1, TEXT_20)
            messages_sent += 1
        pair.settle()
        pair.sleep_until_radio_off(schedule.wake_interval)
        due_presence = (wake + 1) * schedule.presence_received // schedule.wakes - presence_sent
        for index in range(due_presence):
            pair.application.deliver(wire.PresenceNotification(contact=2 + index % 5, open=True))
            presence_sent += 1
    pair.now += schedule.wake_interval
    cost = meter.cost()
    if messages_sent != schedule.messages_sent or presence_sent != schedule.presence_received:
        raise RuntimeError("the day's schedule was not run in full")
    return replace(cost, wakeups=schedule.wakes)


# ---- the run ----------------------------------------------------------------------------------


def _profile_figures(
    profile: DeviceProfile, link: LinkPreset, cost: Cost, seconds: float
) -> dict[str, float]:
    cpu_cycles = cycles(profile, cost)
    cpu_ms = cpu_cycles / profile.clock_hz * 1000
    millijoules = energy_mj(profile, link, cost, seconds)
    return {"cpu_ms": cpu_ms, "cycles": cpu_cycles, "mj": millijoules}


def run(quick: bool) -> Report:
    """Measure ours, read or measure the XMPP-direct bytes, price both on every profile."""
    link = preset(LINK).lossless()
    ours_ops = measure_ours_operations()
    ours_day = measure_ours_day(DAY)
    air_bytes = xmpp_bytes_from_air_bytes(RESULTS_DIR / "air-bytes.json")
    measured = air_bytes if air_bytes is not None else measure_xmpp_bytes()
    der = certificate_sizes()
    rows: list[dict[str, Any]] = []
    goals: list[Goal] = []
    notes = [
        f"XMPP-direct bytes: {measured.source}.",
        f"Radio: the {link.name} preset's power figures (device_sim/radio/presets.py); CPU: the "
        "device profiles of device_sim/budget.py (docs/device-budget.md gives their sources).",
        f"Battery: {BATTERY.name}, {BATTERY.volts} V x {BATTERY.milliamp_hours:.0f} mAh = "
        f"{BATTERY.joules:,.0f} J ({BATTERY.source}); self-discharge and the MCU's own sleep "
        "current are left out for both devices alike.",
        "Ours counted on the real device client and gateway session core (lock step, lossless "
        "link); the day is run for real. Our round trips are the device's flights (bursts it "
        "sends, lone acknowledgements included), an upper bound on the waits that keep its "
        "radio on. The XMPP-direct CPU work is counted from RFC 8446 "
        "(TLS 1.3 client), RFC 5802 (SCRAM, 4096 PBKDF2 iterations) and the measured bytes; XML "
        "bytes are priced as CBOR bytes (a lower bound for an XML parser) and RSA-2048 is "
        "derived from each profile's P-256 figure (bench/device_cost.py rsa2048_verify_cycles).",
        f"Certificates generated for the count: RSA-2048 {der['rsa2048']} B, P-256 "
        f"{der['p256']} B DER.",
    ]
    if measured.certificate == "p256":
        notes.append(
            "The XMPP-direct login was measured with a P-256 server certificate; with RSA-2048 "
            "its downstream bytes are the measured ones plus the difference of the generated "
            "certificates' DER sizes and of two signatures (computed, not measured)."
        )
    chart_series: dict[str, list[float | None]] = {"ours": []}
    categories: list[str] = []
    for certificate in ("rsa2048", "p256"):
        chart_series[f"XMPP direct ({certificate})"] = []
    day_tables: list[list[object]] = []
    for profile in PROFILES.values():
        categories.append(profile.name)
        ours = _profile_figures(profile, link, ours_day, DAY_SECONDS)
        ours_life = BATTERY.joules * 1000 / ours["mj"]
        chart_series["ours"].append(ours_life)
        day_cycles = profile.clock_hz * DAY_SECONDS
        for certificate in ("rsa2048", "p256"):
            ops = xmpp_operations(measured, certificate, der)
            days = xmpp_day(ops, DAY, link)
            priced = {
                name: (_profile_figures(profile, link, cost, DAY_SECONDS), cost, why)
                for name, (cost, why) in days.items()
            }
            cheaper = min(priced, key=lambda name: priced[name][0]["mj"])
            base, base_cost, why = priced[cheaper]
            base_life = BATTERY.joules * 1000 / base["mj"]
            chart_series[f"XMPP direct ({certificate})"].append(base_life)
            label = f"typical day | {profile.name} | vs {certificate}"
            common = {"baseline_name": f"XMPP direct, {certificate} certificate, {cheaper}"}
            rows.append(
                comparison(
                    "operation", f"{label} | CPU", ours["cpu_ms"], base["cpu_ms"], "ms", **common
                )
            )
            rows.append(
                comparison("operation", f"{label} | energy", ours["mj"], base["mj"], "mJ", **common)
            )
            rows.append(
                comparison(
                    "operation",
                    f"{label} | battery life",
                    ours_life,
                    base_life,
                    "days",
                    **common,
                    battery=BATTERY.name,
                )
            )
            rows.append(
                comparison(
                    "operation",
                    f"{label} | radio bytes",
                    ours_day.link_bytes,
                    base_cost.link_bytes,
                    "B",
                    **common,
                )
            )
            rows.append(
                comparison(
                    "operation",
                    f"{label} | wake-ups",
                    ours_day.wakeups,
                    base_cost.wakeups,
                    "wake-ups",
                    **common,
                )
            )
            day_tables.append(
                [
                    profile.name,
                    certificate,
                    ours["cpu_ms"],
                    base["cpu_ms"],
                    ours["mj"],
                    base["mj"],
                    ours_life,
                    base_life,
                    cheaper,
                ]
            )
            if profile.name == "cortex-m4-64mhz":
                share = ours["cycles"] / day_cycles * 100
                goals.append(
                    Goal(
                        f"battery: battery life at least 10x the XMPP-direct device's "
                        f"({certificate} certificate, Cortex-M4)",
                        f"{ours_life / base_life:.1f}x ({ours_life:,.0f} vs {base_life:,.0f} "
                        f"days; baseline {cheaper})",
                        ours_life >= 10 * base_life,
                    )
                )
                notes.append(
                    f"Baseline on {profile.name} with {certificate}: {cheaper} is cheaper ({why})."
                )
                lenient_cost, lenient_why = xmpp_day(ops, DAY, link, RFC5382_TCP_TIMEOUT)[
                    "keep-alive"
                ]
                lenient = _profile_figures(profile, link, lenient_cost, DAY_SECONDS)
                lenient_life = BATTERY.joules * 1000 / lenient["mj"]
                rows.append(
                    comparison(
                        "operation",
                        f"{label} | battery life, NAT as RFC 5382 asks",
                        ours_life,
                        lenient_life,
                        "days",
                        baseline_name=f"XMPP direct, {certificate}, kept alive under a NAT that "
                        "keeps idle TCP 2 h 4 min (RFC 5382 REQ-5)",
                    )
                )
                notes.append(
                    f"If the carrier's NAT kept idle TCP as long as RFC 5382 REQ-5 asks, the "
                    f"XMPP-direct device ({certificate}) would need no keep-alive between its "
                    f"10-minute wakes ({lenient_why}): {lenient_life:,.0f} days, ours "
                    f"{ours_life / lenient_life:.2f}x; this assumes the server's stanzas wait "
                    "for free while the radio sleeps, which favours the baseline."
                )
        if profile.name == "cortex-m4-64mhz":
            share = ours["cycles"] / day_cycles * 100
            goals.insert(
                0,
                Goal(
                    "cpu: device CPU per typical day on the Cortex-M4 profile under 1% of a "
                    "day's cycles",
                    f"{share:.5f} % ({ours['cpu_ms']:,.0f} ms of CPU a day)",
                    share < 1.0,
                ),
            )
    # Per operation, on the Cortex-M4.
    m4 = PROFILES["cortex-m4-64mhz"]
    ops_rsa = xmpp_operations(measured, "rsa2048", der)
    ops_p256 = xmpp_operations(measured, "p256", der)
    pairs = [
        ("session set-up (EDHOC, ticket included)", ops_rsa["login"], "XMPP login, RSA-2048"),
        ("session set-up (EDHOC, ticket included)", ops_p256["login"], "XMPP login, P-256"),
        ("sleep, then wake with resumption (nothing held)", ops_rsa["resumption"], "XMPP re-login"),
        (
            "send a 20-character message (ack + delivery report)",
            ops_rsa["message"],
            "XMPP message + SM ack",
        ),
        ("receive a contact's presence", ops_rsa["contact presence"], "XMPP presence"),
        ("presence update", ops_rsa["presence update"], "XMPP presence update"),
    ]
    operation_table: list[list[object]] = []
    for name, base_cost, base_name in pairs:
        ours_cost = ours_ops[name]
        ours_fig = _profile_figures(m4, link, ours_cost, 0.0)
        base_fig = _profile_figures(m4, link, base_cost, 0.0)
        label = f"{name} | cortex-m4 | vs {base_name}"
        extra = {"baseline_name": base_name}
        rows.append(
            comparison(
                "operation", f"{label} | CPU", ours_fig["cpu_ms"], base_fig["cpu_ms"], "ms", **extra
            )
        )
        rows.append(
            comparison(
                "operation",
                f"{label} | radio bytes",
                ours_cost.link_bytes,
                base_cost.link_bytes,
                "B",
                **extra,
            )
        )
        rows.append(
            comparison(
                "operation", f"{label} | energy", ours_fig["mj"], base_fig["mj"], "mJ", **extra
            )
        )
        operation_table.append(
            [
                name,
                base_name,
                ours_fig["cpu_ms"],
                base_fig["cpu_ms"],
                ours_cost.link_bytes,
                base_cost.link_bytes,
                ours_cost.round_trips,
                base_cost.round_trips,
                ours_fig["mj"],
                base_fig["mj"],
            ]
        )
    details = {
        "schedule": {
            "messages_sent": DAY.messages_sent,
            "presence_received": DAY.presence_received,
            "wake_interval_s": DAY.wake_interval,
        },
        "link_preset": link.name,
        "battery": {"name": BATTERY.name, "joules": BATTERY.joules, "source": BATTERY.source},
        "ours_day_counts": {
            f.name: getattr(ours_day.counts, f.name) for f in fields(ours_day.counts)
        },
        "ours_day_link_bytes": ours_day.link_bytes,
        "ours_day_round_trips": ours_day.round_trips,
        "certificate_der_bytes": der,
        "rsa2048_verify_cycles": {p.name: rsa2048_verify_cycles(p) for p in PROFILES.values()},
    }
    m4_radio = radio_energy(
        link,
        RadioActivity(
            tx_bytes=ours_day.link_sent,
            rx_bytes=ours_day.link_received,
            wakeups=ours_day.wakeups,
            idle_seconds=ours_day.round_trips * link.round_trip,
            sleep_seconds=DAY_SECONDS,
        ),
    )
    m4_day = _profile_figures(m4, link, ours_day, DAY_SECONDS)["mj"]
    notes.append(
        f"What limits the battery ratio: of our day's {m4_day:,.0f} mJ on the Cortex-M4, "
        f"{m4_radio.wake_mj:,.0f} mJ are the radio's {ours_day.wakeups} wake-ups "
        f"({link.power.wake_energy_mj:.0f} mJ each on {link.name}) and {m4_radio.sleep_mj:,.0f} mJ "
        "its sleep current: both devices pay these alike on the same schedule, so the ratio "
        "cannot pass (baseline day) / (wake-ups + sleep) whatever the protocol costs."
    )
    del quick  # the day is cheap to run in full; --quick measures the same
    return Report(
        results=rows,
        tables=[
            Table(
                "Per operation on the Cortex-M4 (64 MHz), LTE-M radio",
                [
                    "operation",
                    "XMPP-direct",
                    "CPU ms",
                    "base ms",
                    "link B",
                    "base B",
                    "RTT",
                    "base RTT",
                    "mJ",
                    "base mJ",
                ],
                operation_table,
            ),
            Table(
                f"Typical day ({DAY.messages_sent} sent, {DAY.presence_received} presence in, "
                f"a wake every {DAY.wake_interval // 60} min) and battery life on {BATTERY.name}",
                [
                    "profile",
                    "cert",
                    "CPU ms",
                    "base ms",
                    "mJ",
                    "base mJ",
                    "days",
                    "base days",
                    "baseline",
                ],
                day_tables,
            ),
        ],
        notes=notes,
        charts=[
            Chart(
                f"Battery life on {BATTERY.name} (typical day)",
                categories,
                chart_series,
                "days",
                log_scale=False,
            )
        ],
        goals=goals,
        details=details,
    )
