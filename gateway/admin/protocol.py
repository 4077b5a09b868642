"""The admin socket's line protocol: one JSON object per line each way.

Requests are ``{"op": "status"}``, ``{"op": "sessions"}`` (optionally with ``"device": KID``,
the kid in hex) and ``{"op": "close", "device": KID}``; each answer is one line,
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. :func:`parse_request_untrusted` is
total: a request line is a :class:`Request` or raises :class:`AdminProtocolError`, whose text is
sent back as the error.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MAX_KID_HEX",
    "MAX_LINE",
    "AdminProtocolError",
    "Operation",
    "Request",
    "encode_line",
    "parse_kid",
    "parse_request_untrusted",
]

MAX_LINE: Final = 64 * 1024  # a request is a few dozen bytes; an answer lists every device
# A kid is a CBOR byte string of a few bytes (RFC 9528 §3.3.2); 32 bytes is beyond any in use.
MAX_KID_HEX: Final = 64


class AdminProtocolError(Exception):
    """A request that cannot be served; the message says why and is sent to the client."""


class Operation(enum.Enum):
    """What a request asks for."""

    STATUS = "status"
    SESSIONS = "sessions"
    CLOSE = "close"


@dataclass(frozen=True)
class Request:
    """A parsed request: the operation and, for ``sessions`` and ``close``, the device's kid."""

    operation: Operation
    device: bytes | None = None


def parse_kid(text: object) -> bytes:
    """A kid written in hex (``0a``, ``0x0a``); raises :class:`AdminProtocolError`."""
    if not isinstance(text, str):
        raise AdminProtocolError("device must be the kid in hex, as a string")
    digits = text[2:] if text.lower().startswith("0x") else text
    if not digits or len(digits) > MAX_KID_HEX or len(digits) % 2:
        raise AdminProtocolError(f"device {text[:80]!r} is not a kid in hex (e.g. 0a)")
    try:
        return bytes.fromhex(digits)
    except ValueError as exc:
        raise AdminProtocolError(f"device {text[:80]!r} is not a kid in hex (e.g. 0a)") from exc


def parse_request_untrusted(line: bytes) -> Request:
    """The request in one line (without its newline); raises :class:`AdminProtocolError`."""
    if len(line) > MAX_LINE:
        raise AdminProtocolError(f"request longer than {MAX_LINE} bytes")
    try:
        document = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise AdminProtocolError("request is not a JSON object") from exc
    if not isinstance(document, dict):
        raise AdminProtocolError("request is not a JSON object")
    unknown = sorted(str(key) for key in document if key not in ("op", "device"))
    if unknown:
        raise AdminProtocolError(f"unknown request key {unknown[0][:80]!r}")
    op = document.get("op")
    try:
        operation = Operation(op) if isinstance(op, str) else None
    except ValueError:
        operation = None
    if operation is None:
        names = ", ".join(o.value for o in Operation)
        raise AdminProtocolError(f"op must be one of {names}")
    raw_device = document.get("device")
    if operation is Operation.STATUS:
        if raw_device is not None:
            raise AdminProtocolError("status takes no device")
        return Request(operation)
    if raw_device is None:
        if operation is Operation.CLOSE:
            raise AdminProtocolError("close needs the device's kid")
        return Request(operation)
    return Request(operation, parse_kid(raw_device))


def encode_line(document: dict[str, object]) -> bytes:
    """``document`` as one line of compact JSON, newline-terminated."""
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode("utf-8") + b"\n"
