"""The ``impp-gateway`` command.

Subcommands are added as the pieces they drive exist; ``impp-gateway --help`` lists exactly those.
Mistakes in arguments get a message that says what is wrong and how to fix it (argparse's usage
line plus our own text), and exit status 2; operational failures exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway import __version__
from gateway.cli_admin import add_admin_commands, run_admin_command
from gateway.cli_ca import CommandError, add_ca_commands, run_ca_command
from gateway.cli_devices import add_devices_commands, run_devices_command
from gateway.cli_doctor import add_doctor_commands, run_doctor_command
from gateway.cli_enroll import add_enroll_commands, run_enroll_command
from gateway.cli_init import add_init_commands, run_config_command, run_init_command
from gateway.cli_run import add_run_commands, run_run_command


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one subparser per subcommand that exists."""
    parser = argparse.ArgumentParser(
        prog="impp-gateway",
        description=(
            "Instant messaging and presence gateway for constrained devices: compact "
            "EDHOC-authenticated CBOR sessions in, XMPP with CPIM/PIDF and S/MIME out."
        ),
    )
    parser.add_argument("--version", action="version", version=f"impp-gateway {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("version", help="print the version and exit")
    add_ca_commands(commands)
    add_init_commands(commands)
    add_enroll_commands(commands)
    add_devices_commands(commands)
    add_run_commands(commands)
    add_admin_commands(commands)
    add_doctor_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "version":
        print(f"impp-gateway {__version__}")
        return 0
    if args.command == "run":
        return run_run_command(args)
    if args.command in ("enroll", "devices", "status", "sessions", "doctor"):
        runner = {
            "enroll": run_enroll_command,
            "devices": run_devices_command,
            "status": run_admin_command,
            "sessions": run_admin_command,
            "doctor": run_doctor_command,
        }[args.command]
        status, out, err = runner(args)
        if out:
            print("\n".join(out))
        if err:
            print("\n".join(err), file=sys.stderr)
        return status
    if args.command == "config":
        status, out, err = run_config_command(args)
        if out:
            print("\n".join(out))
        if err:
            print("\n".join(err), file=sys.stderr)
        return status
    try:
        lines = run_init_command(args) if args.command == "init" else run_ca_command(args)
    except CommandError as exc:
        print(f"impp-gateway {args.command}: {exc}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
