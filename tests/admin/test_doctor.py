"""``impp-gateway doctor`` against a gateway made by ``init`` for the private Prosody, with an
account enrolled (its SCRAM salted password stored, not the password)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.cli import main
from tests.enroll.conftest import Gateway, make_gateway
from tests.support.prosody import ProsodyServer


def _enroll(gateway: Gateway, prosody: ProsodyServer, tmp_path: Path) -> str:
    account = prosody.create_user()
    secret = tmp_path / "password"
    secret.write_text(account.password + "\n")
    secret.chmod(0o600)
    assert main(gateway.argv("enroll", "--jid", account.jid, "--password-file", str(secret))) == 0
    return account.jid


def test_doctor_passes_on_a_healthy_gateway(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    jid = _enroll(gateway, running_prosody, tmp_path)
    capsys.readouterr()
    status = main(gateway.argv("doctor", "--login", jid))
    out = capsys.readouterr().out
    assert status == 0, out
    domain = running_prosody.domain
    for name in ("configuration", "files", "file modes", "store schema", "listeners"):
        assert f"OK    {name}\n" in out
    assert f"OK    resolve {domain}\n" in out
    assert f"OK    tls {domain}\n" in out
    assert f"(matches {domain})" in out
    assert f"OK    login {jid}\n" in out
    assert "logged in and bound with SCRAM-SHA-" in out
    assert "checks, all OK" in out


def test_doctor_reports_untrusted_certificate_with_its_fix(
    tmp_path: Path, running_prosody: ProsodyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "gw"
    # A real CA certificate, but not the one that issued Prosody's: the gateway's own S/MIME CA.
    gateway = make_gateway(directory, running_prosody, trust=str(directory / "ca" / "ca-cert.pem"))
    capsys.readouterr()
    assert main(gateway.argv("doctor")) == 1
    out = capsys.readouterr().out
    domain = running_prosody.domain
    assert f"FAIL  tls {domain}\n" in out
    assert "TLS handshake failed" in out
    assert "certificate subject:" in out
    assert (
        f"fix: the certificate does not chain to trust = {directory / 'ca' / 'ca-cert.pem'}" in out
    )
    assert "1 failed" in out


def test_doctor_reports_a_wrong_file_mode_with_chmod(
    gateway: Gateway, capsys: pytest.CaptureFixture[str]
) -> None:
    key = gateway.directory / "edhoc-key.pem"
    key.chmod(0o644)
    assert main(gateway.argv("doctor")) == 1
    out = capsys.readouterr().out
    assert "FAIL  file modes\n" in out
    assert f"fix: chmod 600 {key}" in out
    assert "OK    files\n" in out


def test_doctor_login_with_a_resalted_credential_says_enroll_again(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The stored salt no longer the server's: the client stops before answering, with the fix."""
    jid = _enroll(gateway, running_prosody, tmp_path)
    database = sqlite3.connect(gateway.database)
    with database:
        database.execute("UPDATE upstream_credentials SET salt = ?", (b"another salt",))
    database.close()
    capsys.readouterr()
    assert main(gateway.argv("doctor", "--login", jid)) == 1
    out = capsys.readouterr().out
    assert f"FAIL  login {jid}\n" in out
    assert "no longer matches the server's salt/iterations" in out
    assert f"impp-gateway enroll --jid {jid}" in out
