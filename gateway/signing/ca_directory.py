"""Opening a gateway's CA directory as an operator's command does: the CA and the device KEK.

``impp-gateway ca ...`` and ``impp-gateway enroll`` both open ``[signing] ca_dir`` with an
optional passphrase file. The mistakes an operator makes there (no CA yet, an unreadable or empty
passphrase file, a passphrase that does not open the keys) each get one message saying what is
wrong and how to fix it, as :class:`CaDirectoryError`; the commands print it as it is.
"""

from __future__ import annotations

from pathlib import Path

from gateway.signing.ca import CA_KEY_FILE, CaError, CertificateAuthority, PassphraseError
from gateway.signing.keywrap import DEVICE_KEK_FILE, KeyEncryptionKey, KeyWrapError


class CaDirectoryError(CaError):
    """The CA directory cannot be opened; the message says why and what to do."""


def read_passphrase(path: Path | None) -> bytes | None:
    """The passphrase in ``path`` (a trailing newline dropped), or None without a file."""
    if path is None:
        return None
    try:
        secret = path.read_bytes().rstrip(b"\r\n")
    except OSError as exc:
        raise CaDirectoryError(f"cannot read the passphrase file {path}: {exc.strerror}") from exc
    if not secret:
        raise CaDirectoryError(f"the passphrase file {path} is empty")
    return secret


def passphrase_hint(passphrase_file: Path | None) -> str:
    """How to fix a passphrase mistake, for the passphrase file the operator gave (or not)."""
    if passphrase_file is None:
        return (
            "this CA was created with a passphrase: give it with --passphrase-file FILE "
            "(a file holding only the passphrase, mode 0600)"
        )
    return (
        f"check that {passphrase_file} holds the passphrase given to 'impp-gateway ca init' "
        "(a trailing newline is ignored), or leave out --passphrase-file if the CA has none"
    )


def open_ca(directory: Path, passphrase_file: Path | None) -> CertificateAuthority:
    """The CA in ``directory``, its key opened with the passphrase in ``passphrase_file``."""
    if not (directory / CA_KEY_FILE).exists():
        raise CaDirectoryError(
            f"{directory} holds no CA ({CA_KEY_FILE} is missing); "
            f"create one with 'impp-gateway ca init {directory}'"
        )
    try:
        return CertificateAuthority.load(directory, passphrase=read_passphrase(passphrase_file))
    except PassphraseError as exc:
        raise CaDirectoryError(
            f"{directory / CA_KEY_FILE}: {exc}; {passphrase_hint(passphrase_file)}"
        ) from exc


def open_device_kek(
    directory: Path, passphrase_file: Path | None
) -> tuple[KeyEncryptionKey, list[str]]:
    """The directory's device KEK and what was done to get it.

    A CA created before the KEK existed gets one now (mode 0600), and the returned notes say so.
    """
    passphrase = read_passphrase(passphrase_file)
    if not (directory / DEVICE_KEK_FILE).exists():
        kek = KeyEncryptionKey.generate()
        path = kek.save(directory, passphrase=passphrase)
        return kek, [f"created the device key-encryption key {path} (mode 0600)"]
    try:
        return KeyEncryptionKey.load(directory, passphrase=passphrase), []
    except KeyWrapError as exc:
        if exc.passphrase:
            raise CaDirectoryError(f"{exc}; {passphrase_hint(passphrase_file)}") from exc
        raise
