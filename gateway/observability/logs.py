"""Structured logs on the standard library's :mod:`logging`: one line per event.

Every record becomes one mapping (:func:`record_fields`): ``time`` (RFC 3339, UTC, milliseconds),
``level``, ``logger``, ``event`` (the ``event`` a caller names with :func:`log_event`, else the
message's %-template, which is stable across occurrences), ``message`` (the formatted text),
the operation context from :mod:`gateway.observability.context` (``correlation_id``, ``kid``,
``account``), the caller's extra fields, and ``exception`` when there is one; every value is
passed through :mod:`gateway.observability.redaction` first. The mapping is written as a JSON
object when the stream is not a terminal (for journald, a collector, ``jq``) and as a readable
``key=value`` line on a terminal.

The standard library rather than structlog: every layer already logs through
``logging.getLogger(__name__)``, hypercorn does too, and a formatter is all that one line per
event needs; structlog would add a second pipeline for the same records.
"""

from __future__ import annotations

import collections
import json as json_module
import logging
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Final

from gateway.observability.context import current_account, current_correlation_id, current_kid
from gateway.observability.redaction import (
    describe_exception,
    redact_fields,
    redact_value,
)

__all__ = [
    "DEFAULT_RECENT_ERRORS",
    "JsonLineFormatter",
    "KeyValueFormatter",
    "LogEntry",
    "RecentErrors",
    "configure_logging",
    "installed_recent_errors",
    "log_event",
    "parse_level",
    "record_fields",
    "set_log_level",
]

DEFAULT_RECENT_ERRORS: Final = 50  # warnings and errors kept for the status page
_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_RESERVED: Final = frozenset(
    {
        *logging.LogRecord("", 0, "", 0, "", (), None).__dict__,
        "message",
        "asctime",
        "taskName",
        "event",
        "fields",
    }
)
_CONTEXT_KEYS: Final = ("correlation_id", "kid", "account")


def parse_level(level: int | str) -> int:
    """A logging level from a number or a name (``"debug"`` ... ``"critical"``, any case)."""
    if isinstance(level, int) and not isinstance(level, bool):
        return level
    if isinstance(level, str) and level.lower() in _LEVELS:
        return _LEVELS[level.lower()]
    raise ValueError(f"unknown log level {level!r}: use one of {', '.join(_LEVELS)}")


def _rfc3339(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _template(record: logging.LogRecord) -> str:
    """The message template; an object logged as the message (``logger.error(exc)``) is named
    by its type, never by its ``str``, which could quote what it holds."""
    return record.msg if isinstance(record.msg, str) else str(redact_value(record.msg))


def _safe_message(record: logging.LogRecord) -> str:
    """The record's message with each %-argument made safe (bytes by length, masked names)."""
    template = _template(record)
    args = record.args
    if not args:
        return str(redact_value(template))
    safe: object
    if isinstance(args, Mapping):
        safe = redact_fields(args)
    else:
        safe = tuple(redact_value(arg) for arg in args)
    try:
        return str(redact_value(template % safe))
    except (TypeError, ValueError, KeyError):
        return str(redact_value(f"{template} [unformattable arguments]"))


def _kid_field(value: object) -> object:
    """A kid attached to one record: bytes in hex (a kid is an identifier, not a secret)."""
    return value.hex() if isinstance(value, bytes | bytearray) else value


def record_fields(record: logging.LogRecord) -> dict[str, object]:
    """The record as the ordered, redacted mapping that one log line shows."""
    message = _safe_message(record)
    explicit_event = getattr(record, "event", None)
    event = explicit_event if isinstance(explicit_event, str) else _template(record)
    fields: dict[str, object] = {
        "time": _rfc3339(record.created),
        "level": record.levelname.lower(),
        "logger": record.name,
        "event": redact_value(event),
    }
    if message != fields["event"]:
        fields["message"] = message
    context = {
        "correlation_id": getattr(record, "correlation_id", None) or current_correlation_id(),
        "kid": _kid_field(getattr(record, "kid", None)) or current_kid(),
        "account": getattr(record, "account", None) or current_account(),
    }
    for name, value in context.items():
        if value is not None:
            fields[name] = redact_value(value)
    extra: dict[str, object] = {}
    attached = getattr(record, "fields", None)
    if isinstance(attached, Mapping):
        extra.update({str(k): v for k, v in attached.items()})
    for name, value in record.__dict__.items():
        if name not in _RESERVED and name not in _CONTEXT_KEYS and not name.startswith("_"):
            extra[name] = value
    for name, value in redact_fields(extra).items():
        if name not in fields:
            fields[name] = value
    if record.exc_info and record.exc_info[1] is not None:
        fields["exception"] = describe_exception(record.name, record.exc_info[1])
    return fields


class JsonLineFormatter(logging.Formatter):
    """One JSON object per line (no newline inside: JSON escapes them)."""

    def format(self, record: logging.LogRecord) -> str:
        return json_module.dumps(record_fields(record), ensure_ascii=False, separators=(",", ":"))


def _kv_value(value: object) -> str:
    text = value if isinstance(value, str) else json_module.dumps(value, ensure_ascii=False)
    if text and all(ch.isprintable() and ch not in ' "=' for ch in text):
        return text
    return json_module.dumps(text, ensure_ascii=False)


class KeyValueFormatter(logging.Formatter):
    """A readable line for a terminal: time, level, logger, message, then ``key=value`` pairs."""

    def format(self, record: logging.LogRecord) -> str:
        fields = record_fields(record)
        time = fields.pop("time")
        level = str(fields.pop("level")).upper()
        name = fields.pop("logger")
        event = fields.pop("event")
        message = fields.pop("message", event)
        text = str(message)
        if not text.isprintable():
            text = json_module.dumps(text, ensure_ascii=False)  # one line, control bytes escaped
        head = f"{time} {level:<8} {name}: {text}"
        if event != _template(record):
            fields = {"event": event, **fields}
        pairs = " ".join(f"{key}={_kv_value(value)}" for key, value in fields.items())
        return f"{head} {pairs}" if pairs else head


@dataclass(frozen=True)
class LogEntry:
    """One redacted log line kept in memory (for the status page's "last errors")."""

    time: str
    level: str
    logger: str
    event: str
    message: str
    fields: Mapping[str, object] = field(default_factory=dict)

    def as_json(self) -> dict[str, object]:
        """The entry as a JSON-ready mapping."""
        return {
            "time": self.time,
            "level": self.level,
            "logger": self.logger,
            "event": self.event,
            "message": self.message,
            "fields": dict(self.fields),
        }


class RecentErrors(logging.Handler):
    """A bounded in-memory handler: the last ``capacity`` records at ``level`` or above,
    already redacted, oldest first."""

    def __init__(self, capacity: int = DEFAULT_RECENT_ERRORS, level: int = logging.WARNING):
        super().__init__(level)
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._entries: collections.deque[LogEntry] = collections.deque(maxlen=capacity)
        self._entries_lock = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = record_fields(record)
            event = str(fields.pop("event"))
            entry = LogEntry(
                time=str(fields.pop("time")),
                level=str(fields.pop("level")),
                logger=str(fields.pop("logger")),
                event=event,
                message=str(fields.pop("message", event)),
                fields=fields,
            )
        except Exception:
            self.handleError(record)
            return
        with self._entries_lock:
            self._entries.append(entry)

    def entries(self) -> list[LogEntry]:
        """The kept entries, oldest first."""
        with self._entries_lock:
            return list(self._entries)


_installed: list[logging.Handler] = []
_installed_recent: list[RecentErrors] = []


def configure_logging(
    level: int | str,
    *,
    json: bool | None = None,
    stream: IO[str] | None = None,
    recent_errors: int = DEFAULT_RECENT_ERRORS,
) -> RecentErrors:
    """Send every record of the process to ``stream`` (standard error by default) as one line
    each: JSON when ``json`` is true, ``key=value`` when false, and when ``None`` JSON unless the
    stream is a terminal. Also keeps the last warnings and errors in a :class:`RecentErrors`,
    which is returned (the status page shows it). Calling it again replaces what it installed.
    """
    target = stream if stream is not None else sys.stderr
    if json is None:
        try:
            json = not target.isatty()
        except (AttributeError, ValueError):
            json = True
    root = logging.getLogger()
    for handler in _installed:
        root.removeHandler(handler)
    _installed.clear()
    _installed_recent.clear()
    output = logging.StreamHandler(target)
    output.setFormatter(JsonLineFormatter() if json else KeyValueFormatter())
    recent = RecentErrors(recent_errors)
    for handler in (output, recent):
        root.addHandler(handler)
        _installed.append(handler)
    _installed_recent.append(recent)
    root.setLevel(parse_level(level))
    return recent


def installed_recent_errors() -> RecentErrors | None:
    """The :class:`RecentErrors` that :func:`configure_logging` installed, if it ran."""
    return _installed_recent[0] if _installed_recent else None


def set_log_level(level: int | str) -> None:
    """Change the level of every logger that inherits the root's, at once (a SIGHUP reload)."""
    logging.getLogger().setLevel(parse_level(level))


def log_event(
    logger: logging.Logger, event: str, /, level: int = logging.INFO, **fields: object
) -> None:
    """Log one named event with fields (each redacted by name and type on output)."""
    if logger.isEnabledFor(level):
        logger.log(level, event, extra={"event": event, "fields": fields}, stacklevel=2)
