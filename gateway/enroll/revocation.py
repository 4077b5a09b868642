"""How ``impp-gateway devices revoke`` tells a running gateway to act at once.

The store is the truth: ``revoke_device`` commits the state ``revoked``. Two signals then reach
the service, so that it ends the device's live session and refuses its handshakes and
resumptions without waiting for a restart:

1. **SIGHUP to the running gateway.** ``impp-gateway run`` writes :data:`PID_FILE_NAME` into its
   data directory (:func:`write_pid_file`: the pid and the process's start time from
   ``/proc/PID/stat``, so a stale file whose pid was reused by another process is recognised and
   that process is never signalled) and removes it on exit (:func:`remove_pid_file`).
   :func:`notify_gateway` sends SIGHUP only to the process the file describes.
2. **A revocation marker in the store**, the named blob :data:`REVOCATION_MARKER_BLOB`, set to a
   fresh value by every revocation (:func:`revocation_marker`). A gateway that missed the
   signal (another host on a shared database, a signal lost during start-up) notices the change
   when it polls the blob, and re-reads the registry.

On either, the service re-reads ``list_devices()`` and, for every device now revoked, ends its
session, drops its resumption state and refuses it from then on (docs/operations.md, "Enrolling
devices"). :func:`gateway.enroll.revocation_watch.watch_revocations` is that half as one trio
task; this module stays synchronous for the command line.
"""

from __future__ import annotations

import contextlib
import enum
import os
import secrets
import signal
import struct
from pathlib import Path
from typing import Final

__all__ = [
    "PID_FILE_NAME",
    "REVOCATION_MARKER_BLOB",
    "NotifyResult",
    "notify_gateway",
    "process_start_time",
    "read_pid_file",
    "remove_pid_file",
    "revocation_marker",
    "write_pid_file",
]

PID_FILE_NAME: Final = "gateway.pid"
REVOCATION_MARKER_BLOB: Final = "devices.revocation-marker"
_MAX_PID_FILE: Final = 64


class NotifyResult(enum.Enum):
    """What :func:`notify_gateway` found."""

    SIGNALLED = "signalled"  # the running gateway was sent SIGHUP
    NOT_RUNNING = "not-running"  # no pid file: no gateway runs from this data directory
    STALE = "stale"  # a pid file whose process is gone (or is another process now)
    NOT_PERMITTED = "not-permitted"  # the gateway runs as another user


def process_start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (``/proc/PID/stat`` field 22)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text("ascii", "replace")
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces or ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def revocation_marker(kid: bytes, now: float) -> bytes:
    """A value for :data:`REVOCATION_MARKER_BLOB` that differs from every earlier one."""
    return struct.pack(">d", now) + secrets.token_bytes(8) + kid


def write_pid_file(data_dir: Path, pid: int | None = None) -> Path:
    """Record this process (or ``pid``) as the gateway running from ``data_dir``."""
    pid = os.getpid() if pid is None else pid
    path = data_dir / PID_FILE_NAME
    start = process_start_time(pid)
    temporary = path.with_name(f".{PID_FILE_NAME}.{secrets.token_hex(4)}")
    temporary.write_text(f"{pid} {start if start is not None else 0}\n", "ascii")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)
    return path


def remove_pid_file(data_dir: Path, pid: int | None = None) -> None:
    """Remove the pid file if it names this process (or ``pid``)."""
    pid = os.getpid() if pid is None else pid
    recorded = read_pid_file(data_dir)
    if recorded is not None and recorded[0] == pid:
        with contextlib.suppress(FileNotFoundError):
            (data_dir / PID_FILE_NAME).unlink()


def read_pid_file(data_dir: Path) -> tuple[int, int] | None:
    """(pid, start time) from the pid file, or None if there is none or it is not one."""
    try:
        with (data_dir / PID_FILE_NAME).open("rb") as handle:
            text = handle.read(_MAX_PID_FILE).decode("ascii")
        pid_text, start_text = text.split()
        pid, start = int(pid_text), int(start_text)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return (pid, start) if pid > 0 and start >= 0 else None


def notify_gateway(data_dir: Path) -> NotifyResult:
    """Send SIGHUP to the gateway running from ``data_dir``, if one is (see the module doc)."""
    recorded = read_pid_file(data_dir)
    if recorded is None:
        return NotifyResult.NOT_RUNNING
    pid, start = recorded
    if process_start_time(pid) != start:
        return NotifyResult.STALE
    try:
        os.kill(pid, signal.SIGHUP)
    except ProcessLookupError:
        return NotifyResult.STALE
    except PermissionError:
        return NotifyResult.NOT_PERMITTED
    return NotifyResult.SIGNALLED
