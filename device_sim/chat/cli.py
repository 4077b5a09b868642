"""The ``chat`` subcommand of ``impp-devices``: parser registration and entry point."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_chat_parser", "run_chat_command"]


def add_chat_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``chat`` on the ``impp-devices`` subparsers."""
    chat = commands.add_parser(
        "chat",
        help="be one device in an interactive terminal chat through a gateway",
        description=(
            "Connect as the device of a provisioning file (written by 'impp-gateway enroll') "
            "and chat through the gateway: send messages, see contacts' presence, set your own, "
            "answer subscription requests, sleep and wake. Type /help once connected."
        ),
    )
    chat.add_argument("--provision", required=True, type=Path, metavar="FILE")
    chat.add_argument(
        "--private-key-file",
        type=Path,
        metavar="FILE",
        help="the device's own 32-byte P-256 key (raw or hex) when the file holds none "
        "(enroll --device-key)",
    )
    chat.add_argument(
        "--link",
        metavar="PRESET",
        help="put a radio link model between the device and the gateway (gprs, edge, nb-iot, "
        "lte-m, lte; default: none, straight UDP)",
    )
    chat.add_argument("--seed", type=int, default=1, help="seed of the link model (default 1)")


def _private_key(path: Path) -> bytes:
    data = path.read_bytes()
    if len(data) == 32:
        return data
    text = data.decode("ascii", errors="replace").strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise SystemExit(f"impp-devices chat: {path} holds no 32-byte key (raw or hex)")
    return key


def run_chat_command(args: argparse.Namespace) -> int:
    """Run ``impp-devices chat`` with parsed ``args``; its exit status."""
    import trio

    from device_sim.chat.terminal import run_chat
    from device_sim.radio import DuplexLink, preset
    from gateway.enroll.provisioning import ProvisioningError, read_provisioning_file

    try:
        provisioning = read_provisioning_file(args.provision)
    except (OSError, ProvisioningError) as error:
        print(f"impp-devices chat: cannot read {args.provision}: {error}", file=sys.stderr)
        return 2
    private_key = _private_key(args.private_key_file) if args.private_key_file else None
    link = None
    if args.link:
        try:
            link = DuplexLink(preset(args.link), seed=args.seed)
        except (KeyError, ValueError) as error:
            print(f"impp-devices chat: {error}", file=sys.stderr)
            return 2
    try:
        return trio.run(
            lambda: run_chat(provisioning, sys.stdout, private_key=private_key, link=link)
        )
    except KeyboardInterrupt:
        return 130
