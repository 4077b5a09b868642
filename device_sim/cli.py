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
    demo = commands.add_parser(
        "demo",
        help="run the end-to-end demo through the gateway service against a private Prosody",
        description=(
            "Start a private Prosody on loopback, then 'impp-gateway init', 'enroll' and 'run' "
            "as processes; a simulated device built from its provisioning file authenticates "
            "with EDHOC over UDP and exchanges a message each way with an XMPP user, printing "
            "what each step costs in bytes; then the gateway is stopped with SIGTERM. Exits 0 "
            "on success, 1 with the failing step's reason otherwise."
        ),
    )
    demo.add_argument(
        "--pieces",
        action="store_true",
        help="run the older demo instead, which wires the gateway's pieces by hand in one "
        "process (signatures, presence and the closing table of sizes)",
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
    # Both import the whole gateway: only when asked.
    if args.pieces:
        from device_sim.demo import run_demo

        return run_demo(sys.stdout)
    from device_sim.service_demo import run_service_demo

    return run_service_demo(sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
