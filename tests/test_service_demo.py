"""``impp-devices demo``: the story through ``impp-gateway init``/``enroll``/``run`` as processes.

The figures are measured in each run, so these tests check the story's lines, their order and the
relations that must hold (every message counted exactly once at both ends), never byte values; and
that nothing the demo started outlives it.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import pytest

import device_sim.domain_server
import device_sim.service_demo
from device_sim.service_demo import run_service_demo
from gateway.enroll.provisioning import Provisioning, read_provisioning_file
from gateway.signing import CertificateAuthority, E2eVerifier
from gateway.xmpp import Jid

BIN = Path(sys.executable).parent
RUN_TIMEOUT = 180  # a guard against a hang, not a performance claim


def _unwrapped(output: str) -> str:
    """The narrative with its wrapped lines joined again (continuations are indented 6)."""
    return re.sub(r"\n {6}(?=\S)", " ", output)


def _processes_mentioning(directory: str) -> list[str]:
    marker = directory.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    found.append(entry.name)
            except OSError:
                continue
    return found


def test_demo_runs_the_story_through_the_gateway_service() -> None:
    executable = shutil.which("impp-devices", path=str(BIN))
    assert executable is not None, "impp-devices is not installed (pip install -e .)"
    result = subprocess.run(
        [executable, "demo", "--devices", "2"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = _unwrapped(result.stdout)
    assert "demo failed" not in output
    positions = [output.index(f"\n[{step}] ") for step in range(1, 11)]
    assert positions == sorted(positions)
    assert "[2] impp-gateway init" in output
    assert "[3] impp-gateway enroll: 2 device(s), one login each" in output
    assert "[4] impp-gateway run: the service as a child process" in output
    assert len(re.findall(r"provisioning file of \d+ B of CBOR", output)) == 2
    assert "logged 'gateway running' and 2 upstream XMPP session(s) established" in output
    for device in ("sensor-1", "sensor-2"):
        assert f"{device}: connected (EDHOC done)" in output
        assert f"alice@impp.test: <- {device}@impp.test: '{device}: temperature" in output
        assert f"{device}: <- alice@impp.test: 'Thanks {device}, got it'" in output
        assert f"alice@impp.test: sees {device}@impp.test away" in output
        assert f"{device}: sees alice@impp.test DO_NOT_DISTURB" in output
    assert "sensor-2: <- sensor-1@impp.test: 'sensor-1 to sensor-2: hello neighbour'" in output
    assert "sensor-1: <- sensor-2@impp.test: 'sensor-2 to sensor-1: hello neighbour'" in output
    assert "sensor-2: radio off (Sleep acknowledged)" in output
    assert "sensor-2: connected (resumed with its ticket)" in output
    assert "sensor-2: <- alice@impp.test: 'while you slept, sensor-2'" in output
    assert output.count("checked against the gateway's CA: VERIFIED") == 2  # message, presence
    assert "logged 'received SIGTERM' and 'stopped', exit status 0" in output

    # The summary: 2 paths device -> person, 2 person -> device, 2 in the ring; each once.
    verdicts = re.findall(r"^  (\S+ -> \S+) .* (exactly once|NOT exactly once)$", output, re.M)
    assert len(verdicts) == 6
    assert all(verdict == "exactly once" for _path, verdict in verdicts)
    assert "every message was delivered exactly once (6 paths, counted at both ends)" in output
    reports = re.search(r"DeliveryReports DELIVERED: (\d+) of (\d+) device messages", output)
    assert reports is not None
    assert int(reports.group(1)) >= 2  # at least every device -> person message
    assert re.search(r"message device -> person \(\+ DeliveryReport\)\s+2\s+\d+\s+\d+", output)

    removed = re.search(r"temporary directory (\S+) removed", output)
    assert removed is not None
    assert not Path(removed.group(1)).exists()
    assert _processes_mentioning(removed.group(1)) == []


def test_the_demo_takes_a_device_count_and_the_pieces_demo_is_gone() -> None:
    from device_sim.cli import build_parser

    args = build_parser().parse_args(["demo", "--devices", "5", "--link", "edge"])
    assert (args.devices, args.link, args.seed) == (5, "edge", 1)
    assert build_parser().parse_args(["demo"]).devices == 3
    with pytest.raises(SystemExit):
        build_parser().parse_args(["demo", "--pieces"])


def test_a_device_count_out_of_range_fails_before_anything_starts() -> None:
    out = io.StringIO()
    assert run_service_demo(out, devices=0) == 1
    assert "demo failed at step 0: --devices must be 1 to 20" in out.getvalue()
    out = io.StringIO()
    assert run_service_demo(out, link="carrier-pigeon") == 1
    assert "unknown link preset 'carrier-pigeon'" in out.getvalue()


def test_the_summary_says_not_exactly_once_for_a_duplicate_or_a_loss() -> None:
    """The verdict is computed from the counts; a repeat or a gap fails the demo."""
    from collections import Counter

    from device_sim.chat.client import ChatRunner
    from device_sim.service_demo import Demo, DemoError, DeviceView, Narrator

    @dataclass
    class Client:
        duplicates_dropped: int = 0

    @dataclass
    class Runner:  # what the summary reads of a runner
        client: Client = field(default_factory=Client)

    out = io.StringIO()
    demo = Demo.__new__(Demo)
    demo.narrator = Narrator(out)
    demo.person_jid = Jid.parse_untrusted("alice@impp.test")
    demo.phases = []
    demo.link = "gprs"
    one = DeviceView("sensor-1", "sensor-1@impp.test", cast(ChatRunner, Runner()))
    one.sent = Counter({"sensor-1: temperature 20.5 C": 1})
    one.from_person = Counter({"Thanks sensor-1, got it": 1})
    one.arrived = Counter({"Thanks sensor-1, got it": 2})  # shown twice: a duplicate
    demo.devices = [one]
    demo.person_got = Counter()  # and the device's message never arrived
    with pytest.raises(DemoError, match="not exactly once"):
        demo.summary()
    text = out.getvalue()
    assert "sensor-1 -> alice@impp.test  1     0              0           1        NOT" in text
    assert "alice@impp.test -> sensor-1  1     0              1           0        NOT" in text


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A temporary directory with a short path: the gateway's admin socket path must fit
    AF_UNIX's 108 bytes, which pytest's own (long) tmp_path may not leave room for."""
    directory = Path(tempfile.mkdtemp(prefix="sd-", dir="/tmp"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def test_demo_says_which_step_failed_without_prosody(
    monkeypatch: pytest.MonkeyPatch, short_tmp: Path
) -> None:
    monkeypatch.setattr(device_sim.domain_server, "prosody_available", lambda: False)
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    out = io.StringIO()
    assert run_service_demo(out, devices=1) == 1
    assert "demo failed at step 1: prosody is not installed" in out.getvalue()
    assert list(short_tmp.iterdir()) == []


def test_a_refused_configuration_fails_the_enroll_step_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, short_tmp: Path
) -> None:
    """A configuration the gateway refuses: step 3 says what enroll said; Prosody and files go."""
    configure = device_sim.service_demo._configure

    def broken(config: Path, server: device_sim.domain_server.ProsodyServer, port: int) -> None:
        configure(config, server, port)
        config.write_text(config.read_text().replace("[limits]\n", "[limits]\nmax_sesions = 5\n"))

    monkeypatch.setattr(device_sim.service_demo, "_configure", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    out = io.StringIO()
    assert run_service_demo(out, devices=1) == 1
    output = _unwrapped(out.getvalue())
    assert "demo failed at step 3: impp-gateway enroll exited 2: " in output
    assert "limits.max_sesions" in output
    assert list(short_tmp.iterdir()) == []
    assert _processes_mentioning(str(short_tmp)) == []


def test_a_gateway_that_exits_at_start_fails_the_run_step_and_leaves_nothing(
    monkeypatch: pytest.MonkeyPatch, short_tmp: Path
) -> None:
    """``run`` refuses to start (its CA key is gone after enroll): step 4 says so, no hang."""
    read = read_provisioning_file

    def read_then_break(path: Path) -> Provisioning:
        provisioning = read(path)
        (Path(path).parent / "gw" / "ca" / "ca-key.pem").unlink()
        return provisioning

    monkeypatch.setattr(device_sim.service_demo, "read_provisioning_file", read_then_break)
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    out = io.StringIO()
    assert run_service_demo(out, devices=1) == 1
    output = _unwrapped(out.getvalue())
    assert "demo failed at step 4: the gateway exited before logging 'gateway running'" in output
    assert "not started" in output  # run's own verdict on its configuration, quoted
    assert list(short_tmp.iterdir()) == []
    assert _processes_mentioning(str(short_tmp)) == []


def test_a_signature_that_does_not_verify_fails_step_7(
    monkeypatch: pytest.MonkeyPatch, short_tmp: Path
) -> None:
    """The demo prints what the verifier found; it never claims VERIFIED on its own."""

    def stranger(_home: Path) -> E2eVerifier:  # trusts another CA, not the gateway's
        return E2eVerifier(CertificateAuthority.create(now=time.time()).trust_store())

    monkeypatch.setattr(device_sim.service_demo, "_gateway_ca_verifier", stranger)
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    out = io.StringIO()
    assert run_service_demo(out, devices=1) == 1
    output = _unwrapped(out.getvalue())
    assert "demo failed at step 7: the signature did not verify: untrusted-certificate" in output
    assert "VERIFIED" not in output
    assert list(short_tmp.iterdir()) == []
    assert _processes_mentioning(str(short_tmp)) == []
