"""``impp-devices swarm``: many emulated devices against a running gateway, with a summary.

The devices come from the provisioning files in ``--provision-dir`` (``impp-gateway enroll
--bulk`` writes them, one per device, named so that they sort in enrollment order); each gets its
own UDP socket. Against a loopback gateway each device binds its own loopback address
(127.1.x.y), so the gateway's per-host limits see one host per device, as on a carrier network.
The summary's fields are described in docs/device-sim.md.

Each device's next SendMessage id and its window of IncomingMessage ids shown are kept in a state
file (``--state``, by default ``swarm-state.json`` in ``--provision-dir``), as a device keeps them
across power cycles: the gateway de-duplicates messages by ``(device, id)`` for days, so a second
run that counted from 1 again would have its messages taken for repeats of the first run's; and a
message the gateway sends again in the next session because the last run ended before its
acknowledgement is dropped only by a device that remembers having shown it. The file is written
before the devices start, with the ids the run's plan reserves (so a run that is killed does not
reuse them), and again at the end with the windows.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from device_sim.client.core import DEDUPE_WINDOW
from device_sim.radio.presets import PRESETS, preset
from device_sim.swarm.plan import Mix, MixError, SleepPlan, parse_duration

if TYPE_CHECKING:  # the run imports the gateway, trio and rich; --help and other commands do not
    from device_sim.client.runner import DatagramSockets
    from device_sim.swarm.ledger import Summary
    from gateway.enroll.provisioning import Provisioning

__all__ = ["add_swarm_command", "load_provisionings", "run_swarm_command"]

PROVISIONING_SUFFIX = ".prov"
STATE_FILE = "swarm-state.json"  # in --provision-dir unless --state names another
STATE_VERSION = 1
EXIT_OK = 0
EXIT_LOST = 1  # something lost, duplicated or refused
EXIT_USAGE = 2
EXIT_IN_FLIGHT = 3  # nothing lost, but messages still in flight when the drain ended
SUMMARY_WIDTH = 110  # columns of the summary when standard output is not a terminal
LOOPBACK_HOSTS = 250 * 250  # 127.1.x.y with x, y in 0..249 / 1..250


def add_swarm_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``swarm`` under ``commands``."""
    parser = commands.add_parser(
        "swarm",
        help="run many emulated devices against a gateway and print a summary",
        description=(
            "Start COUNT devices from the provisioning files in DIR; they chat with each other "
            "and with people, change presence and sleep per the mix and schedule, over a "
            "modelled radio link, for DURATION; then wait for what is in flight and print the "
            "summary (docs/device-sim.md). Exit 0 when every observable message was delivered "
            "exactly once; 1 when one was lost, duplicated or refused; 3 when none was but some "
            "were still in flight when the drain ended; 2 for bad arguments."
        ),
    )
    parser.add_argument(
        "--gateway",
        metavar="HOST:PORT",
        help="the gateway's UDP address (default: each provisioning file's own endpoint)",
    )
    parser.add_argument("--provision-dir", type=Path, required=True, metavar="DIR")
    parser.add_argument("--count", type=int, default=None, help="devices (default: all files)")
    parser.add_argument(
        "--link", default="lte", choices=sorted(PRESETS), help="the radio link preset"
    )
    parser.add_argument("--no-link-model", action="store_true", help="send straight to UDP")
    parser.add_argument("--duration", default="60s", help="how long devices act (60s, 5m)")
    parser.add_argument("--drain", default="60s", help="how long to wait for what is in flight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--mix",
        default="",
        help="operation weights and rate: chat=6,person=2,presence=2,rate=2 (per device/minute)",
    )
    parser.add_argument(
        "--person",
        action="append",
        default=[],
        metavar="JID",
        help="a person's account the devices write to (repeat; none: person weight goes to chat)",
    )
    parser.add_argument("--sleep", metavar="PERIOD:AWAKE", help="sleep schedule, e.g. 60s:20s")
    parser.add_argument("--max-connecting", type=int, default=32, help="handshakes at once")
    parser.add_argument(
        "--state",
        type=Path,
        metavar="FILE",
        help=(
            "each device's next message id and inbound window across runs "
            f"(default: DIR/{STATE_FILE})"
        ),
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON only")


def load_provisionings(directory: Path, count: int | None) -> list[Provisioning]:
    """The first ``count`` provisioning files of ``directory``, in natural name order."""
    from gateway.enroll.provisioning import ProvisioningError, read_provisioning_file

    def natural(path: Path) -> list[object]:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]

    paths = sorted(directory.glob(f"*{PROVISIONING_SUFFIX}"), key=natural)
    if count is not None:
        if len(paths) < count:
            raise ProvisioningError(
                f"{directory} holds {len(paths)} provisioning files, fewer than --count {count}"
            )
        paths = paths[:count]
    if not paths:
        raise ProvisioningError(f"no *{PROVISIONING_SUFFIX} files in {directory}")
    provisionings = [read_provisioning_file(path) for path in paths]
    for path, provisioning in zip(paths, provisionings, strict=True):
        if provisioning.device_private_key is None:
            raise ProvisioningError(f"{path.name} holds no device key (enrolled --device-key)")
    return provisionings


def _parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise MixError(f"--gateway takes HOST:PORT, got {text!r}")
    return host.strip("[]"), int(port)


def _raise_file_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _sockets_for(
    provisionings: Sequence[Provisioning], gateway: tuple[str, int] | None
) -> list[DatagramSockets]:
    from device_sim.client.runner import UdpSockets, gateway_address

    sockets: list[DatagramSockets] = []
    for index, provisioning in enumerate(provisionings):
        address = gateway or gateway_address(provisioning)
        bind_host = None
        if address[0].startswith("127.") and index < LOOPBACK_HOSTS:
            bind_host = f"127.1.{index // 250}.{index % 250 + 1}"
        sockets.append(UdpSockets(address, bind_host=bind_host))
    return sockets


def summary_ok(summary: Summary) -> bool:
    """Every observable message delivered, none twice, none refused."""
    return exit_status(summary) == EXIT_OK


def exit_status(summary: Summary) -> int:
    """0 all delivered once; 1 lost, duplicated or refused; 3 only some still in flight."""
    total = summary.total
    if total.lost or total.duplicated or total.refused:
        return EXIT_LOST
    return EXIT_IN_FLIGHT if summary.in_flight else EXIT_OK


class StateError(ValueError):
    """A state file the swarm cannot read."""


@dataclass(frozen=True)
class DeviceState:
    """What the swarm keeps per device between runs (see the module docstring)."""

    next_message_id: int = 1
    inbound: tuple[int, int] = (-1, 0)  # the InboundWindow: highest id shown, bitmap below it


def _load_state(path: Path) -> tuple[dict[str, object], dict[str, object], int]:
    """The next-id and inbound-window tables of ``path`` and its count of runs (empty, 0 when
    there is no file)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}, {}, 0
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StateError(f"cannot read {path}: {exc}") from exc
    ids = data.get("next_message_id") if isinstance(data, dict) else None
    windows = data.get("inbound", {}) if isinstance(data, dict) else None
    if data.get("version") != STATE_VERSION or not isinstance(ids, dict):
        raise StateError(f"{path} is not a swarm state file of version {STATE_VERSION}")
    runs = data.get("runs", 0)
    if not isinstance(windows, dict) or not isinstance(runs, int) or not _is_int(runs, 0, 2**63):
        raise StateError(f"{path} is not a swarm state file of version {STATE_VERSION}")
    return ids, windows, runs


def _is_int(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < high


def runs_recorded(path: Path) -> int:
    """How many runs ``path`` has seen (this run's tag is the next number)."""
    return _load_state(path)[2]


def read_state(path: Path, provisionings: Sequence[Provisioning]) -> list[DeviceState]:
    """Each device's state for this run from ``path`` (a fresh one for devices it lacks)."""
    ids, windows, _ = _load_state(path)
    states: list[DeviceState] = []
    for provisioning in provisionings:
        kid = provisioning.device_kid.hex()
        first = ids.get(kid, 1)
        window = windows.get(kid, [-1, 0])
        if not isinstance(first, int) or not _is_int(first, 1, 2**63):
            raise StateError(f"{path}: bad next message id for kid {kid}")
        if (
            not isinstance(window, list)
            or len(window) != 2
            or not _is_int(window[0], -1, 2**63)
            or not _is_int(window[1], 0, 2**DEDUPE_WINDOW)
        ):
            raise StateError(f"{path}: bad inbound window for kid {kid}")
        states.append(DeviceState(first, (window[0], window[1])))
    return states


def write_state(
    path: Path,
    provisionings: Sequence[Provisioning],
    next_ids: Sequence[int],
    windows: Sequence[tuple[int, int]],
    *,
    runs: int | None = None,
) -> None:
    """Record each device's state in ``path`` (other devices' entries kept), atomically;
    ``runs`` replaces the count of runs."""
    try:
        ids, inbound, recorded = _load_state(path)
    except StateError:
        ids, inbound, recorded = {}, {}, 0  # unreadable: replaced by what this run knows
    for provisioning, next_id, window in zip(provisionings, next_ids, windows, strict=True):
        kid = provisioning.device_kid.hex()
        ids[kid] = next_id
        inbound[kid] = list(window)
    document = {
        "version": STATE_VERSION,
        "runs": recorded if runs is None else runs,
        "next_message_id": ids,
        "inbound": inbound,
    }
    text = json.dumps(document, sort_keys=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text + "\n", "utf-8")
    os.replace(temporary, path)


def run_swarm_command(args: argparse.Namespace) -> int:
    """Run ``swarm`` with parsed ``args``."""
    import trio
    from rich.console import Console

    from device_sim.swarm.driver import Swarm, SwarmConfig
    from gateway.enroll.provisioning import ProvisioningError

    console = Console(stderr=True)
    out = Console() if Console().is_terminal else Console(width=SUMMARY_WIDTH)
    try:
        mix = Mix.parse(args.mix)
        sleep = SleepPlan.parse(args.sleep) if args.sleep else None
        duration = parse_duration(args.duration)
        drain = parse_duration(args.drain)
        gateway = _parse_address(args.gateway) if args.gateway else None
        provisionings = load_provisionings(args.provision_dir, args.count)
        state = args.state or args.provision_dir / STATE_FILE
        states = read_state(state, provisionings)
        run_number = runs_recorded(state) + 1
    except (MixError, ProvisioningError, StateError, OSError) as exc:
        console.print(f"impp-devices swarm: {exc}")
        return EXIT_USAGE
    _raise_file_limit(len(provisionings) * 2 + 64)
    sockets = _sockets_for(provisionings, gateway)
    config = SwarmConfig(
        duration=duration,
        link=preset(args.link),
        seed=args.seed,
        mix=mix,
        people=tuple(args.person),
        sleep=sleep,
        drain=drain,
        max_connecting=args.max_connecting,
        model_link=not args.no_link_model,
        run_tag=str(run_number),
    )
    swarm = Swarm(
        provisionings,
        sockets.__getitem__,
        config,
        first_message_ids=[s.next_message_id for s in states],
        inbound_windows=[s.inbound for s in states],
    )
    try:
        write_state(
            state,
            provisionings,
            swarm.reserved_message_ids(),
            [s.inbound for s in states],
            runs=run_number,
        )
    except OSError as exc:
        console.print(f"impp-devices swarm: cannot write {state}: {exc}")
        return EXIT_USAGE

    async def main() -> Summary:
        if args.json or not console.is_terminal:
            return await swarm.run()
        from device_sim.swarm.display import LiveProgress

        with LiveProgress(console) as live:
            return await swarm.run(on_progress=live.update)

    summary = trio.run(main)
    try:
        write_state(state, provisionings, swarm.reserved_message_ids(), swarm.inbound_windows())
    except OSError as exc:
        console.print(f"impp-devices swarm: cannot write {state}: {exc}")
    if args.json:
        print(summary.to_json())
    else:
        from device_sim.swarm.display import print_summary

        print_summary(summary, out)
    return exit_status(summary)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m device_sim.swarm.cli``: the subcommand alone."""
    parser = argparse.ArgumentParser(prog="impp-devices")
    add_swarm_command(parser.add_subparsers(dest="command", required=True))
    return run_swarm_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
