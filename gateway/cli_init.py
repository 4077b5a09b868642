"""``impp-gateway init`` and ``impp-gateway config check``: make a gateway's files, check them.

``init DIR`` writes, into DIR (mode 0700): the commented configuration (``gateway.toml``), the
gateway's EDHOC static key and CCS credential, its S/MIME CA with the device key-encryption key
(``ca/``, made as ``impp-gateway ca init`` makes it), and the database (``gateway.store``'s
``migrate_database``). Every file is mode 0600. ``config check`` loads and validates a
configuration and lists every problem with its fix.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path
from typing import Final

from gateway.cli_ca import CommandError
from gateway.config import (
    CONFIG_FILE_NAME,
    ConfigError,
    Configuration,
    IdentityError,
    load_configuration,
    load_gateway_identity,
    new_gateway_identity,
    render_configuration,
    write_gateway_identity,
)
from gateway.config.loader import is_hostname
from gateway.signing import CertificateAuthority, SigningError
from gateway.signing.keyfiles import write_protected_file
from gateway.signing.keywrap import KeyEncryptionKey

__all__ = [
    "CONFIG_ENVIRONMENT_VARIABLE",
    "CONFIG_PROBLEMS_EXIT",
    "add_init_commands",
    "run_config_command",
    "run_init_command",
]

CONFIG_ENVIRONMENT_VARIABLE: Final = "IMPP_GATEWAY_CONFIG"
CONFIG_PROBLEMS_EXIT: Final = 2  # as for argument mistakes: the operator has something to fix
DIRECTORY_MODE: Final = 0o700

# What init writes, relative to DIR; the configuration template names the same paths.
KEY_FILE: Final = "edhoc-key.pem"
CREDENTIAL_FILE: Final = "edhoc-credential.ccs"
CA_DIRECTORY: Final = "ca"
DATABASE_FILE: Final = "gateway.sqlite3"


def add_init_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``init`` and ``config check`` under ``commands``."""
    init = commands.add_parser(
        "init", help="create a gateway: configuration, EDHOC key, CA and database in DIR"
    )
    init.add_argument("directory", type=Path, help="where the gateway's files go (mode 0700)")
    init.add_argument(
        "--domain",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="an account domain the gateway serves (repeat for more)",
    )
    init.add_argument(
        "--force", action="store_true", help="replace the files of an existing gateway in DIR"
    )

    config = commands.add_parser("config", help="work with the gateway's configuration")
    config_commands = config.add_subparsers(
        dest="config_command", metavar="CONFIG_COMMAND", required=True
    )
    check = config_commands.add_parser(
        "check", help="validate the configuration and every file and port it names"
    )
    check.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"the configuration file (default: ${CONFIG_ENVIRONMENT_VARIABLE}, else "
        f"./{CONFIG_FILE_NAME})",
    )


def run_init_command(args: argparse.Namespace) -> list[str]:
    """Carry out ``init``; return the lines to print. Raises :class:`CommandError`."""
    directory: Path = args.directory
    domains: list[str] = []
    for domain in args.domain:
        if not is_hostname(domain):
            raise CommandError(
                f"--domain {domain!r} is not a domain name; give the part after the @ of the "
                "accounts, e.g. --domain example.org"
            )
        if domain.lower() not in domains:
            domains.append(domain.lower())
    if directory.exists() and not directory.is_dir():
        raise CommandError(f"{directory} exists and is not a directory; choose another path")
    if directory.is_dir() and any(directory.iterdir()) and not args.force:
        raise CommandError(
            f"{directory} is not empty; refusing to overwrite it. Choose an empty or new "
            "directory, or add --force to replace the gateway files in it (a new key, CA and "
            "database: devices enrolled before must enroll again)"
        )
    from gateway.store import StoreError

    try:
        return _initialise(directory, domains)
    except (OSError, SigningError, IdentityError) as exc:
        raise CommandError(f"cannot write into {directory}: {exc}") from exc
    except StoreError as exc:
        raise CommandError(f"cannot create the database in {directory}: {exc}") from exc


def _initialise(directory: Path, domains: list[str]) -> list[str]:
    from gateway.store import migrate_database  # the store opens SQLite: only init needs it

    directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    os.chmod(directory, DIRECTORY_MODE)
    config_path = directory / CONFIG_FILE_NAME
    write_protected_file(config_path, render_configuration(domains).encode("utf-8"))

    subject = f"gateway.{domains[0]}" if domains else "impp-gateway"
    identity = new_gateway_identity(subject=subject)
    write_gateway_identity(identity, directory / KEY_FILE, directory / CREDENTIAL_FILE)

    ca_dir = directory / CA_DIRECTORY
    ca_dir.mkdir(mode=DIRECTORY_MODE, exist_ok=True)
    os.chmod(ca_dir, DIRECTORY_MODE)
    ca = CertificateAuthority.create(now=time.time())
    ca.save(ca_dir)
    KeyEncryptionKey.generate().save(ca_dir, passphrase=None)

    database = directory / DATABASE_FILE
    for stale in (
        database,
        database.with_name(f"{DATABASE_FILE}-wal"),
        database.with_name(f"{DATABASE_FILE}-shm"),
    ):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    version = migrate_database(database)

    kid = identity.kid.hex() if identity.kid is not None else "none"
    return [
        f"created a gateway in {directory} (mode 700):",
        f"  {config_path}  configuration (commented; check it with "
        f"'impp-gateway config check --config {config_path}')",
        f"  {directory / KEY_FILE}  EDHOC static key, P-256 (mode 600)",
        f"  {directory / CREDENTIAL_FILE}  EDHOC credential, CCS with kid 0x{kid} "
        f"({len(identity.encoded)} B; devices receive it at enrollment)",
        f"  {ca_dir}/  S/MIME CA {ca.name!r} and device key-encryption key (mode 600 each)",
        f"  {database}  database, schema version {version} (mode 600)",
        "domains: "
        + (", ".join(domains) if domains else "none yet (add [upstream.domains] tables)"),
        "next: enroll devices with impp-gateway enroll",
    ]


def _config_path(args: argparse.Namespace) -> Path:
    given: Path | None = args.config
    if given is not None:
        return given
    from_environment = os.environ.get(CONFIG_ENVIRONMENT_VARIABLE)
    return Path(from_environment) if from_environment else Path(CONFIG_FILE_NAME)


def run_config_command(args: argparse.Namespace) -> tuple[int, list[str], list[str]]:
    """Carry out ``config check``: (exit status, lines for stdout, lines for stderr)."""
    path = _config_path(args)
    try:
        configuration = load_configuration(path)
    except ConfigError as exc:
        count = len(exc.problems)
        return (
            CONFIG_PROBLEMS_EXIT,
            [],
            [*exc.report(), f"{path}: {count} problem{'s' if count != 1 else ''}; not started"],
        )
    return 0, ["configuration OK", *_summary(configuration)], []


def _summary(configuration: Configuration) -> list[str]:
    listen = configuration.listen
    identity = load_gateway_identity(
        configuration.edhoc.key_file, configuration.edhoc.credential_file
    )
    kid = identity.kid.hex() if identity.kid is not None else "none"
    domains = configuration.upstream.domains
    return [
        f"  file:      {configuration.source}",
        f"  data:      {configuration.gateway.data_dir} (log level "
        f"{configuration.gateway.log_level.value})",
        "  udp:       " + (", ".join(str(a) for a in listen.udp) or "none"),
        "  tcp:       " + (", ".join(str(a) for a in listen.tcp) or "none"),
        f"  public:    {'allowed' if listen.allow_public else 'no (loopback only)'}",
        f"  edhoc:     kid 0x{kid}, {configuration.edhoc.credential_file}",
        f"  ca:        {configuration.signing.ca_dir}",
        f"  database:  {configuration.store.database}",
        "  domains:   "
        + (
            ", ".join(
                d.domain + (f" via {d.server_host}:{d.server_port}" if d.server_host else "")
                for d in domains
            )
            or "none"
        ),
        f"  limits:    {configuration.limits.max_sessions} sessions, "
        f"{configuration.limits.max_handshakes} handshakes, queue "
        f"{configuration.limits.queue_length} per device",
    ]
