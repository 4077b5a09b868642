"""The log-scanning helper that end-to-end tests use must catch each form a secret can take."""

from __future__ import annotations

import logging

import pytest

from tests.support.logscan import LogScan, capture_logs

logger = logging.getLogger("gateway.service.test")


@pytest.mark.parametrize(
    ("secret", "logged"),
    [
        ("correct-horse", "password was correct-horse"),
        (b"\x01\x02key-bytes", "key " + b"\x01\x02key-bytes".hex()),
        (b"\x01\x02key-bytes", "key " + repr(b"\x01\x02key-bytes")),
        (b"ticket-bytes!", "ticket dGlja2V0LWJ5dGVzIQ"),
    ],
)
def test_a_secret_in_the_message_fails_the_scan(secret: str | bytes, logged: str) -> None:
    with capture_logs() as scan:
        logger.debug("%s", logged)
    with pytest.raises(pytest.fail.Exception, match="secret #0 appears"):
        scan.assert_no_secrets([secret])


def raise_with_message(message: str) -> None:
    raise RuntimeError(message)


def test_a_secret_in_an_exception_message_fails_the_scan() -> None:
    with capture_logs() as scan:
        try:
            raise_with_message("login failed for password correct-horse")
        except RuntimeError:
            logger.exception("upstream failed")  # our formatter hides it; a stdlib one would not
    with pytest.raises(pytest.fail.Exception):
        scan.assert_no_secrets(["correct-horse"])


def test_redacted_fields_pass_the_scan(logscan: LogScan) -> None:
    logger.info("login", extra={"password": "correct-horse", "body": "hi bob, meet at 5"})
    logscan.assert_saw_something()
    logscan.assert_no_secrets(["correct-horse", "hi bob, meet at 5"])


def test_capture_lowers_the_level_and_restores_it() -> None:
    root = logging.getLogger()
    before = root.level
    with capture_logs() as scan:
        logger.debug("debug lines are scanned too")
    assert root.level == before
    assert any("debug lines are scanned too" in line for line in scan.lines)


def test_short_secrets_are_refused() -> None:
    with capture_logs() as scan, pytest.raises(ValueError, match="proves nothing"):
        scan.assert_no_secrets(["pw"])
