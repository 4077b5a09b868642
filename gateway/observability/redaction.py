"""What a log line may carry: secret field names masked, bytes shown by length, bounded text.

A log is read by more people than the gateway's keys are, and copied to more places, so the
formatters pass every value a caller attaches through :func:`redact_value` and every field
name through :func:`is_secret_name`: a field named like a secret (``password``, ``ticket``,
``body``, ``edhoc_key``...) becomes ``"[redacted]"`` whatever its value, bytes never appear raw
(only their length: they may be key material or a packet), and an object that is not plain data
is shown by its type (its ``repr`` could quote what it holds). Exceptions from the
network-facing layers are named by type and place only (:func:`describe_exception`): their
messages can quote a peer's bytes, as :mod:`gateway.transport._internal_errors` already assumes.

What this cannot catch: a secret passed as a plain string inside the *message* text of a
%-style call under an innocent field name. The rule stays: never format a secret into a log
message; the log-scanning test helper (tests/support/logscan.py) checks that rule end to end.
"""

from __future__ import annotations

import enum
import os
import traceback
from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "MAX_TEXT",
    "NETWORK_FACING_LOGGERS",
    "REDACTED",
    "SECRET_FIELD_NAMES",
    "describe_exception",
    "is_secret_name",
    "redact_fields",
    "redact_value",
]

REDACTED: Final = "[redacted]"
SECRET_FIELD_NAMES: Final = frozenset(
    {
        "key",
        "password",
        "passphrase",
        "ticket",
        "secret",
        "token",
        "body",
        "salted_password",
        "client_key",
        "server_key",
        "private_key",
        "prk",
        "kek",
        "psk",
        "credential_secret",
        "authorization",
        "cookie",
        "plaintext",
    }
)
"""Field names whose value is never logged (compared case-insensitively)."""

_SECRET_SUFFIXES: Final = ("_key", "_password", "_passphrase", "_secret", "_token", "_ticket")
MAX_TEXT: Final = 2048  # characters of one string value; a longer one is cut and marked
_MAX_DEPTH: Final = 4  # nesting of lists and mappings followed inside one field
_MAX_ITEMS: Final = 32  # items of one list or mapping shown
_PLACES_SHOWN: Final = 3  # innermost stack frames named for an exception

NETWORK_FACING_LOGGERS: Final = (
    "gateway.transport",
    "gateway.session",
    "gateway.edhoc",
    "gateway.wire",
    "gateway.xmpp",
    "gateway.relay",
    "gateway.impp",
    "gateway.service",
    "gateway.enroll",
    "gateway.metrics",
    "gateway.statuspage",
    "hypercorn",
)
"""Loggers whose exceptions are logged by type and place only, never by message."""


def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` holds a secret and must be masked."""
    lowered = name.lower()
    return lowered in SECRET_FIELD_NAMES or lowered.endswith(_SECRET_SUFFIXES)


def _cut(text: str) -> str:
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"...[{len(text) - MAX_TEXT} more characters]"


def redact_value(value: object, *, _depth: int = 0) -> object:
    """``value`` as a JSON-ready value that is safe to log (see the module's rules)."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, BaseException):
        return type(value).__qualname__
    if _depth >= _MAX_DEPTH:
        return f"<{type(value).__name__}>"
    if isinstance(value, Mapping):
        return redact_fields(value, _depth=_depth + 1)
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)[:_MAX_ITEMS]
        return [redact_value(item, _depth=_depth + 1) for item in items]
    return f"<{type(value).__name__}>"


def redact_fields(fields: Mapping[Any, object], *, _depth: int = 0) -> dict[str, object]:
    """A copy of ``fields`` with secret names masked and every value passed through
    :func:`redact_value`; at most a bounded number of items."""
    out: dict[str, object] = {}
    for index, (name, value) in enumerate(fields.items()):
        if index >= _MAX_ITEMS:
            out["..."] = f"{len(fields) - _MAX_ITEMS} more fields"
            break
        text = _cut(str(name))
        out[text] = REDACTED if is_secret_name(text) else redact_value(value, _depth=_depth)
    return out


def _is_network_facing(logger_name: str) -> bool:
    return any(
        logger_name == prefix or logger_name.startswith(prefix + ".")
        for prefix in NETWORK_FACING_LOGGERS
    )


def describe_exception(logger_name: str, exc: BaseException) -> str:
    """The exception as one line: its type and where it was raised; its message too unless
    the logger belongs to a network-facing layer (:data:`NETWORK_FACING_LOGGERS`)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    frames = traceback.extract_tb(exc.__traceback__)[-_PLACES_SHOWN:]
    place = " <- ".join(
        f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
        for frame in reversed(frames)
    )
    text = type(exc).__qualname__
    if not _is_network_facing(logger_name):
        text = f"{text}: {_cut(str(exc))}"
    return f"{text} at {place}" if place else text
