"""Every benchmark still runs (``--quick``) and writes a record of the agreed shape.

Only the shape is checked: benchmarks measure, tests never judge a duration.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

from bench import Report, Table, discover, run_benchmark
from bench._framework import Chart, Goal, command_name, comparison
from bench.report import ISSUE_GOALS, load_records, render

REPO = Path(__file__).resolve().parent.parent

# Extra arguments that keep a benchmark's quick run small in CI (the quick run itself stays what
# a person would run by hand).
CI_ARGUMENTS: dict[str, list[str]] = {
    "gateway-capacity": [
        *("--opt", "levels=100", "--opt", "seconds=1", "--opt", "resumptions=50"),
        *("--opt", "prosody_levels=10", "--opt", "state_sessions=100"),
    ],
}


def _check_record(path: Path, name: str) -> None:
    record = json.loads(path.read_text("utf-8"))
    assert record["name"] == name
    assert set(record) >= {"machine", "command", "date", "results"}
    assert set(record["machine"]) >= {"cpu_model", "cores", "python"}
    assert record["command"].startswith(f"python -m bench {name}")
    assert isinstance(record["results"], dict | list)
    assert record["results"], f"benchmark {name} reported no results"
    if isinstance(record["results"], list):
        _check_comparisons(record)


def _check_comparisons(record: dict[str, object]) -> None:
    """The comparison shape: machine details, notes, and rows with ratio = ours / baseline."""
    machine = record["machine"]
    assert isinstance(machine, dict)
    assert set(machine) >= {"cpu_model", "cores", "ram_bytes", "kernel", "python", "packages"}
    assert isinstance(record["quick"], bool)
    assert isinstance(record["notes"], list)
    rows = record["results"]
    assert isinstance(rows, list)
    for row in rows:
        assert ("operation" in row) != ("level" in row), row
        assert {"ours", "baseline", "ratio", "unit"} <= set(row), row
        assert isinstance(row["unit"], str)
        ours, baseline = row["ours"], row["baseline"]
        if isinstance(ours, int | float) and isinstance(baseline, int | float) and baseline:
            assert row["ratio"] == pytest.approx(ours / baseline, rel=1e-3), row
        else:
            assert row["ratio"] is None, row
    goals = record.get("goals", [])
    assert isinstance(goals, list)
    for goal in goals:
        assert isinstance(goal, dict)
        assert {"goal", "measured", "met"} <= set(goal)
        assert isinstance(goal["met"], bool)


@pytest.mark.parametrize("name", sorted(discover()))
def test_benchmark_runs_quick(name: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            name,
            "--quick",
            "--out",
            str(tmp_path),
            *CI_ARGUMENTS.get(name, []),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"== {name}:" in result.stdout
    _check_record(tmp_path / f"{name}.json", name)
    record = json.loads((tmp_path / f"{name}.json").read_text("utf-8"))
    for chart in record.get("charts", []):
        assert (tmp_path / chart).read_bytes().startswith(b"\x89PNG"), chart


def test_list_names_every_benchmark() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--list"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    listed = {line.split()[0] for line in result.stdout.splitlines() if line.strip()}
    assert listed == set(discover())


def test_unknown_benchmark_is_a_clear_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "no-such-bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown benchmark no-such-bench" in result.stderr


class _Toy:
    DESCRIPTION = "a toy benchmark for the runner's own test"

    @staticmethod
    def run(quick: bool) -> Report:
        return Report(
            results={"quick": quick, "ratio": 1.5},
            tables=[Table("toy", ["what", "value"], [["ratio", 1.5], ["count", 1200]])],
        )


def test_runner_writes_the_record_and_prints_tables(tmp_path: Path) -> None:
    printed: list[str] = []
    path = run_benchmark("toy", _Toy(), quick=True, out_dir=tmp_path, echo=printed.append)
    _check_record(path, "toy")
    text = "\n".join(printed)
    assert "toy" in text
    assert "1,200" in text
    assert "1.50" in text


def test_module_names_become_dashed_command_names() -> None:
    assert command_name("device_cost") == "device-cost"
    assert command_name("store") == "store"
    assert all("_" not in name for name in discover())


def test_comparison_row_has_ratio_of_ours_over_baseline() -> None:
    row = comparison("operation", "login", 100, 5400, "B", what="payload")
    assert row == {
        "operation": "login",
        "ours": 100,
        "baseline": 5400,
        "ratio": pytest.approx(100 / 5400, rel=1e-3),
        "unit": "B",
        "what": "payload",
    }
    assert comparison("level", "1k", 5.0, 0, "ops/s")["ratio"] is None
    with pytest.raises(ValueError, match="operation or level"):
        comparison("step", "x", 1, 1, "B")


class _ToyComparison:
    DESCRIPTION = "a toy comparison benchmark with a chart and goals"

    @staticmethod
    def run(quick: bool, options: dict[str, str]) -> Report:
        rows = [
            comparison("operation", "send", 40, 260, "B"),
            comparison("operation", "x", 1, 0, "B"),
        ]
        return Report(
            results=rows,
            notes=[f"options {sorted(options.items())}"],
            charts=[Chart("toy", ["send"], {"ours": [40], "baseline": [260]}, "bytes")],
            goals=[Goal("message: at least 5x fewer bytes", "6.5x", True)],
            details={"raw": 1},
        )


def test_runner_writes_comparisons_charts_goals_and_options(tmp_path: Path) -> None:
    printed: list[str] = []
    path = run_benchmark(
        "toy-comparison",
        _ToyComparison(),
        quick=True,
        out_dir=tmp_path,
        echo=printed.append,
        options={"levels": "200"},
    )
    _check_record(path, "toy-comparison")
    record = json.loads(path.read_text("utf-8"))
    assert record["charts"] == ["toy-comparison.png"]
    assert (tmp_path / "toy-comparison.png").read_bytes().startswith(b"\x89PNG")
    assert record["goals"] == [
        {"goal": "message: at least 5x fewer bytes", "measured": "6.5x", "met": True}
    ]
    assert record["details"] == {"raw": 1}
    assert record["notes"] == ["options [('levels', '200')]"]
    assert any("goal MET" in line for line in printed)


def test_options_refused_by_a_benchmark_without_them(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="takes no options"):
        run_benchmark("toy", _Toy(), quick=True, out_dir=tmp_path, options={"a": "b"})


_FIXTURE_RECORD = {
    "name": "device-cost",
    "command": "python -m bench device-cost --quick",
    "date": "2026-12-01T20:00:00+00:00",
    "quick": True,
    "machine": {
        "cpu_model": "Test CPU",
        "cores": 2,
        "ram_bytes": 4 * 2**30,
        "kernel": "6.1.0",
        "python": "3.11.7",
        "implementation": "CPython",
        "packages": {"trio": "0.35.0"},
    },
    "results": [
        {
            "operation": "typical day | cortex-m4",
            "ours": 12.5,
            "baseline": 250.0,
            "ratio": 0.05,
            "unit": "mJ",
        }
    ],
    "goals": [
        {
            "goal": "battery: battery life at least 10x the XMPP-direct device's",
            "measured": "20x",
            "met": True,
        }
    ],
    "charts": ["device-cost.png"],
    "notes": ["counted, not timed"],
}

_LEGACY_RECORD = {
    "name": "store",
    "command": "python -m bench store",
    "date": "2026-12-01T19:00:00+00:00",
    "quick": False,
    "machine": {"cpu_model": "Old CPU", "cores": 2, "python": "3.11.7"},
    "results": {"group_commit": {"acknowledged_per_second": 3788}, "journal_mode": "WAL"},
}


def test_report_renders_tables_goals_charts_and_notes(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "device-cost.json").write_text(json.dumps(_FIXTURE_RECORD), "utf-8")
    (results / "store.json").write_text(json.dumps(_LEGACY_RECORD), "utf-8")
    no_goals = dict(_FIXTURE_RECORD, name="gateway-capacity", goals=[], charts=[])
    (results / "gateway-capacity.json").write_text(json.dumps(no_goals), "utf-8")
    (results / "unrelated.json").write_text("[1, 2]", "utf-8")
    docs = tmp_path / "docs"
    records = load_records(results)
    assert [r["name"] for r in records] == ["device-cost", "gateway-capacity", "store"]
    page = render(records, docs, results)
    assert "## device-cost" in page
    assert "`python -m bench device-cost --quick` (quick run (`--quick`))" in page
    assert "Test CPU, 2 cores, 4.0 GiB RAM, kernel 6.1.0, CPython 3.11.7; trio 0.35.0" in page
    assert "| operation | ours | baseline | unit | ratio | baseline / ours |" in page
    assert "| typical day \\| cortex-m4 | 12.50 | 250.00 | mJ | 0.05 | 20x |" in page
    assert "| air-bytes | not evaluated | setup: " in page  # no record: listed, never met
    assert "| met | battery: battery life at least 10x the XMPP-direct device's | 20x |" in page
    capacity_goal = ISSUE_GOALS["gateway-capacity"][0]
    assert f"| not evaluated | {capacity_goal} | this record judges no goal |" in page
    assert "![device-cost: device-cost.png](../results/device-cost.png)" in page
    assert "- counted, not timed" in page
    assert "## store" in page
    assert "| group_commit.acknowledged_per_second | 3,788 |" in page
    assert "| journal_mode | WAL |" in page
    assert page.index("## device-cost") < page.index("## store")


def test_report_command_writes_the_page(tmp_path: Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "device-cost.json").write_text(json.dumps(_FIXTURE_RECORD), "utf-8")
    output = tmp_path / "benchmarks.md"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "report",
            "--results",
            str(results),
            "--output",
            str(output),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "## device-cost" in output.read_text("utf-8")


def test_xmpp_direct_counts_follow_the_protocols() -> None:
    from bench._device_cost_model import (
        SCRAM_ITERATIONS,
        scram_login,
        tls13_full_handshake,
    )

    full = scram_login(cached_salted_password=False).counts
    cached = scram_login(cached_salted_password=True).counts
    assert full.sha256_blocks - cached.sha256_blocks == 2 * SCRAM_ITERATIONS + 2
    rsa = tls13_full_handshake("rsa2048", 700)
    p256 = tls13_full_handshake("p256", 330)
    assert (rsa.rsa2048_verifies, rsa.counts.ecdsa_p256_verifies) == (2, 0)
    assert (p256.rsa2048_verifies, p256.counts.ecdsa_p256_verifies) == (0, 2)
    assert rsa.counts.x25519_scalar_multiplications == 2


def test_air_bytes_record_supplies_the_xmpp_direct_bytes(tmp_path: Path) -> None:
    from bench._device_cost_model import LinkFigures, xmpp_bytes_from_air_bytes

    def row(operation: str, up: int, down: int, trips: int) -> dict[str, object]:
        figures = {
            "payload_up": up,
            "payload_down": down,
            "link_up": up + 100,
            "link_down": down + 200,
            "round_trips": trips,
        }
        return comparison("operation", operation, 10, up + down, "B", baseline_figures=figures)

    operations = [
        row("session set-up (usable, resumable)", 2000, 3400, 11),
        row("resumption after an address change", 1, 1, 1),
        row("resumption after sleep", 1800, 2600, 9),
        row("send 20-char message + its ack", 1, 1, 1),
        row("send 20-char message + ack + delivery report", 200, 150, 2),
        row("presence update", 250, 140, 1),
        row("receive a contact's presence", 0, 270, 0),
    ]
    path = tmp_path / "air-bytes.json"
    path.write_text(json.dumps({"name": "air-bytes", "results": operations}), "utf-8")
    found = xmpp_bytes_from_air_bytes(path)
    assert found is not None
    assert found.login == LinkFigures(2000, 3400, 2100, 3600, 11)
    assert found.resumption == LinkFigures(1800, 2600, 1900, 2800, 9)
    assert found.message == LinkFigures(200, 150, 300, 350, 2)
    assert found.presence_update.payload == 390
    assert found.contact_presence == LinkFigures(0, 270, 100, 470, 0)
    path.write_text(json.dumps({"name": "air-bytes", "results": operations[:2]}), "utf-8")
    assert xmpp_bytes_from_air_bytes(path) is None  # incomplete: measured instead
    assert xmpp_bytes_from_air_bytes(tmp_path / "missing.json") is None


def test_counted_day_runs_the_whole_schedule() -> None:
    from bench._device_cost_model import Schedule
    from bench.device_cost import measure_ours_day

    schedule = Schedule(messages_sent=5, presence_received=7, wake_interval=21_600)
    day = measure_ours_day(schedule)
    assert day.wakeups == schedule.wakes == 4
    assert day.counts.p256_scalar_multiplications == 4  # one full handshake, then resumptions
    assert day.payload_sent > 0
    assert day.payload_received > 0


class _RecordingSocket:
    """Stands in for a host's UDP socket: what the load generator sends, in order."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def sendto(self, data: bytes, _address: object) -> int:
        self.sent.append(data)
        return len(data)


async def test_a_record_for_another_device_of_the_host_reaches_it() -> None:
    """The devices of one emulated host share a socket: a record the gateway sends device B
    while device A is exchanging (B's retransmitted ticket, say) must reach B, which then
    acknowledges it. Dropped by A, as before, B never acknowledged it, and the gateway gave the
    session up after its retransmissions (the 50k level held 49,950 of 50,000 sessions)."""
    import random

    import trio

    from bench import gateway_capacity as capacity
    from bench._capacity_state import Clock, establish
    from bench._device_pair import device_credential, gateway_credential, make_gateway
    from gateway import wire

    rng = random.Random(3)
    gateway = gateway_credential(rng)
    credentials = [device_credential(index, rng) for index in (1, 2)]
    core = make_gateway(gateway, {c.kid or b"": c.public() for c in credentials}, 3)
    clock = Clock()
    address = ("10.0.0.1", 40000)  # the host's one address, for both devices
    devices = []
    for index, credential in enumerate(credentials, start=1):
        device = capacity.Device(index, credential, gateway.public())
        session = device.new_session()
        assert establish(core, session, address, clock)
        devices.append(device)
    for device in devices:
        device.offset = clock.now - trio.current_time()
    first = devices[0]
    second_cid = next(cid for cid, identity in core.sessions().items() if identity == b"\x02")
    core.send_operation(second_cid, wire.DeliveryReport(1, wire.DeliveryStatus.DELIVERED))
    (datagram, _), *rest = core.datagrams_to_send(clock.now)
    assert not rest
    socket = _RecordingSocket()
    host = capacity.Host(cast(Any, socket))  # only sendto is used
    host.devices = devices

    await capacity._receive(host, first, datagram, ("127.0.0.1", 1))

    assert host.strays == 1
    assert socket.sent, "the device the record was for did not acknowledge it"
    for ack in socket.sent:
        core.receive_datagram(ack, address, clock.now)
    core.handle_timeout(clock.now + 30.0)
    assert core.datagrams_to_send(clock.now + 30.0) == []  # acknowledged: nothing to retransmit
