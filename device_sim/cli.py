"""The ``impp-devices`` command: the device emulator's entry point (``demo`` runs the demo)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from device_sim.chat.cli import add_chat_parser, run_chat_command
from device_sim.swarm.cli import add_swarm_command, run_swarm_command
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
            "Start a private Prosody on loopback, then 'impp-gateway init', 'enroll' (once per "
            "device) and 'run' as processes; a handful of emulated devices, each built from its "
            "provisioning file, connect with EDHOC over a seeded lossy radio link model and chat "
            "with an XMPP user and with each other, change presence, sleep and wake; then the "
            "gateway is stopped with SIGTERM and a summary shows every message counted at both "
            "ends and the bytes per operation against XMPP. Exits 0 on success, 1 with the "
            "failing step's reason otherwise."
        ),
    )
    demo.add_argument("--devices", type=int, default=3, help="how many devices (default 3)")
    demo.add_argument("--link", default="gprs", help="link preset of the devices (default gprs)")
    demo.add_argument("--seed", type=int, default=1, help="seed of the first device's link")
    add_chat_parser(commands)
    add_swarm_command(commands)
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
    if args.command == "swarm":
        return run_swarm_command(args)
    if args.command == "chat":
        return run_chat_command(args)
    # It imports the whole gateway: only when asked.
    from device_sim.service_demo import run_service_demo

    return run_service_demo(sys.stdout, devices=args.devices, link=args.link, seed=args.seed)


if __name__ == "__main__":
    sys.exit(main())
