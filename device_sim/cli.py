"""The ``impp-devices`` command: the device emulator's entry point (``demo`` runs the demo)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from gateway import __version__


def build_parser() -> argparse.ArgumentParser:
    """The argument parser, with one subparser per subcommand that exists."""
    parser = argparse.ArgumentParser(
        prog="impp-devices",
        description="Simulated constrained devices that drive the IMPP gateway.",
    )
    parser.add_argument("--version", action="version", version=f"impp-devices {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("version", help="print the version and exit")
    commands.add_parser(
        "demo",
        help="run the end-to-end demo against a private Prosody",
        description=(
            "Start a private Prosody on loopback, authenticate a simulated device to the "
            "gateway's pieces with EDHOC over UDP, and follow its message and presence to an "
            "XMPP user and back, printing what each step costs in bytes. Exits 0 on success, "
            "1 with the failing step's reason otherwise."
        ),
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "version":
        print(f"impp-devices {__version__}")
        return 0
    from device_sim.demo import run_demo  # imports the whole gateway: only when asked

    return run_demo(sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
