"""Operating the gateway: structured, redacted logs with a correlation id (docs/operations.md,
"Logs").

The service configures the process once and binds each operation's context::

    recent = configure_logging(configuration.gateway.log_level.value)  # JSON unless a terminal
    with operation(kid=device_kid, account=str(account), correlation_id=stanza_id):
        log_event(logger, "message.sent", size=len(payload))
    set_log_level("debug")  # on SIGHUP
"""

from __future__ import annotations

from gateway.observability.context import (
    bind_context,
    current_account,
    current_correlation_id,
    current_kid,
    new_correlation_id,
    operation,
)
from gateway.observability.logs import (
    DEFAULT_RECENT_ERRORS,
    JsonLineFormatter,
    KeyValueFormatter,
    LogEntry,
    RecentErrors,
    configure_logging,
    installed_recent_errors,
    log_event,
    parse_level,
    record_fields,
    set_log_level,
)
from gateway.observability.redaction import (
    NETWORK_FACING_LOGGERS,
    REDACTED,
    SECRET_FIELD_NAMES,
    describe_exception,
    is_secret_name,
    redact_fields,
    redact_value,
)

__all__ = [
    "DEFAULT_RECENT_ERRORS",
    "NETWORK_FACING_LOGGERS",
    "REDACTED",
    "SECRET_FIELD_NAMES",
    "JsonLineFormatter",
    "KeyValueFormatter",
    "LogEntry",
    "RecentErrors",
    "bind_context",
    "configure_logging",
    "current_account",
    "current_correlation_id",
    "current_kid",
    "describe_exception",
    "installed_recent_errors",
    "is_secret_name",
    "log_event",
    "new_correlation_id",
    "operation",
    "parse_level",
    "record_fields",
    "redact_fields",
    "redact_value",
    "set_log_level",
]
