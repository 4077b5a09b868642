"""``impp-gateway init``: the files it writes, their modes, and a configuration that validates."""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import GATEWAY_KID, load_configuration, load_gateway_identity
from gateway.signing import CertificateAuthority, KeyEncryptionKey

BIN = Path(sys.executable).parent


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_writes_a_gateway_that_validates(gateway_dir: Path) -> None:
    configuration = load_configuration(gateway_dir / "gateway.toml")
    assert configuration.gateway.data_dir == gateway_dir.resolve()
    assert [d.domain for d in configuration.upstream.domains] == ["impp.test"]
    assert not configuration.listen.allow_public
    identity = load_gateway_identity(
        configuration.edhoc.key_file, configuration.edhoc.credential_file
    )
    assert identity.kid == GATEWAY_KID
    assert identity.private_key is not None
    CertificateAuthority.load(configuration.signing.ca_dir)
    KeyEncryptionKey.load(configuration.signing.ca_dir, passphrase=None)
    assert configuration.store.database.stat().st_size > 0


def test_every_file_is_0600_and_every_directory_0700(gateway_dir: Path) -> None:
    entries = [gateway_dir, *gateway_dir.rglob("*")]
    assert {p.name for p in entries} >= {
        "gateway.toml",
        "edhoc-key.pem",
        "edhoc-credential.ccs",
        "ca",
        "ca-key.pem",
        "ca-cert.pem",
        "device-kek.pem",
        "gateway.sqlite3",
    }
    for path in entries:
        expected = 0o700 if path.is_dir() else 0o600
        assert _mode(path) == expected, f"{path} has mode {_mode(path):o}"


def test_init_refuses_a_non_empty_directory_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "gw"
    directory.mkdir()
    (directory / "notes.txt").write_text("someone else's file")
    assert main(["init", str(directory)]) == 1
    err = capsys.readouterr().err
    assert "is not empty; refusing to overwrite" in err
    assert "--force" in err
    assert not (directory / "gateway.toml").exists()


def test_init_with_force_replaces_the_key(
    gateway_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (gateway_dir / "edhoc-key.pem").read_bytes()
    assert main(["init", str(gateway_dir), "--force"]) == 0
    assert (gateway_dir / "edhoc-key.pem").read_bytes() != before
    assert _mode(gateway_dir / "edhoc-key.pem") == 0o600
    load_configuration(gateway_dir / "gateway.toml", check_ports=False)
    capsys.readouterr()


def test_init_prints_what_it_wrote_and_the_next_step(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["init", str(tmp_path / "gw"), "--domain", "Example.ORG"]) == 0
    out = capsys.readouterr().out
    for name in ("gateway.toml", "edhoc-key.pem", "edhoc-credential.ccs", "gateway.sqlite3"):
        assert name in out
    assert "kid 0x0a" in out
    assert "schema version" in out
    assert "domains: example.org" in out
    assert out.rstrip().endswith("next: enroll devices with impp-gateway enroll")
    assert "BEGIN" not in out  # never key material


def test_init_rejects_a_bad_domain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["init", str(tmp_path / "gw"), "--domain", "not a domain"]) == 1
    assert "--domain example.org" in capsys.readouterr().err
    assert not (tmp_path / "gw").exists()


def test_installed_console_script_inits_and_checks(tmp_path: Path) -> None:
    executable = BIN / "impp-gateway"
    assert executable.exists(), "impp-gateway is not installed (pip install -e .)"
    directory = tmp_path / "gw"
    made = subprocess.run(
        [str(executable), "init", str(directory), "--domain", "impp.test"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert "next: enroll devices with impp-gateway enroll" in made.stdout
    config = directory / "gateway.toml"
    text = config.read_text()
    config.write_text(text.replace('log_level = "info"', 'log_levle = "info"'))
    checked = subprocess.run(
        [str(executable), "config", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 2, checked.stdout + checked.stderr
    assert "gateway.log_levle: unknown key" in checked.stderr
    assert "did you mean 'log_level'?" in checked.stderr


def test_init_into_an_unwritable_place_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["init", str(blocker / "gw")]) == 1
    assert "cannot write into" in capsys.readouterr().err
