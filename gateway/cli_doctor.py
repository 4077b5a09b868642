"""``impp-gateway doctor``: run gateway.admin.doctor's checks and print each as OK or FAIL with,
on failure, what to do. Exit status 0 when every check passes, 1 otherwise (2 for argument
mistakes, as every command)."""

from __future__ import annotations

import argparse
import functools
from pathlib import Path

import trio

from gateway.admin.doctor import CheckResult, run_doctor
from gateway.cli_run import resolve_config_path
from gateway.config import CONFIG_FILE_NAME

__all__ = ["add_doctor_commands", "format_results", "run_doctor_command"]


def add_doctor_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``doctor`` under ``commands``."""
    doctor = commands.add_parser(
        "doctor",
        help="check configuration, files, store, listeners, upstream DNS/TLS and a login",
        description=(
            "Check the configuration, file modes, the store's schema, that the listeners can "
            "bind, SRV resolution and TLS of each upstream domain, and (with --login) a test "
            "login with an enrolled account's stored credential. Each failure says its fix."
        ),
    )
    doctor.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"the configuration file or its directory (default: ./{CONFIG_FILE_NAME})",
    )
    doctor.add_argument("--login", metavar="JID", help="also log in as this enrolled account")


def format_results(results: list[CheckResult]) -> list[str]:
    """Each check as ``OK   name`` or ``FAIL name``, its details indented, then its fixes."""
    lines: list[str] = []
    for result in results:
        lines.append(f"{'OK  ' if result.ok else 'FAIL'}  {result.name}")
        lines.extend(f"        {detail}" for detail in result.details)
        lines.extend(f"        fix: {fix}" for fix in result.fixes)
    failed = sum(not r.ok for r in results)
    lines.append(
        f"{len(results)} checks, {failed} failed" if failed else f"{len(results)} checks, all OK"
    )
    return lines


def run_doctor_command(args: argparse.Namespace) -> tuple[int, list[str], list[str]]:
    """Carry out ``doctor``: (exit status, stdout lines, stderr lines)."""
    path = resolve_config_path(args.config)
    results = trio.run(functools.partial(run_doctor, path, login=args.login))
    return (0 if all(r.ok for r in results) else 1), format_results(results), []
