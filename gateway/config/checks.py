"""Checks of what a configuration refers to: directories, secret files and their modes, the
EDHOC identity, the CA, the database, trust stores, and whether each listener's port is free.

Each check turns a failure into a :class:`~gateway.config.errors.Problem` naming the key that
points at the thing, what is wrong and the command that fixes it (``chmod 600 FILE``,
``impp-gateway init``...). Ports are checked by binding them for a moment and closing at once:
a port another process holds fails here, at start, with the key that named it.
"""

from __future__ import annotations

import os
import socket
import ssl
import stat
from collections.abc import Sequence
from pathlib import Path

from gateway.config.errors import Problem
from gateway.config.identity import IdentityError, load_gateway_identity
from gateway.config.lines import KeyLines, dotted
from gateway.config.model import Configuration, ListenAddress, Trust
from gateway.signing import CertificateAuthority, SigningError
from gateway.signing.ca import CA_CERT_FILE, CA_KEY_FILE
from gateway.signing.keywrap import DEVICE_KEK_FILE, KeyEncryptionKey

__all__ = ["check_environment", "port_problem"]

_GROUP_OTHER = stat.S_IRWXG | stat.S_IRWXO


class _Checks:
    def __init__(self, lines: KeyLines) -> None:
        self.lines = lines
        self.problems: list[Problem] = []

    def add(self, path: Sequence[str], message: str, fix: str) -> None:
        self.problems.append(Problem(dotted(path), message, fix, self.lines.line(tuple(path))))

    def directory(self, path: Sequence[str], directory: Path) -> bool:
        """The directory exists and only its owner may use it (mode 0700)."""
        try:
            info = directory.stat()
        except FileNotFoundError:
            self.add(
                path,
                f"the directory {directory} does not exist",
                "create the gateway's files with 'impp-gateway init DIR', or correct the path",
            )
            return False
        except OSError as exc:
            self.add(path, f"cannot reach {directory}: {exc.strerror}", "check the path")
            return False
        if not stat.S_ISDIR(info.st_mode):
            self.add(path, f"{directory} is not a directory", "point it at a directory")
            return False
        if info.st_mode & _GROUP_OTHER:
            self.add(
                path,
                f"{directory} has mode {stat.S_IMODE(info.st_mode):o}; it must be 700 "
                "(it holds secrets)",
                f"chmod 700 {directory}",
            )
        return True

    def secret_file(
        self, path: Sequence[str], file: Path, missing_fix: str, *, secret: bool = True
    ) -> bool:
        """The file exists, is readable and (when ``secret``) has mode 0600 or narrower."""
        try:
            info = file.stat()
        except FileNotFoundError:
            self.add(path, f"{file} does not exist", missing_fix)
            return False
        except OSError as exc:
            self.add(path, f"cannot reach {file}: {exc.strerror}", "check the path")
            return False
        if not stat.S_ISREG(info.st_mode):
            self.add(path, f"{file} is not a regular file", "point it at a file")
            return False
        if not os.access(file, os.R_OK):
            self.add(
                path,
                f"{file} is not readable by this user",
                f"run the gateway as the file's owner, or chown that user {file}",
            )
            return False
        if secret and info.st_mode & _GROUP_OTHER:
            self.add(
                path,
                f"{file} has mode {stat.S_IMODE(info.st_mode):o}; a secret must be 600 "
                "(owner only)",
                f"chmod 600 {file}",
            )
            return False
        return True


def check_environment(
    configuration: Configuration,
    lines: KeyLines,
    *,
    check_files: bool = True,
    check_ports: bool = True,
) -> list[Problem]:
    """Every problem with the files and ports ``configuration`` names (empty: all is well)."""
    checks = _Checks(lines)
    if check_files:
        _check_files(checks, configuration)
    if check_ports:
        for kind, addresses in (
            ("udp", configuration.listen.udp),
            ("tcp", configuration.listen.tcp),
        ):
            for address in addresses:
                reason = port_problem(address, kind)
                if reason is not None:
                    checks.add(
                        ("listen", kind),
                        f"cannot listen on {kind.upper()} {address}: {reason}",
                        "stop the process holding it (ss -lunp / ss -ltnp shows which) or "
                        "choose another port",
                    )
    return checks.problems


def _check_files(checks: _Checks, configuration: Configuration) -> None:
    init = "create it with 'impp-gateway init DIR' (or restore it from a backup)"
    checks.directory(("gateway", "data_dir"), configuration.gateway.data_dir)

    edhoc = configuration.edhoc
    key_ok = checks.secret_file(("edhoc", "key_file"), edhoc.key_file, init)
    credential_ok = checks.secret_file(
        ("edhoc", "credential_file"), edhoc.credential_file, init, secret=False
    )
    if key_ok and credential_ok:
        try:
            load_gateway_identity(edhoc.key_file, edhoc.credential_file)
        except (IdentityError, SigningError) as exc:
            checks.add(
                ("edhoc", "key_file"),
                str(exc),
                "restore both files from the same 'impp-gateway init', or make a new pair "
                "with init (enrolled devices then need the new credential)",
            )

    _check_signing(checks, configuration)

    database = configuration.store.database
    checks.secret_file(("store", "database"), database, init)

    upstream = configuration.upstream
    _check_trust(checks, ("upstream", "trust"), upstream.trust)
    for domain in upstream.domains:
        if domain.trust != upstream.trust:
            _check_trust(checks, ("upstream", "domains", domain.domain, "trust"), domain.trust)

    metrics = configuration.metrics
    if metrics.enabled and metrics.status_token_file is not None:
        from gateway.statuspage.token import TokenFileError, load_token  # the web stack, lazily

        try:
            load_token(metrics.status_token_file)
        except TokenFileError as exc:
            checks.add(
                ("metrics", "status_token_file"),
                str(exc),
                "write the token with umask 077 as docs/operations.md (Status page) shows, then "
                f"chmod 600 {metrics.status_token_file}",
            )


def _check_signing(checks: _Checks, configuration: Configuration) -> None:
    signing = configuration.signing
    if not checks.directory(("signing", "ca_dir"), signing.ca_dir):
        return
    ca_fix = f"create the CA with 'impp-gateway ca init {signing.ca_dir}'"
    files_ok = all(
        [
            checks.secret_file(("signing", "ca_dir"), signing.ca_dir / CA_KEY_FILE, ca_fix),
            checks.secret_file(("signing", "ca_dir"), signing.ca_dir / CA_CERT_FILE, ca_fix),
            checks.secret_file(
                ("signing", "ca_dir"),
                signing.ca_dir / DEVICE_KEK_FILE,
                "'impp-gateway ca enroll' creates it, or run 'impp-gateway init' again",
            ),
        ]
    )
    passphrase: bytes | None = None
    if signing.passphrase_file is not None:
        if not checks.secret_file(
            ("signing", "passphrase_file"),
            signing.passphrase_file,
            'write the passphrase into that file (mode 0600), or set passphrase_file = ""',
        ):
            return
        passphrase = signing.passphrase_file.read_bytes().rstrip(b"\r\n")
        if not passphrase:
            checks.add(
                ("signing", "passphrase_file"),
                f"{signing.passphrase_file} is empty",
                'write the passphrase into it, or set passphrase_file = "" if the CA has none',
            )
            return
    if not files_ok:
        return
    try:
        CertificateAuthority.load(signing.ca_dir, passphrase=passphrase)
        KeyEncryptionKey.load(signing.ca_dir, passphrase=passphrase)
    except SigningError as exc:
        checks.add(
            ("signing", "passphrase_file") if passphrase else ("signing", "ca_dir"),
            f"the CA in {signing.ca_dir} cannot be opened: {exc}",
            'give the passphrase the CA was made with in passphrase_file (or "" for none), '
            "or restore the CA directory",
        )


def _check_trust(checks: _Checks, path: Sequence[str], trust: Trust) -> None:
    if trust.ca_file is None:
        return
    if not checks.secret_file(
        path,
        trust.ca_file,
        'give the path of a PEM bundle, or write trust = "system"',
        secret=False,
    ):
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.load_verify_locations(cafile=str(trust.ca_file))
    except (ssl.SSLError, OSError, ValueError) as exc:
        checks.add(
            path,
            f"{trust.ca_file} holds no usable CA certificate ({exc})",
            "give a file of PEM certificates (-----BEGIN CERTIFICATE-----)",
        )


def port_problem(address: ListenAddress, kind: str) -> str | None:
    """Why ``address`` cannot be bound for ``kind`` ("udp" or "tcp") now, or None if it can.

    Binds a socket of that kind for a moment and closes it. TCP sets SO_REUSEADDR as trio's
    listeners do, so a port left in TIME_WAIT by a previous run is not reported as in use.
    """
    host = "127.0.0.1" if address.host.lower() == "localhost" else address.host
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    kind_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    try:
        with socket.socket(family, kind_type) as probe:
            if kind == "tcp":
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, address.port))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None
