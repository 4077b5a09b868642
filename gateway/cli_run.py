"""``impp-gateway run``: validate the configuration, then run the gateway service until signalled.

The configuration is checked first (every problem printed with its fix, exit status 2, as
``config check`` does); then the store is opened and :class:`~gateway.service.GatewayService`
runs until SIGTERM or SIGINT, after which it stops the listeners, closes the upstream streams
and the store commits what was submitted (exit status 0). A failure to start (unreadable key,
CA or database) exits 1 with one line saying what. The log has one line per event on stderr
(``gateway.observability.configure_logging``: JSON unless stderr is a terminal) and never holds
keys, passwords, tickets or message bodies (docs/service.md). SIGHUP re-reads the registry
(revocations) and the configuration file: what can change live is applied, and one log line
names every changed key that needs a restart (:func:`reload_configuration`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Final

import trio

from gateway.config import (
    CONFIG_FILE_NAME,
    ConfigError,
    Configuration,
    IdentityError,
    ReloadPlan,
    load_configuration,
)
from gateway.observability import configure_logging, set_log_level
from gateway.signing import SigningError
from gateway.store import StoreError

if TYPE_CHECKING:
    from gateway.service import GatewayService

__all__ = ["add_run_commands", "reload_configuration", "resolve_config_path", "run_run_command"]

CONFIG_PROBLEMS_EXIT: Final = 2  # as ``config check``: the operator has something to fix
START_FAILED_EXIT: Final = 1
CONFIG_ENVIRONMENT_VARIABLE: Final = "IMPP_GATEWAY_CONFIG"
# What stops a start that the configuration check could not foresee: an unreadable key, CA or
# database, a port taken since the check. The key, CA and store errors say no secret.
_START_FAILURES = (OSError, IdentityError, SigningError, StoreError)


def add_run_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run`` to the subcommands."""
    run = commands.add_parser(
        "run",
        help="run the gateway until SIGTERM or SIGINT",
        description=(
            "Validate the configuration, then run the device listeners and one upstream XMPP "
            "session per enrolled device until SIGTERM or SIGINT."
        ),
    )
    run.add_argument(
        "--config",
        type=Path,
        default=None,
        help=(
            f"the configuration file, or the directory 'impp-gateway init' made (default: "
            f"${CONFIG_ENVIRONMENT_VARIABLE}, else ./{CONFIG_FILE_NAME})"
        ),
    )


def resolve_config_path(given: Path | None) -> Path:
    """The configuration file: ``given`` (a directory means its gateway.toml), else the default."""
    if given is None:
        from_environment = os.environ.get(CONFIG_ENVIRONMENT_VARIABLE)
        given = Path(from_environment) if from_environment else Path(CONFIG_FILE_NAME)
    return given / CONFIG_FILE_NAME if given.is_dir() else given


def run_run_command(args: argparse.Namespace) -> int:
    """Carry out ``run``; returns the exit status."""
    path = resolve_config_path(args.config)
    try:
        configuration = load_configuration(path)
    except ConfigError as exc:
        for line in exc.report():
            print(line, file=sys.stderr)
        count = len(exc.problems)
        print(f"{path}: {count} problem{'s' if count != 1 else ''}; not started", file=sys.stderr)
        return CONFIG_PROBLEMS_EXIT
    configure_logging(configuration.gateway.log_level.value)
    try:
        trio.run(_serve, configuration, path)
    except Exception as raised:
        failure = _leaf(raised)
        if not isinstance(failure, _START_FAILURES):
            raise
        print(
            f"impp-gateway run: cannot start: {type(failure).__name__}: {failure}", file=sys.stderr
        )
        return START_FAILED_EXIT
    return 0


def _leaf(error: BaseException) -> BaseException:
    """The first failure inside (possibly nested) exception groups."""
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


def reload_configuration(service: GatewayService, path: Path) -> ReloadPlan | None:
    """SIGHUP: re-read the configuration file at ``path``, apply what can change live (the log
    level, the session limits and timeouts, the drain budget; ``gateway.config.reload``) and log
    one line naming the keys applied and those that keep their running value until a restart.
    A file with problems changes nothing (the log names the keys at fault, not their values)."""
    log = logging.getLogger("gateway.service")
    try:
        new = load_configuration(path, check_files=False, check_ports=False)
    except ConfigError as exc:
        keys = ", ".join(sorted({problem.key for problem in exc.problems}))
        log.warning(
            "reload: %s has %d problems (%s); nothing changed", path, len(exc.problems), keys
        )
        return None
    plan = service.apply_configuration(new)
    if "gateway.log_level" in plan.applied:
        set_log_level(new.gateway.log_level.value)
    if plan.changed:
        log.info("%s", plan.summary())
    else:
        log.info("reload: configuration unchanged")
    return plan


async def _serve(configuration: Configuration, path: Path) -> None:
    """Open the store, run the service, drain it on the first SIGTERM or SIGINT."""
    from gateway.enroll.revocation_watch import watch_revocations
    from gateway.service import GatewayService
    from gateway.store import open_sqlite_store

    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with open_sqlite_store(
            configuration.store.database, max_device_queue=configuration.limits.queue_length
        ) as store:
            service = GatewayService(configuration, store)

            async def stop_on_signal() -> None:
                async for number in signals:
                    logging.getLogger("gateway.service").info(
                        "received %s", signal.Signals(number).name
                    )
                    service.request_stop()
                    return

            async with trio.open_nursery() as nursery:
                nursery.start_soon(stop_on_signal)

                async def reload() -> None:
                    await service.refresh_registry()
                    reload_configuration(service, path)

                # `devices revoke` signals (SIGHUP) or marks the store, and an operator sends
                # SIGHUP after editing the file: re-read the registry and the configuration.
                await nursery.start(
                    functools.partial(
                        watch_revocations, store, configuration.gateway.data_dir, reload
                    )
                )
                await service.serve()
                nursery.cancel_scope.cancel()
