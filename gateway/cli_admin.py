"""``impp-gateway status`` and ``impp-gateway sessions``: a running gateway's state, read through
its admin socket (gateway.admin), printed as tables (or as the socket's JSON with ``--json``).

The socket is ``admin.sock`` in the configuration's data directory (or ``--socket PATH``). A
gateway that is not running is a clear message and exit status 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from gateway.admin import AdminClientError, admin_request, admin_socket_path
from gateway.admin.protocol import AdminProtocolError, parse_kid
from gateway.cli_run import resolve_config_path
from gateway.config import CONFIG_FILE_NAME, ConfigError, load_configuration

__all__ = ["add_admin_commands", "run_admin_command"]

CONFIG_PROBLEMS_EXIT = 2


def add_admin_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``status`` and ``sessions`` under ``commands``."""
    for name, text in (
        ("status", "show a running gateway's listeners, session counts, upstreams and store"),
        ("sessions", "list a running gateway's device sessions, or close one"),
    ):
        command = commands.add_parser(name, help=text, description=text)
        command.add_argument(
            "--config",
            type=Path,
            default=None,
            help=f"the configuration file or its directory (default: ./{CONFIG_FILE_NAME})",
        )
        command.add_argument(
            "--socket",
            type=Path,
            default=None,
            help="the admin socket (default: DATA_DIR/admin.sock)",
        )
        command.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
        if name == "sessions":
            command.add_argument(
                "--device", metavar="KID", help="only the device with this kid (hex)"
            )
            command.add_argument(
                "--close", metavar="KID", help="end this device's session (kid in hex)"
            )


def _socket(args: argparse.Namespace) -> Path | ConfigError:
    given: Path | None = args.socket
    if given is not None:
        return given
    try:
        configuration = load_configuration(
            resolve_config_path(args.config), check_files=False, check_ports=False
        )
    except ConfigError as exc:
        return exc
    return admin_socket_path(configuration.gateway.data_dir)


def run_admin_command(args: argparse.Namespace) -> tuple[int, list[str], list[str]]:
    """Carry out ``status`` or ``sessions``: (exit status, stdout lines, stderr lines)."""
    prefix = f"impp-gateway {args.command}"
    request: dict[str, object] = {"op": "status"}
    if args.command == "sessions":
        try:
            if args.close is not None:
                request = {"op": "close", "device": parse_kid(args.close).hex()}
            elif args.device is not None:
                request = {"op": "sessions", "device": parse_kid(args.device).hex()}
            else:
                request = {"op": "sessions"}
        except AdminProtocolError as exc:
            return 2, [], [f"{prefix}: {exc}"]
    path = _socket(args)
    if isinstance(path, ConfigError):
        return CONFIG_PROBLEMS_EXIT, [], [*path.report(), f"{prefix}: cannot find the admin socket"]
    try:
        answer = admin_request(path, request)
    except AdminClientError as exc:
        return 1, [], [f"{prefix}: {exc}"]
    if answer.get("ok") is not True:
        return 1, [], [f"{prefix}: {answer.get('error', 'the gateway refused the request')}"]
    if args.json:
        return 0, [json.dumps(answer, indent=2, sort_keys=True)], []
    if request["op"] == "close":
        return 0, [f"closed the session of device {answer.get('closed')}"], []
    if request["op"] == "status":
        return 0, format_status(_object(answer.get("status"))), []
    sessions = answer.get("sessions")
    entries = [_object(s) for s in sessions] if isinstance(sessions, list) else []
    return 0, format_sessions(entries), []


def _object(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _counts(value: object) -> str:
    counts = _object(value)
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"


def _age(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    seconds = int(value)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def format_status(status: dict[str, object]) -> list[str]:
    """``status`` as lines of ``name: value``."""
    store = _object(status.get("store"))
    listeners = status.get("listeners")
    bound = [
        f"{_object(item).get('kind')} {_object(item).get('address')}"
        for item in (listeners if isinstance(listeners, list) else [])
    ]
    return [
        f"version:    {status.get('version')}",
        f"uptime:     {_age(status.get('uptime'))}",
        f"draining:   {'yes' if status.get('draining') else 'no'}",
        "listeners:  " + (", ".join(bound) or "none"),
        f"sessions:   {_counts(status.get('sessions_by_state'))}",
        f"upstreams:  {_counts(status.get('upstream_by_state'))}",
        f"store:      {store.get('state')}, {store.get('device_queue_total')} queued to devices, "
        f"{store.get('upstream_queue_total')} queued upstream",
    ]


_COLUMNS = (
    "KID",
    "ACCOUNT",
    "STATE",
    "ADDRESS",
    "CID",
    "IDLE",
    "UPSTREAM",
    "QUEUE",
    "OLDEST",
    "ASLEEP",
)


def format_sessions(sessions: Sequence[dict[str, object]]) -> list[str]:
    """The sessions as an aligned table, one row each, and a count."""
    rows = [
        (
            str(s.get("kid")),
            str(s.get("account")),
            str(s.get("state")),
            str(s.get("address") or "-"),
            str(s.get("cid") or "-"),
            _age(s.get("last_activity_age")),
            str(s.get("upstream_state")),
            str(s.get("queue_depth")),
            _age(s.get("oldest_queued_age")),
            "yes" if s.get("asleep") else "no",
        )
        for s in sessions
    ]
    widths = [max(len(row[i]) for row in [_COLUMNS, *rows]) for i in range(len(_COLUMNS))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [_COLUMNS, *rows]
    ]
    lines.append(f"{len(rows)} device{'s' if len(rows) != 1 else ''}")
    return lines
