"""``impp-gateway devices list|show|revoke``: the device registry, for the operator.

``revoke`` commits the state ``revoked`` in the store, sets the store's revocation marker and
sends SIGHUP to a gateway running from the same data directory (gateway.enroll.revocation), so
that it ends the device's live session and refuses its handshakes and resumptions at once.
Nothing here prints a key or a password: only kids, accounts, states, times and public facts.
"""

from __future__ import annotations

import argparse
import datetime
import time
from collections.abc import Sequence
from pathlib import Path

import trio
from cryptography import x509

from gateway.cli_ca import CommandError
from gateway.cli_enroll import add_config_argument, load_enroll_configuration
from gateway.config import Configuration
from gateway.edhoc import Credential, LocalEdhocError
from gateway.enroll.enrollment import PLAIN_HASH_NAME, signing_paths
from gateway.enroll.revocation import (
    REVOCATION_MARKER_BLOB,
    NotifyResult,
    notify_gateway,
    revocation_marker,
)
from gateway.store import DeviceRecord, EnrollmentState, StoreError, open_sqlite_store

__all__ = ["add_devices_commands", "parse_kid", "run_devices_command"]


def add_devices_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``devices list|show|revoke`` under ``commands``."""
    devices = commands.add_parser("devices", help="list, show and revoke enrolled devices")
    device_commands = devices.add_subparsers(
        dest="devices_command", metavar="DEVICES_COMMAND", required=True
    )
    listing = device_commands.add_parser("list", help="every device: kid, account, state, time")
    show = device_commands.add_parser("show", help="one device in full (no secrets)")
    show.add_argument("kid", help="the device's kid in hex, as 'devices list' shows it")
    revoke = device_commands.add_parser(
        "revoke", help="revoke a device: its session ends and it is refused from now on"
    )
    revoke.add_argument("kid", help="the device's kid in hex, as 'devices list' shows it")
    for sub in (listing, show, revoke):
        add_config_argument(sub)


def parse_kid(text: str) -> bytes:
    """A kid as the operator types it: hex digits, optionally after ``0x``."""
    digits = text.strip().removeprefix("0x").removeprefix("0X")
    try:
        kid = bytes.fromhex(digits)
    except ValueError:
        kid = b""
    if not kid:
        raise CommandError(
            f"{text!r} is not a kid: give the hex digits 'impp-gateway devices list' shows"
        )
    return kid


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "-"
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(devices: Sequence[DeviceRecord]) -> list[str]:
    if not devices:
        return ["no devices enrolled; enroll one with 'impp-gateway enroll --jid USER@DOMAIN'"]
    rows = [("KID", "ACCOUNT", "STATE", "ENROLLED AT")]
    rows += [(d.kid.hex(), d.account_jid, d.state.value, _when(d.created_at)) for d in devices]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    ]


async def _show(configuration: Configuration, kid: bytes) -> list[str]:
    async with open_sqlite_store(configuration.store.database) as store:
        device = await store.get_device(kid)
        if device is None:
            raise CommandError(f"no device has kid {kid.hex()}; 'impp-gateway devices list'")
        credential = await store.get_credential(device.account_jid)
    lines = [
        f"kid:          {device.kid.hex()}",
        f"account:      {device.account_jid}",
        f"state:        {device.state.value}",
        f"enrolled at:  {_when(device.created_at)}",
    ]
    if device.state is EnrollmentState.REVOKED:
        lines.append(f"revoked at:   {_when(device.revoked_at)}")
    try:
        edhoc = Credential.from_ccs(device.credential)
        lines.append(
            f"edhoc:        CCS credential, {len(device.credential)} B, {edhoc.curve.name}, "
            f"public key {edhoc.public_key[:8].hex()}..."
        )
    except LocalEdhocError:
        lines.append(f"edhoc:        {len(device.credential)} B credential (not a CCS)")
    if credential is None:
        lines.append("upstream:     no credential stored")
    elif credential.hash_name == PLAIN_HASH_NAME:
        lines.append("upstream:     the password itself (the server offered no SCRAM)")
    else:
        lines.append(
            f"upstream:     SCRAM-{credential.hash_name} salted password, "
            f"{credential.iterations} iterations (no password stored)"
        )
    _key, certificate_path = signing_paths(configuration, device.kid)
    lines.append(f"signing:      {_certificate_summary(certificate_path)}")
    return lines


def _certificate_summary(path: Path) -> str:
    try:
        certificate = x509.load_pem_x509_certificates(path.read_bytes())[0]
    except (OSError, ValueError, IndexError):
        return f"no certificate at {path}"
    return f"{path}, valid until {certificate.not_valid_after_utc:%Y-%m-%d}"


async def _revoke(configuration: Configuration, kid: bytes) -> list[str]:
    now = time.time()
    async with open_sqlite_store(configuration.store.database) as store:
        device = await store.get_device(kid)
        if device is None:
            raise CommandError(f"no device has kid {kid.hex()}; 'impp-gateway devices list'")
        if not await store.revoke_device(kid, now=now):
            return [f"device {kid.hex()} ({device.account_jid}) was already revoked"]
        await store.put_blob(REVOCATION_MARKER_BLOB, revocation_marker(kid, now), now=now)
    result = notify_gateway(configuration.gateway.data_dir)
    told = {
        NotifyResult.SIGNALLED: "the running gateway was told (SIGHUP) and ends its session now",
        NotifyResult.NOT_RUNNING: "no gateway runs from this data directory; it will refuse "
        "the device when it starts",
        NotifyResult.STALE: "the pid file is stale (no gateway runs); it will refuse the device "
        "when it starts",
        NotifyResult.NOT_PERMITTED: "the gateway runs as another user and could not be signalled; "
        "it notices the revocation when it next polls the store",
    }[result]
    return [f"revoked device {kid.hex()} ({device.account_jid})", f"  {told}"]


async def _list(configuration: Configuration) -> list[str]:
    async with open_sqlite_store(configuration.store.database) as store:
        return _table(await store.list_devices())


def run_devices_command(args: argparse.Namespace) -> tuple[int, list[str], list[str]]:
    """Carry out one ``devices`` command: (exit status, stdout lines, stderr lines)."""
    loaded = load_enroll_configuration(args)
    if isinstance(loaded, tuple):
        return loaded[0], [], loaded[1]
    try:
        if args.devices_command == "list":
            lines = trio.run(_list, loaded)
        elif args.devices_command == "show":
            lines = trio.run(_show, loaded, parse_kid(args.kid))
        else:
            lines = trio.run(_revoke, loaded, parse_kid(args.kid))
    except (CommandError, StoreError) as exc:
        return 1, [], [f"impp-gateway devices {args.devices_command}: {exc}"]
    return 0, lines, []
