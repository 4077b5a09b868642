"""The console scripts answer --help and list the subcommands that exist."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("command", ["impp-gateway", "impp-devices"])
def test_help_works(command: str) -> None:
    executable = shutil.which(command, path=str(BIN)) or shutil.which(command)
    assert executable is not None, f"{command} is not installed (pip install -e .)"
    result = subprocess.run(
        [executable, "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert "version" in result.stdout


def test_gateway_version() -> None:
    from gateway import __version__
    from gateway.cli import main

    assert main(["version"]) == 0
    assert __version__


def test_unknown_subcommand_says_what_is_wrong(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    with pytest.raises(SystemExit) as raised:
        main(["frobnicate"])
    assert raised.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_ca_commands_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main
    from gateway.signing import KeyEncryptionKey, read_credential

    ca_dir, out = tmp_path / "ca", tmp_path / "devices"
    assert main(["ca", "init", str(ca_dir)]) == 0
    assert (ca_dir / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert main(["ca", "init", str(ca_dir)]) == 1
    assert "already holds a CA" in capsys.readouterr().err
    assert main(["ca", "enroll", str(ca_dir), "im:sensor-7@impp.test", "--out", str(out)]) == 0
    key = out / "sensor-7@impp.test.key"
    assert key.stat().st_mode & 0o777 == 0o600
    kek = KeyEncryptionKey.load(ca_dir, passphrase=None)
    credential = read_credential(key, out / "sensor-7@impp.test.crt", kek=kek)
    assert credential.address.jid == "sensor-7@impp.test"
    assert main(["ca", "rotate", str(ca_dir)]) == 0
    capsys.readouterr()
    assert main(["ca", "show", str(ca_dir)]) == 0
    shown = capsys.readouterr().out
    assert "current:" in shown
    assert "previous:" in shown
    assert "BEGIN" not in shown  # never key material


def test_ca_command_mistakes_say_how_to_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    assert main(["ca", "show", str(tmp_path / "nowhere")]) == 1
    assert "impp-gateway ca init" in capsys.readouterr().err
    assert main(["ca", "init", str(tmp_path / "ca")]) == 0
    assert (
        main(["ca", "enroll", str(tmp_path / "ca"), "not an address", "--out", str(tmp_path)]) == 1
    )
    assert "impp-gateway ca:" in capsys.readouterr().err
