"""``impp-gateway enroll``: make a device known to the gateway and write its provisioning file.

The password comes from a file (``--password-file``), an environment variable
(``--password-env``) or, only when standard input is a terminal, a prompt; never from the command
line, where other users could read it. ``--register`` first creates the account by in-band
registration (XEP-0077). The account's server must accept the password before anything is
stored (gateway.enroll.enrollment says what is stored, in which order). docs/operations.md,
"Enrolling devices", is the operator's description.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import os
import sys
from pathlib import Path
from typing import Final

import trio

from gateway.cli_ca import CommandError
from gateway.cli_init import CONFIG_PROBLEMS_EXIT, _config_path
from gateway.config import (
    CONFIG_FILE_NAME,
    ConfigError,
    Configuration,
    IdentityError,
    load_configuration,
)
from gateway.enroll.bulk import (
    BulkAccount,
    BulkError,
    accounts_from_csv,
    accounts_from_template,
    enroll_bulk,
    plan_outputs,
)
from gateway.enroll.enrollment import (
    EnrollmentError,
    EnrollmentOutcome,
    EnrollmentRequest,
    enroll,
    load_device_public_key,
)
from gateway.enroll.login import LoginError
from gateway.enroll.provisioning import MAX_PROVISIONING_SIZE, ProvisioningError
from gateway.enroll.registration import RegistrationError
from gateway.signing import SigningError
from gateway.store import StoreError

__all__ = ["add_enroll_commands", "load_enroll_configuration", "run_enroll_command"]

MAX_PASSWORD_FILE: Final = 4096  # a password, not a document
MAX_DEVICE_KEY_FILE: Final = MAX_PROVISIONING_SIZE


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``, as ``config check`` takes it."""
    parser.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"the configuration file (default: $IMPP_GATEWAY_CONFIG, else ./{CONFIG_FILE_NAME})",
    )


def add_enroll_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``enroll`` under ``commands``."""
    enroll_parser = commands.add_parser(
        "enroll",
        help="enroll a device for an XMPP account: check the login, issue keys, provision it",
    )
    add_config_argument(enroll_parser)
    which = enroll_parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--jid", help="the device's account, user@domain (the domain configured)")
    which.add_argument(
        "--bulk",
        type=int,
        metavar="N",
        help="enroll N devices, accounts from --jid-template; --out is then a directory",
    )
    which.add_argument(
        "--csv",
        type=Path,
        metavar="FILE",
        help="enroll the accounts of FILE, rows 'jid,password-file'; --out is a directory",
    )
    enroll_parser.add_argument(
        "--jid-template",
        metavar="TEMPLATE",
        help="with --bulk: the accounts, {n} counting from --first, e.g. 'dev{n}@example.org'",
    )
    enroll_parser.add_argument(
        "--first", type=int, default=1, help="with --bulk: the first {n} (default 1)"
    )
    enroll_parser.add_argument(
        "--jobs", type=int, default=4, help="with --bulk or --csv: enrollments at a time"
    )
    source = enroll_parser.add_mutually_exclusive_group()
    source.add_argument(
        "--password-file", type=Path, help="a file holding the account's password (mode 0600)"
    )
    source.add_argument(
        "--password-env", metavar="VAR", help="an environment variable holding the password"
    )
    enroll_parser.add_argument(
        "--register",
        action="store_true",
        help="create the account first by in-band registration (XEP-0077) with this password",
    )
    enroll_parser.add_argument(
        "--device-key",
        type=Path,
        default=None,
        help="the device's own P-256 public key (PEM/DER); by default the gateway makes a key "
        "pair and puts the private key in the provisioning file",
    )
    enroll_parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the provisioning file (default: DATA_DIR/provisioning/KID.prov)",
    )
    enroll_parser.add_argument(
        "--gateway-host",
        default=None,
        help="the address devices reach the gateway at, when it is not the listen address",
    )


def load_enroll_configuration(args: argparse.Namespace) -> Configuration | tuple[int, list[str]]:
    """The configuration, or (exit status, error lines) when it has problems."""
    path = _config_path(args)
    try:
        return load_configuration(path, check_ports=False)
    except ConfigError as exc:
        return CONFIG_PROBLEMS_EXIT, [*exc.report(), f"{path}: fix the configuration first"]


def _read_small_file(path: Path, limit: int, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        raise CommandError(f"cannot read the {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise CommandError(f"{path} is larger than a {what} can be ({limit} bytes)")
    return data


def _password(args: argparse.Namespace) -> str:
    """The password from the one source given, or a prompt on a terminal."""
    if args.password_file is not None:
        data = _read_small_file(args.password_file, MAX_PASSWORD_FILE, "password file")
        try:
            password = data.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise CommandError(f"the password file {args.password_file} is not UTF-8") from exc
        if not password:
            raise CommandError(f"the password file {args.password_file} is empty")
        return password
    if args.password_env is not None:
        password = os.environ.get(args.password_env, "")
        if not password:
            raise CommandError(
                f"the environment variable {args.password_env} is unset or empty; export it "
                "with the account's password, or use --password-file"
            )
        return password
    if not sys.stdin.isatty():
        raise CommandError(
            "no password given and standard input is not a terminal to ask on: give "
            "--password-file FILE or --password-env VAR"
        )
    password = getpass.getpass(f"password for {args.jid}: ")
    if args.register and getpass.getpass("the same password again: ") != password:
        raise CommandError("the two passwords differ; nothing was registered")
    if not password:
        raise CommandError("the password is empty")
    return password


def run_enroll_command(args: argparse.Namespace) -> tuple[int, list[str], list[str]]:
    """Carry out ``enroll``: (exit status, lines for stdout, lines for stderr)."""
    loaded = load_enroll_configuration(args)
    if isinstance(loaded, tuple):
        return loaded[0], [], loaded[1]
    if args.bulk is not None or args.csv is not None:
        return _run_bulk(args, loaded)
    try:
        device_key = None
        if args.device_key is not None:
            data = _read_small_file(args.device_key, MAX_DEVICE_KEY_FILE, "device key file")
            device_key = load_device_public_key(data, str(args.device_key))
        request = EnrollmentRequest(
            account=args.jid,
            password=_password(args),
            register=args.register,
            device_public_key=device_key,
            output=args.out,
            gateway_host=args.gateway_host,
        )
        outcome = trio.run(enroll, loaded, request)
    except (
        CommandError,
        EnrollmentError,
        LoginError,
        RegistrationError,
        IdentityError,
        SigningError,
        StoreError,
        ProvisioningError,
    ) as exc:
        return 1, [], [f"impp-gateway enroll: {exc}", "nothing was enrolled"]
    return 0, _report(outcome), []


def _bulk_accounts(args: argparse.Namespace) -> list[BulkAccount]:
    """The accounts of ``--csv`` or ``--bulk``, with their passwords (never a prompt)."""
    if args.csv is not None:
        if args.password_file is not None or args.password_env is not None:
            raise CommandError("--csv names each account's password file; drop --password-*")
        return accounts_from_csv(args.csv)
    if not args.jid_template:
        raise CommandError("--bulk needs --jid-template, e.g. 'dev{n}@example.org'")
    password = None
    if args.password_file is not None or args.password_env is not None:
        password = _password(args)
    elif not args.register:
        raise CommandError(
            "--bulk without --register needs the accounts' password: --password-file FILE or "
            "--password-env VAR (or --csv with one password file per account)"
        )
    return accounts_from_template(args.jid_template, args.bulk, first=args.first, password=password)


def _run_bulk(
    args: argparse.Namespace, configuration: Configuration
) -> tuple[int, list[str], list[str]]:
    """``enroll --bulk`` / ``--csv``: one provisioning file per account in ``--out``."""
    if args.device_key is not None:
        return 2, [], ["impp-gateway enroll: --device-key is for one device; not with --bulk/--csv"]
    if args.out is None:
        return 2, [], ["impp-gateway enroll: --bulk and --csv need --out DIR for the files"]
    try:
        accounts = _bulk_accounts(args)
        outputs = plan_outputs(args.out, accounts)
    except (CommandError, BulkError, OSError) as exc:
        return 1, [], [f"impp-gateway enroll: {exc}", "nothing was enrolled"]
    lines: list[str] = []

    def enrolled(outcome: EnrollmentOutcome) -> None:
        print(
            f"enrolled {outcome.device.account_jid} as device kid {outcome.device.kid.hex()}: "
            f"{outcome.provisioning_file.name}",
            flush=True,
        )

    outcome = trio.run(
        functools.partial(
            enroll_bulk,
            configuration,
            accounts,
            outputs,
            register=args.register,
            gateway_host=args.gateway_host,
            jobs=args.jobs,
            on_enrolled=enrolled,
        )
    )
    done = len(outcome.enrolled)
    stored_passwords = sum(1 for o in outcome.enrolled if o.stored_password)
    lines.append(
        f"{done} of {len(accounts)} devices enrolled; provisioning files in {args.out} "
        "(mode 0600): give each to its device over a trusted path, then delete it"
    )
    if args.register and args.password_file is None and args.password_env is None:
        lines.append(
            "  passwords:    a random one per account, used to register and log in, then "
            "forgotten (the gateway keeps SCRAM's salted password only)"
        )
    if stored_passwords:
        lines.append(
            f"  stored:       THE PASSWORD ITSELF for {stored_passwords} accounts (no SCRAM "
            "on their server); see 'impp-gateway enroll' without --bulk for why"
        )
    if outcome.failure is None:
        return 0, lines, []
    return (
        1,
        lines,
        [
            f"impp-gateway enroll: {outcome.failed_jid}: {outcome.failure}",
            "enrollment stopped there; those listed above are enrolled",
        ],
    )


def _report(outcome: EnrollmentOutcome) -> list[str]:
    device, login = outcome.device, outcome.login
    if login.scram is not None:
        stored = (
            f"{login.mechanism} salted password ({login.scram.iterations} iterations, "
            f"{len(login.scram.salt)}-byte salt); the password itself is not stored"
        )
    else:
        stored = (
            f"THE PASSWORD ITSELF: the server offers no SCRAM, only {login.mechanism}, so "
            "the gateway must keep the password (in the database, mode 0600, never logged); "
            "enable SCRAM on the server and enroll again to remove it"
        )
    key = (
        "generated by the gateway; the private key is in the provisioning file only"
        if outcome.key_generated
        else "the device's own (--device-key); its private key never left the device"
    )
    size = outcome.provisioning_file.stat().st_size
    return [
        f"enrolled {device.account_jid} as device kid {device.kid.hex()}",
        *(["  registered:   the account was created (XEP-0077)"] if outcome.registered else []),
        f"  login:        {login.mechanism} accepted by {login.server.host}:{login.server.port}",
        f"  stored:       {stored}",
        f"  device key:   {key}",
        f"  provisioning: {outcome.provisioning_file} ({size} B, mode 0600): give it to the "
        "device over a trusted path, then delete it",
        "  gateway:      " + ", ".join(str(e) for e in outcome.provisioning.endpoints),
        f"  signing:      {outcome.signing_certificate_file} (key sealed in "
        f"{outcome.signing_key_file})",
    ]
