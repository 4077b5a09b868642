"""The gateway side of ``gateway-capacity`` through Prosody, run as its own process: ``python -m
bench._capacity_service --config FILE``.

It runs what ``impp-gateway run`` runs (:mod:`gateway.cli_run`): the configuration loaded and
checked, the durable SQLite store opened as ``run`` opens it, and one
:class:`~gateway.service.GatewayService` over them, so each enrolled device gets its relay, its
upstream XMPP session to the real Prosody and its binding, and the device listeners are the real
ones. What ``run`` adds and this process leaves out: the signal handlers and the revocation
watcher (the benchmark tells it what to do over standard input instead).

It prints ``READY <udp port>`` once listening, then answers one line per command:

* ``stats``: one JSON line of counters (sessions held, handshakes, upstream sessions up);
* ``bind``: re-read the device registry (the new devices get a binding and an upstream session,
  as the registry refresh of a running gateway gives them), wait until every bound device's
  upstream session is established (bounded), and answer with a JSON line saying how many are up
  and how long the logins took;
* ``quit`` (or end of input): drain and stop as on SIGTERM.

With ``--profile FILE`` it runs under cProfile and writes the statistics to FILE on exit.

The service's log goes to standard error at WARNING (one line per bound device at INFO would be
tens of thousands of lines).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import trio

from gateway.config import load_configuration
from gateway.service import GatewayService
from gateway.store import open_sqlite_store

BIND_TIMEOUT = 1800.0  # seconds every new upstream session may take to log in


def _statistics(service: GatewayService) -> dict[str, Any]:
    """Sessions held by the listeners, their counters, and the upstream sessions up."""
    sessions = handshakes = resumptions = retransmissions = 0
    dropped: dict[str, int] = {}
    for listener in service.listeners:
        statistics = listener.core.statistics()
        sessions += statistics.sessions
        handshakes += statistics.handshakes_completed
        resumptions += statistics.resumptions
        retransmissions += statistics.retransmissions
        for reason, count in statistics.dropped.items():
            dropped[str(reason)] = dropped.get(str(reason), 0) + count
    bindings = service.bindings()
    upstream = [s for manager in service.managers.values() for s in manager.sessions.values()]
    store = _store_statistics(service)
    return {
        "sessions": sessions,
        "handshakes_completed": handshakes,
        "resumptions": resumptions,
        "retransmissions": retransmissions,
        "core_dropped": dropped,
        "bindings": len(bindings),
        "upstream_sessions": len(upstream),
        "upstream_up": sum(1 for b in bindings.values() if b.upstream_up.is_set()),
        "service_counters": dict(sorted(service.counters.items())),
        "store": store,
    }


def _store_statistics(service: GatewayService) -> dict[str, Any]:
    """The SQLite writer's commits: how many, how big, how long (empty for another store)."""
    statistics = getattr(service.store, "statistics", None)
    if statistics is None:
        return {}
    writer = statistics()
    return {
        "commits": writer.commits,
        "operations_committed": writer.operations_committed,
        "mean_batch": round(writer.mean_batch_size, 2),
        "mean_commit_ms": round(writer.mean_commit_seconds * 1000, 3),
        "max_commit_ms": round(writer.commit_seconds_max * 1000, 3),
        "failed_commits": writer.failed_commits,
    }


async def _bind_all(service: GatewayService) -> dict[str, Any]:
    """Bind the devices enrolled since the last read and wait for their upstream sessions."""
    started = time.monotonic()
    before = set(service.bindings())
    await service.refresh_registry()
    bound = time.monotonic()
    new = [b for kid, b in service.bindings().items() if kid not in before]
    with trio.move_on_after(BIND_TIMEOUT):
        for binding in new:
            await binding.upstream_up.wait()
    up = sum(1 for b in new if b.upstream_up.is_set())
    return {
        "new": len(new),
        "up": up,
        "bind_seconds": round(bound - started, 3),
        "seconds": round(time.monotonic() - started, 3),
    }


async def _commands(service: GatewayService) -> None:
    """Answer the benchmark's commands (see the module docstring) until ``quit``."""
    stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
    buffer = b""
    while True:
        data = await stdin.receive_some(1024)
        if not data:
            return
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            command = line.strip()
            if command == b"quit":
                return
            if command == b"stats":
                print(json.dumps(_statistics(service)), flush=True)
            elif command == b"bind":
                print(json.dumps(await _bind_all(service)), flush=True)


async def serve(config_path: Path) -> None:
    """The gateway service over the configuration at ``config_path`` until told to quit."""
    configuration = load_configuration(config_path)
    async with open_sqlite_store(
        configuration.store.database, max_device_queue=configuration.limits.queue_length
    ) as store:
        # The registry refresh is driven by ``bind``: a timed one would bind half a level.
        service = GatewayService(configuration, store, registry_refresh=365 * 86400.0)
        async with trio.open_nursery() as nursery:
            addresses = await nursery.start(service.serve)
            print(f"READY {addresses.udp[0][1]}", flush=True)
            await _commands(service)
            service.request_stop()


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve."""
    parser = argparse.ArgumentParser(prog="python -m bench._capacity_service")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--profile", default=None, help="run under cProfile, statistics to FILE")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    profiler = cProfile.Profile() if args.profile else None
    if profiler is not None:
        profiler.enable()
    try:
        trio.run(serve, args.config)
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(args.profile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
