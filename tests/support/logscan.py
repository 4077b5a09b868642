"""Capture every log record of a test and check that no secret the test used appears in any.

Issue 13 asks the end-to-end tests to scan every log line for the secrets they used (account
passwords, keys, tickets, message bodies). Two ways to use this helper:

As a context manager, around the part of the test that runs the gateway::

    from tests.support.logscan import capture_logs

    with capture_logs() as logs:
        ...  # run the service, send a message with body "hello bob"
    logs.assert_no_secrets([account.password, b"hello bob", device_key_bytes])

As the ``logscan`` fixture (the scan covers the whole test body); make it available to a
directory of tests by re-exporting it from that directory's conftest.py,
``from tests.support.logscan import logscan as logscan``, then::

    async def test_end_to_end(logscan: LogScan) -> None:
        ...
        logscan.assert_no_secrets([password, body])

While capturing, the root logger is lowered to DEBUG so the lines of every level are scanned
(the gateway must be clean at any level an operator may choose), and it is restored after.
Each record is checked in every form it can leave the process: as the JSON line and the
``key=value`` line of gateway.observability, and as the standard library's own rendering
(``%(message)s`` plus the exception's traceback text), which is what a handler installed by
somebody else would write. A ``bytes`` secret is looked for raw (decoded as Latin-1), as its
Python ``repr``, in hex and in base64; a ``str`` secret as given, and its UTF-8 in hex and
base64. Records
of a logger with ``propagate = False`` do not reach the root and are not seen.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import pytest

from gateway.observability import JsonLineFormatter, KeyValueFormatter

__all__ = ["LogScan", "capture_logs", "logscan", "secret_forms"]

_MIN_SECRET = 4  # a shorter "secret" would match ordinary text and prove nothing


def secret_forms(secret: str | bytes) -> set[str]:
    """The spellings under which ``secret`` could appear in a log line."""
    if isinstance(secret, bytes):
        forms = {
            secret.decode("latin-1"),
            repr(secret)[2:-1],
            secret.hex(),
            base64.b64encode(secret).decode("ascii").rstrip("="),
            base64.urlsafe_b64encode(secret).decode("ascii").rstrip("="),
        }
    else:
        encoded = secret.encode("utf-8")
        forms = {secret, encoded.hex(), base64.b64encode(encoded).decode("ascii").rstrip("=")}
    return {form for form in forms if form}


class LogScan(logging.Handler):
    """A handler that keeps every record it sees, rendered in each output form."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []
        self._renderers: list[logging.Formatter] = [
            JsonLineFormatter(),
            KeyValueFormatter(),
            logging.Formatter("%(levelname)s %(name)s %(message)s"),
        ]

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        for renderer in self._renderers:
            try:
                self.lines.append(renderer.format(record))
            except Exception as exc:
                self.lines.append(f"<{type(renderer).__name__} failed: {type(exc).__name__}>")

    def assert_no_secrets(self, secrets: Iterable[str | bytes]) -> None:
        """Fail, naming the line (not the secret), if any captured line holds any secret."""
        wanted = list(secrets)
        for secret in wanted:
            if len(secret) < _MIN_SECRET:
                raise ValueError(f"a secret of {len(secret)} characters proves nothing; use longer")
        for line in self.lines:
            for index, secret in enumerate(wanted):
                for form in secret_forms(secret):
                    if form in line:
                        shown = line.replace(form, "<SECRET>")
                        pytest.fail(
                            f"secret #{index} appears in a log line: {shown}", pytrace=False
                        )

    def assert_saw_something(self) -> None:
        """Fail if nothing was logged (a scan of no lines would pass vacuously)."""
        assert self.lines, "no log record was captured: the scan proves nothing"


@contextmanager
def capture_logs() -> Iterator[LogScan]:
    """Capture every record at any level that reaches the root logger within the block."""
    root = logging.getLogger()
    scan = LogScan()
    previous = root.level
    root.addHandler(scan)
    root.setLevel(logging.DEBUG)
    try:
        yield scan
    finally:
        root.removeHandler(scan)
        root.setLevel(previous)


@pytest.fixture
def logscan() -> Iterator[LogScan]:
    """Every log record of the test; call ``logscan.assert_no_secrets([...])`` at its end."""
    with capture_logs() as scan:
        yield scan
