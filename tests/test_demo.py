"""``impp-devices demo`` against a real private Prosody: its narrative, exit status and clean-up.

The figures the demo prints are measured in each run, so these tests check their shape and the
relations that must hold (a signed stanza is larger than the record that caused it), never values.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import device_sim.demo
import device_sim.domain_server
from device_sim.demo import run_demo
from gateway.signing import CertificateAuthority, E2eVerifier, SignerTrustStore

BIN = Path(sys.executable).parent
RUN_TIMEOUT = 120  # a guard against a hang, not a performance claim
ROWS = (
    "EDHOC + session set-up",
    "device message out",
    "delivery report",
    "message to device",
    "presence update",
)


def _no_process_mentions(directory: str) -> None:
    """No process on the machine has the demo's temporary directory on its command line."""
    marker = directory.encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            assert marker not in cmdline, f"process {entry.name} outlived the demo"


def _unwrapped(output: str) -> str:
    """The narrative with its wrapped lines joined again (continuations are indented 6)."""
    return re.sub(r"\n {6}(?=\S)", " ", output)


def _table_row(output: str, operation: str) -> list[str]:
    for line in output.splitlines():
        if line.strip().startswith(operation):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no summary row for {operation!r}")


def test_demo_command_runs_end_to_end() -> None:
    executable = shutil.which("impp-devices", path=str(BIN))
    assert executable is not None, "impp-devices is not installed (pip install -e .)"
    result = subprocess.run(
        [executable, "demo", "--pieces"],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    output = _unwrapped(result.stdout)
    assert "demo failed" not in output
    assert "skipped" not in output  # every piece the demo uses exists now
    positions = [output.index(f"\n[{step}] ") for step in range(1, 8)]
    assert positions == sorted(positions)

    sizes = re.search(r"message_1 (\d+) B, message_2 (\d+) B, message_3 (\d+) B = (\d+) B", output)
    assert sizes is not None
    m1, m2, m3, total = (int(group) for group in sizes.groups())
    assert min(m1, m2, m3) > 0
    assert m1 + m2 + m3 == total
    assert "on both sides: identical" in output
    assert re.search(
        r"alice@impp\.test received 'Temperature [^']*' from sensor-1@impp\.test", output
    )
    assert output.count("VERIFIED") == 2  # the message's and the presence's <e2e/>
    assert "SASL SCRAM-SHA-256" in output
    assert "IncomingMessage from 'alice@impp.test'" in output

    for operation in ROWS:
        row = _table_row(output, operation)
        assert int(row[1]) > 0, row
    for operation in ("device message out", "presence update"):
        row = _table_row(output, operation)
        assert int(row[3]) > int(row[1]), row  # the signed stanza outweighs the record
    for missing in (
        "gateway/relay",
        "gateway/store",
        "sleeping-device queue",
        "device emulator radio links",
    ):
        assert f"- {missing}" in output

    removed = re.search(r"temporary directory (\S+) removed", output)
    assert removed is not None
    assert not Path(removed.group(1)).exists()
    _no_process_mentions(removed.group(1))


def test_demo_says_which_step_failed_without_prosody(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(device_sim.domain_server, "prosody_available", lambda: False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = io.StringIO()
    assert run_demo(out) == 1
    assert "demo failed at step 1: prosody is not installed" in out.getvalue()
    assert list(tmp_path.iterdir()) == []


def test_demo_reports_a_signature_that_does_not_verify(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The demo prints what the verifier found; it never claims VERIFIED on its own."""

    def stranger(_trust: SignerTrustStore) -> E2eVerifier:  # trusts another CA, not the gateway's
        return E2eVerifier(CertificateAuthority.create(now=time.time()).trust_store())

    monkeypatch.setattr(device_sim.demo, "E2eVerifier", stranger)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    out = io.StringIO()
    assert run_demo(out) == 1
    output = _unwrapped(out.getvalue())
    assert "checked against the gateway CA: FAILED" in output
    assert "demo failed at step 5: the signature did not verify: untrusted-certificate" in output
    assert "VERIFIED" not in output
    assert "Summary" not in output
    assert list(tmp_path.iterdir()) == []
    _no_process_mentions(str(tmp_path))
