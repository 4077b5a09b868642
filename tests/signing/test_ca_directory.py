"""Opening a CA directory as the commands do: each operator mistake named with its fix."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gateway.signing import CertificateAuthority
from gateway.signing.ca_directory import (
    CaDirectoryError,
    open_ca,
    open_device_kek,
    read_passphrase,
)
from gateway.signing.keywrap import DEVICE_KEK_FILE


def test_a_directory_without_a_ca_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(CaDirectoryError, match="impp-gateway ca init"):
        open_ca(tmp_path, None)


def test_an_empty_or_missing_passphrase_file_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    with pytest.raises(CaDirectoryError, match="is empty"):
        read_passphrase(empty)
    with pytest.raises(CaDirectoryError, match="cannot read the passphrase file"):
        read_passphrase(tmp_path / "absent")
    assert read_passphrase(None) is None


def test_a_ca_with_a_passphrase_opened_without_one_says_to_give_it(tmp_path: Path) -> None:
    CertificateAuthority.create(now=time.time()).save(tmp_path, passphrase=b"correct horse")
    with pytest.raises(CaDirectoryError, match="--passphrase-file"):
        open_ca(tmp_path, None)
    secret = tmp_path / "passphrase"
    secret.write_bytes(b"correct horse\n")
    assert open_ca(tmp_path, secret).certificate is not None


def test_the_device_kek_is_made_once_and_then_opened(tmp_path: Path) -> None:
    CertificateAuthority.create(now=time.time()).save(tmp_path)
    made, notes = open_device_kek(tmp_path, None)
    assert len(notes) == 1
    assert "created the device key-encryption key" in notes[0]
    assert (tmp_path / DEVICE_KEK_FILE).stat().st_mode & 0o777 == 0o600
    opened, notes_again = open_device_kek(tmp_path, None)
    assert notes_again == []
    assert opened.to_file_bytes(None) == made.to_file_bytes(None)
