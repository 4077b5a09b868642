"""``impp-devices demo``: the story through ``impp-gateway init``/``enroll``/``run`` as processes.

The figures are measured in each run, so these tests check the story's lines, their order and the
relations that must hold (the three EDHOC messages add up), never values; and that nothing the
demo started outlives it.
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
from pathlib import Path

import pytest

import device_sim.domain_server
import device_sim.service_demo
from device_sim.service_demo import run_service_demo
from gateway.enroll.provisioning import Provisioning, read_provisioning_file
from gateway.signing import CertificateAuthority, E2eVerifier

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
        [executable, "demo"], capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = _unwrapped(result.stdout)
    assert "demo failed" not in output
    positions = [output.index(f"\n[{step}] ") for step in range(1, 9)]
    assert positions == sorted(positions)
    assert "[2] impp-gateway init" in output
    assert "[3] impp-gateway enroll" in output
    assert "[4] impp-gateway run: the service as a child process" in output
    assert re.search(r"wrote the provisioning file: \d+ B of CBOR", output)
    assert "logged 'gateway running'" in output

    sizes = re.search(r"message_1 (\d+) B, message_2 (\d+) B, message_3 (\d+) B = (\d+) B", output)
    assert sizes is not None
    m1, m2, m3, total = (int(group) for group in sizes.groups())
    assert min(m1, m2, m3) > 0
    assert m1 + m2 + m3 == total
    assert re.search(
        r"alice@impp\.test received 'Temperature 21\.5 C ok' from sensor-1@impp\.test: a "
        r"<message/> of \d+ B",
        output,
    )
    assert output.count("checked against the gateway's CA: VERIFIED") == 2  # message, presence
    assert "the device got DeliveryReport DELIVERED for message 1" in output
    assert re.search(r"IncomingMessage from 'alice@impp\.test': 'Thanks, got it!' in \d+ B", output)
    assert "alice@impp.test sees sensor-1@impp.test away 'battery 81%'" in output
    assert "DO_NOT_DISTURB 'in a meeting'" in output
    assert "logged 'received SIGTERM' and 'stopped', exit status 0" in output

    removed = re.search(r"temporary directory (\S+) removed", output)
    assert removed is not None
    assert not Path(removed.group(1)).exists()
    assert _processes_mentioning(removed.group(1)) == []


def test_the_older_pieces_demo_stays_reachable() -> None:
    """``--pieces`` selects the hand-wired demo (tests/test_demo.py runs it end to end)."""
    from device_sim.cli import build_parser

    assert build_parser().parse_args(["demo", "--pieces"]).pieces is True
    assert build_parser().parse_args(["demo"]).pieces is False


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
    assert run_service_demo(out) == 1
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
    assert run_service_demo(out) == 1
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
    assert run_service_demo(out) == 1
    output = _unwrapped(out.getvalue())
    assert "demo failed at step 4: the gateway exited before logging 'gateway running'" in output
    assert "not started" in output  # run's own verdict on its configuration, quoted
    assert list(short_tmp.iterdir()) == []
    assert _processes_mentioning(str(short_tmp)) == []


def test_a_signature_that_does_not_verify_fails_step_6(
    monkeypatch: pytest.MonkeyPatch, short_tmp: Path
) -> None:
    """The demo prints what the verifier found; it never claims VERIFIED on its own."""

    def stranger(_home: Path) -> E2eVerifier:  # trusts another CA, not the gateway's
        return E2eVerifier(CertificateAuthority.create(now=time.time()).trust_store())

    monkeypatch.setattr(device_sim.service_demo, "_gateway_ca_verifier", stranger)
    monkeypatch.setattr(tempfile, "tempdir", str(short_tmp))
    out = io.StringIO()
    assert run_service_demo(out) == 1
    output = _unwrapped(out.getvalue())
    assert "demo failed at step 6: the signature did not verify: untrusted-certificate" in output
    assert "VERIFIED" not in output
    assert list(short_tmp.iterdir()) == []
    assert _processes_mentioning(str(short_tmp)) == []
