"""``impp-gateway ca ...``: the operator's commands for the gateway's S/MIME CA.

The CA signs the certificates that let the gateway sign on behalf of devices (RFC 3923, see
docs/signing.md). Every key and certificate file is written with mode 0600; a passphrase, when
used, is read from a file (never from the command line, where other users could see it). Device
signing keys written by ``enroll`` are sealed under the CA directory's key-encryption key
(``device-kek.pem``, itself sealed with the passphrase when there is one; docs/security.md, "Keys
at rest"), so a device key file alone is useless to whoever copies it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cryptography.hazmat.primitives import hashes

from gateway.impp import ImppAddress, ImppError
from gateway.signing import CertificateAuthority, SigningError, write_credential
from gateway.signing.ca import CA_KEY_FILE
from gateway.signing.ca_directory import (
    CaDirectoryError,
    open_ca,
    open_device_kek,
    read_passphrase,
)
from gateway.signing.keywrap import DEVICE_KEK_FILE, KeyEncryptionKey


class CommandError(Exception):
    """An operator mistake or an operational failure, with the message to print."""


def add_ca_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``ca init|show|enroll|rotate`` under ``commands``."""
    ca = commands.add_parser("ca", help="manage the gateway's S/MIME CA (signing on behalf)")
    ca_commands = ca.add_subparsers(dest="ca_command", metavar="CA_COMMAND", required=True)

    init = ca_commands.add_parser("init", help="create a new CA in an empty directory")
    init.add_argument("directory", type=Path, help="where the CA key and certificate go")
    init.add_argument("--name", default=None, help="the CA's common name")

    show = ca_commands.add_parser("show", help="describe the CA: name, validity, fingerprints")
    show.add_argument("directory", type=Path)

    enroll = ca_commands.add_parser("enroll", help="issue a device identity a key and certificate")
    enroll.add_argument("directory", type=Path, help="the CA directory")
    enroll.add_argument("address", help="the device identity: user@domain, im: or xmpp address")
    enroll.add_argument("--out", type=Path, required=True, help="directory for KEY and CERT files")

    rotate = ca_commands.add_parser(
        "rotate", help="new CA key; earlier certificates stay trusted until they expire"
    )
    rotate.add_argument("directory", type=Path)

    for sub in (init, show, enroll, rotate):
        sub.add_argument(
            "--passphrase-file",
            type=Path,
            default=None,
            help="file holding the passphrase that encrypts the CA key and the device KEK",
        )


def _passphrase(args: argparse.Namespace) -> bytes | None:
    try:
        return read_passphrase(args.passphrase_file)
    except CaDirectoryError as exc:
        raise CommandError(str(exc)) from exc


def _load(args: argparse.Namespace) -> CertificateAuthority:
    try:
        return open_ca(args.directory, args.passphrase_file)
    except CaDirectoryError as exc:
        raise CommandError(str(exc)) from exc


def _device_kek(args: argparse.Namespace) -> tuple[KeyEncryptionKey, list[str]]:
    """The CA directory's device KEK, made (and said so) for a CA created before it existed."""
    try:
        return open_device_kek(args.directory, args.passphrase_file)
    except CaDirectoryError as exc:
        raise CommandError(str(exc)) from exc


def _describe(ca: CertificateAuthority) -> list[str]:
    lines = [f"CA: {ca.name}"]
    for label, cert in [("current", ca.certificate)] + [
        ("previous", c) for c in ca.previous_certificates
    ]:
        fingerprint = cert.fingerprint(hashes.SHA256()).hex(":")
        lines.append(
            f"  {label}: valid {cert.not_valid_before_utc:%Y-%m-%d} to "
            f"{cert.not_valid_after_utc:%Y-%m-%d}, SHA-256 {fingerprint}"
        )
    return lines


def run_ca_command(args: argparse.Namespace) -> list[str]:
    """Carry out one ``ca`` command; return the lines to print. Raises :class:`CommandError`."""
    try:
        return _run(args)
    except (SigningError, ImppError) as exc:
        raise CommandError(str(exc)) from exc


def _run(args: argparse.Namespace) -> list[str]:
    now = time.time()
    directory: Path = args.directory
    if args.ca_command == "init":
        if (directory / CA_KEY_FILE).exists():
            raise CommandError(
                f"{directory} already holds a CA; use 'impp-gateway ca rotate {directory}' "
                "for a new key, or choose another directory"
            )
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        ca = (
            CertificateAuthority.create(now=now, name=args.name)
            if args.name
            else CertificateAuthority.create(now=now)
        )
        ca.save(directory, passphrase=_passphrase(args))
        KeyEncryptionKey.generate().save(directory, passphrase=_passphrase(args))
        return [f"created the CA in {directory}", *_describe(ca)]
    ca = _load(args)
    if args.ca_command == "show":
        return _describe(ca)
    if args.ca_command == "rotate":
        rotated = ca.rotate(now=now)
        rotated.save(directory, passphrase=_passphrase(args))
        return [f"rotated the CA key in {directory}", *_describe(rotated)]
    # enroll
    address = ImppAddress.parse(args.address)
    out: Path = args.out
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    kek, notes = _device_kek(args)
    credential = ca.enroll(address, now=now)
    stem = credential.address.jid
    key_path, cert_path = out / f"{stem}.key", out / f"{stem}.crt"
    write_credential(credential, key_path, cert_path, kek=kek)
    return [
        *notes,
        f"enrolled {credential.address.jid}",
        f"  key:         {key_path} (mode 0600, sealed under {directory / DEVICE_KEK_FILE})",
        f"  certificate: {cert_path}",
        f"  valid until: {credential.certificate.not_valid_after_utc:%Y-%m-%d}",
    ]
