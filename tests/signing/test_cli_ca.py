"""``impp-gateway ca``: device keys at rest are sealed, every secret file is 0600, passphrase
mistakes say what is wrong and how to fix it (issue 10, point 10)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.cli import main
from gateway.impp import ImppAddress
from gateway.signing import (
    CaError,
    CertificateAuthority,
    KeyEncryptionKey,
    KeyWrapError,
    read_credential,
    write_credential,
)
from gateway.signing.keywrap import DEVICE_KEK_FILE

PASSPHRASE = b"correct horse battery staple"
DEVICE = "sensor-7@impp.test"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def enrolled(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A passphrase-protected CA and one enrolled device: (CA dir, device dir, passphrase file)."""
    secret = tmp_path / "passphrase"
    secret.write_bytes(PASSPHRASE + b"\n")
    secret.chmod(0o600)
    ca_dir, out = tmp_path / "ca", tmp_path / "devices"
    assert main(["ca", "init", str(ca_dir), "--passphrase-file", str(secret)]) == 0
    enroll = ["ca", "enroll", str(ca_dir), f"im:{DEVICE}", "--out", str(out)]
    assert main([*enroll, "--passphrase-file", str(secret)]) == 0
    return ca_dir, out, secret


def test_every_secret_file_and_directory_is_owner_only(enrolled: tuple[Path, Path, Path]) -> None:
    ca_dir, out, _ = enrolled
    for name in ("ca-key.pem", "ca-cert.pem", "ca-previous.pem", DEVICE_KEK_FILE):
        assert _mode(ca_dir / name) == 0o600, name
    for name in (f"{DEVICE}.key", f"{DEVICE}.crt"):
        assert _mode(out / name) == 0o600, name
    assert _mode(ca_dir) == 0o700
    assert _mode(out) == 0o700


def test_the_device_key_is_not_readable_without_the_kek(
    enrolled: tuple[Path, Path, Path],
) -> None:
    ca_dir, out, _ = enrolled
    key_file, cert_file = out / f"{DEVICE}.key", out / f"{DEVICE}.crt"
    written = key_file.read_bytes()
    assert b"PRIVATE KEY" not in written  # neither a clear nor a PKCS #8 PEM key
    with pytest.raises(ValueError, match=r"Could not deserialize|Valid PEM|Unable to load"):
        serialization.load_pem_private_key(written, password=None)
    with pytest.raises(CaError, match="sealed under the CA's device key-encryption key"):
        read_credential(key_file, cert_file)
    with pytest.raises(KeyWrapError, match="wrong passphrase"):
        KeyEncryptionKey.load(ca_dir, passphrase=b"wrong")
    with pytest.raises(KeyWrapError, match="none was given"):
        KeyEncryptionKey.load(ca_dir, passphrase=None)
    assert b"KEK" in (ca_dir / DEVICE_KEK_FILE).read_bytes()
    other = KeyEncryptionKey.generate()  # another CA's KEK
    with pytest.raises(KeyWrapError, match="does not open"):
        read_credential(key_file, cert_file, kek=other)
    kek = KeyEncryptionKey.load(ca_dir, passphrase=PASSPHRASE)
    credential = read_credential(key_file, cert_file, kek=kek)
    assert credential.address.jid == DEVICE
    # The private scalar appears nowhere in the file, in any encoding.
    scalar = credential.private_key.private_numbers().private_value.to_bytes(32, "big")
    assert scalar not in written
    assert scalar.hex().encode() not in written.lower()


def test_a_sealed_key_opens_only_as_its_own_identity(tmp_path: Path) -> None:
    ca = CertificateAuthority.create(now=1_700_000_000.0)
    kek = KeyEncryptionKey.generate()
    juliet = ca.enroll(ImppAddress.parse("juliet@example.com"), now=1_700_000_000.0)
    romeo = ca.enroll(ImppAddress.parse("romeo@example.net"), now=1_700_000_000.0)
    write_credential(juliet, tmp_path / "j.key", tmp_path / "j.crt", kek=kek)
    write_credential(romeo, tmp_path / "r.key", tmp_path / "r.crt", kek=kek)
    assert read_credential(tmp_path / "j.key", tmp_path / "j.crt", kek=kek).address == (
        juliet.address
    )
    # Romeo's sealed key put beside Juliet's certificate does not open (the JID is bound in).
    with pytest.raises(KeyWrapError, match=r"another identity than juliet@example\.com"):
        read_credential(tmp_path / "r.key", tmp_path / "j.crt", kek=kek)


@pytest.mark.parametrize(
    ("passphrase", "expected"),
    [
        (b"not the passphrase", ["does not open", "check that", "holds the passphrase"]),
        (None, ["no passphrase was given", "give it with --passphrase-file"]),
    ],
)
def test_a_passphrase_mistake_says_what_is_wrong_and_how_to_fix_it(
    enrolled: tuple[Path, Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    passphrase: bytes | None,
    expected: list[str],
) -> None:
    ca_dir, out, _ = enrolled
    capsys.readouterr()
    command = ["ca", "enroll", str(ca_dir), "im:other@impp.test", "--out", str(out)]
    if passphrase is not None:
        wrong = tmp_path / "wrong"
        wrong.write_bytes(passphrase)
        command += ["--passphrase-file", str(wrong)]
    assert main(command) == 1
    error = capsys.readouterr().err
    assert error.startswith("impp-gateway ca: ")
    assert "ca-key.pem" in error
    for text in expected:
        assert text in error
    assert not (out / "other@impp.test.key").exists()


def test_a_wrong_passphrase_for_the_kek_alone_is_explained(
    enrolled: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_dir, out, secret = enrolled
    KeyEncryptionKey.generate().save(ca_dir, passphrase=b"some other passphrase")
    capsys.readouterr()
    command = ["ca", "enroll", str(ca_dir), "im:other@impp.test", "--out", str(out)]
    assert main([*command, "--passphrase-file", str(secret)]) == 1
    error = capsys.readouterr().err
    assert "the passphrase does not open" in error
    assert DEVICE_KEK_FILE in error
    assert "check that" in error


def test_a_ca_made_before_the_kek_gets_one_at_its_next_enrollment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ca_dir, out = tmp_path / "ca", tmp_path / "devices"
    ca_dir.mkdir(mode=0o700)
    CertificateAuthority.create(now=1_700_000_000.0).save(ca_dir)  # as `ca init` did before
    assert main(["ca", "enroll", str(ca_dir), f"im:{DEVICE}", "--out", str(out)]) == 0
    assert "created the device key-encryption key" in capsys.readouterr().out
    assert _mode(ca_dir / DEVICE_KEK_FILE) == 0o600
    kek = KeyEncryptionKey.load(ca_dir, passphrase=None)
    assert read_credential(out / f"{DEVICE}.key", out / f"{DEVICE}.crt", kek=kek).address.jid == (
        DEVICE
    )
