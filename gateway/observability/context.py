"""The operation context of a log line: a correlation id and the device or account it concerns.

Both live in :mod:`contextvars`, so they follow an operation through trio without being passed
by hand: ``nursery.start_soon`` copies the spawning task's context into the child, so every task
started inside :func:`operation` logs the same correlation id, and a task started before it does
not. A task that runs for many operations (a binding's receive loop) opens one
:func:`operation` per device record or per upstream stanza it handles.

How an id follows one message from the device to the stanza and back: the binding opens
``operation(kid=..., account=..., correlation_id=stanza_id)`` around the device's operation,
using the stanza id it is about to send upstream as the correlation id; when the receipt or
delivery report for that stanza comes back (it names the same stanza id), the binding opens
``operation(..., correlation_id=that_id)`` again, so the device's line, the stanza's line and
the receipt's line share one id. Without a known id, :func:`operation` draws a fresh random one.
"""

from __future__ import annotations

import contextvars
import hashlib
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

__all__ = [
    "bind_context",
    "current_account",
    "current_correlation_id",
    "current_kid",
    "new_correlation_id",
    "operation",
]

_CORRELATION_ID: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar(
    "gateway_correlation_id", default=None
)
_KID: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar(
    "gateway_kid", default=None
)
_ACCOUNT: Final[contextvars.ContextVar[str | None]] = contextvars.ContextVar(
    "gateway_account", default=None
)

MAX_CORRELATION_ID: Final = 64  # a stanza id is usually far shorter; longer ones are hashed
MAX_ACCOUNT: Final = 3071  # RFC 7622 §3.1: a JID's three parts are at most 1023 octets each
_PLAIN_ID: Final = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_correlation_id() -> str:
    """A fresh random correlation id: 16 hex digits, unguessable and short enough to grep."""
    return secrets.token_hex(8)


def _clean_correlation_id(value: str) -> str:
    """The id as given when it is short and plain; otherwise a digest of it (never raw bytes
    of a peer's choosing in the log)."""
    if _PLAIN_ID.fullmatch(value):
        return value
    return "h-" + hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:16]


def _kid_text(kid: bytes | str) -> str:
    return kid.hex() if isinstance(kid, bytes | bytearray) else str(kid)


def _account_text(account: str) -> str:
    return account[:MAX_ACCOUNT].encode("unicode_escape").decode("ascii")


@contextmanager
def operation(
    *,
    kid: bytes | str | None = None,
    account: str | None = None,
    correlation_id: str | None = None,
) -> Iterator[str]:
    """Run the block as one operation: a correlation id (``correlation_id``, or a new one) and,
    when given, the device's kid (bytes are shown in hex) and the account; yields the id.

    Fields not given keep the value of the enclosing context, so a device's operation opened
    inside a block bound to its kid logs that kid. Everything is restored on exit.
    """
    cid = _clean_correlation_id(correlation_id) if correlation_id else new_correlation_id()
    tokens: list[tuple[contextvars.ContextVar[str | None], contextvars.Token[str | None]]] = [
        (_CORRELATION_ID, _CORRELATION_ID.set(cid))
    ]
    if kid is not None:
        tokens.append((_KID, _KID.set(_kid_text(kid))))
    if account is not None:
        tokens.append((_ACCOUNT, _ACCOUNT.set(_account_text(account))))
    try:
        yield cid
    finally:
        for variable, token in reversed(tokens):
            variable.reset(token)


def bind_context(*, kid: bytes | str | None = None, account: str | None = None) -> None:
    """Bind the kid and/or account for the rest of the current task (and the tasks it starts
    afterwards), without a new correlation id: for a task that serves one device for its life."""
    if kid is not None:
        _KID.set(_kid_text(kid))
    if account is not None:
        _ACCOUNT.set(_account_text(account))


def current_correlation_id() -> str | None:
    """The correlation id of the running operation, or ``None`` outside any."""
    return _CORRELATION_ID.get()


def current_kid() -> str | None:
    """The hex kid bound in the current context, or ``None``."""
    return _KID.get()


def current_account() -> str | None:
    """The account JID bound in the current context, or ``None``."""
    return _ACCOUNT.get()
