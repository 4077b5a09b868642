"""Structured logs: line formats, context fields, correlation across trio tasks, redaction."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import trio

from gateway.observability import (
    REDACTED,
    SECRET_FIELD_NAMES,
    configure_logging,
    current_correlation_id,
    installed_recent_errors,
    log_event,
    operation,
    set_log_level,
)

RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
logger = logging.getLogger("gateway.service.test")


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def restore_root() -> Iterator[None]:
    """Put the root logger's handlers and level back after a test that configures logging."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)


def lines_of(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("restore_root")
def test_json_line_has_every_field() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)  # a StringIO is not a terminal: JSON
    with operation(kid=b"\x0a\x1b", account="alice@example.org", correlation_id="m-42"):
        log_event(logger, "message.sent", size=17)
    logger.info("%s: session %s", "device 0x0a1b", "opened")
    logger.info("closed", extra={"kid": b"\x0a\x1c"})
    first, second, third = lines_of(stream)
    assert third["kid"] == "0a1c"
    assert RFC3339_UTC.fullmatch(str(first["time"]))
    assert first["level"] == "info"
    assert first["logger"] == "gateway.service.test"
    assert first["event"] == "message.sent"
    assert first["kid"] == "0a1b"
    assert first["account"] == "alice@example.org"
    assert first["correlation_id"] == "m-42"
    assert first["size"] == 17
    assert second["event"] == "%s: session %s"
    assert second["message"] == "device 0x0a1b: session opened"
    assert "correlation_id" not in second  # outside any operation


@pytest.mark.usefixtures("restore_root")
def test_terminal_gets_key_value_lines() -> None:
    stream = Terminal()
    configure_logging("info", stream=stream)
    with operation(kid=b"\x0a", correlation_id="c1"):
        log_event(logger, "handshake.done", suite=2, peer="a b")
    (line,) = stream.getvalue().splitlines()
    assert not line.startswith("{")
    assert RFC3339_UTC.match(line)
    assert " INFO " in line
    assert "gateway.service.test: handshake.done" in line
    assert "correlation_id=c1" in line
    assert "kid=0a" in line
    assert "suite=2" in line
    assert 'peer="a b"' in line
    logger.info("a %s", "line\nbreak\x1b[31m")
    assert stream.getvalue().splitlines()[1].endswith('test: "a line\\nbreak\\u001b[31m"')


@pytest.mark.usefixtures("restore_root")
def test_json_flag_overrides_the_terminal_check() -> None:
    stream = Terminal()
    configure_logging("info", json=True, stream=stream)
    logger.info("x")
    assert json.loads(stream.getvalue())["event"] == "x"
    plain = io.StringIO()
    configure_logging("info", json=False, stream=plain)
    logger.info("y")
    assert not plain.getvalue().startswith("{")


@pytest.mark.usefixtures("restore_root")
def test_level_changes_at_runtime() -> None:
    stream = io.StringIO()
    configure_logging("warning", stream=stream)
    logger.info("hidden")
    set_log_level("debug")
    logger.debug("shown")
    assert [line["event"] for line in lines_of(stream)] == ["shown"]
    with pytest.raises(ValueError, match="unknown log level"):
        set_log_level("verbose")


@pytest.mark.usefixtures("restore_root")
def test_reconfiguring_replaces_the_handlers() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", stream=first)
    configure_logging("info", stream=second)
    logger.info("once")
    assert first.getvalue() == ""
    assert len(lines_of(second)) == 1


@pytest.mark.usefixtures("restore_root")
async def test_correlation_id_follows_a_nursery_child_task() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    seen: list[str | None] = []

    async def child() -> None:
        await trio.lowlevel.checkpoint()
        seen.append(current_correlation_id())
        log_event(logger, "stanza.sent")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)  # started outside: no operation
        with operation(kid=b"\x01", account="bob@example.org") as cid:
            nursery.start_soon(child)  # started inside: carries the operation's context
        assert current_correlation_id() is None
    assert sorted(seen, key=str) == sorted([None, cid], key=str)
    lines = lines_of(stream)
    carried = [line for line in lines if line.get("correlation_id") == cid]
    assert len(carried) == 1
    assert carried[0]["kid"] == "01"
    assert carried[0]["account"] == "bob@example.org"
    assert re.fullmatch(r"[0-9a-f]{16}", cid)


def test_operations_nest_and_restore() -> None:
    with operation(correlation_id="outer") as outer:
        with operation(kid="0a") as inner:
            assert current_correlation_id() == inner != outer
        assert current_correlation_id() == "outer"
    assert current_correlation_id() is None


def test_a_peer_chosen_correlation_id_is_never_logged_raw() -> None:
    with operation(correlation_id="id with\nnewline <script>") as cid:
        assert re.fullmatch(r"h-[0-9a-f]{16}", cid)


@pytest.mark.usefixtures("restore_root")
@pytest.mark.parametrize("name", sorted(SECRET_FIELD_NAMES | {"edhoc_key", "account_password"}))
def test_each_secret_field_name_is_redacted(name: str) -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    fields: dict[str, Any] = {name: "hunter2-secret-value"}
    log_event(logger, "oops", **fields)
    logger.info("also as extra", extra={name: "hunter2-secret-value"})
    logger.info("and as a mapping argument %(" + name + ")s", {name: "hunter2-secret-value"})
    text = stream.getvalue()
    assert "hunter2" not in text
    lines = lines_of(stream)
    assert lines[0][name] == REDACTED
    assert lines[1][name] == REDACTED
    assert lines[2]["message"] == f"and as a mapping argument {REDACTED}"


@pytest.mark.usefixtures("restore_root")
def test_bytes_are_logged_by_length_only() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    secret = b"\x8f\x01secret-ish-bytes\xff"
    log_event(logger, "record.received", packet=secret, nested={"inner": [secret]})
    logger.info("got %s and %r", secret, bytearray(secret))
    text = stream.getvalue()
    for form in (secret.hex(), "secret-ish", repr(secret)):
        assert form not in text
    first, second = lines_of(stream)
    assert first["packet"] == f"<{len(secret)} bytes>"
    assert first["nested"] == {"inner": [f"<{len(secret)} bytes>"]}
    assert second["message"] == f"got <{len(secret)} bytes> and '<{len(secret)} bytes>'"


@pytest.mark.usefixtures("restore_root")
def test_objects_are_shown_by_type_not_repr() -> None:
    class Keyring:
        def __repr__(self) -> str:
            return "Keyring(secret-material)"

    stream = io.StringIO()
    configure_logging("info", stream=stream)
    log_event(logger, "loaded", ring=Keyring())
    assert "secret-material" not in stream.getvalue()
    assert lines_of(stream)[0]["ring"] == "<Keyring>"


def raise_value_error(message: str) -> None:
    raise ValueError(message)


@pytest.mark.usefixtures("restore_root")
def test_network_facing_exceptions_are_logged_by_type_only() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    try:
        raise_value_error("peer bytes 0xdeadbeef-leak")
    except ValueError:
        logging.getLogger("gateway.transport.udp").exception("receive failed")
        logging.getLogger("gateway.store.sqlite").exception("commit failed")
    network, store = lines_of(stream)
    assert str(network["exception"]).startswith("ValueError at test_logs.py:")
    assert "deadbeef" not in str(network["exception"])
    assert str(store["exception"]).startswith("ValueError: peer bytes")  # not network-facing


@pytest.mark.usefixtures("restore_root")
def test_an_object_logged_as_the_message_is_named_by_type() -> None:
    stream = io.StringIO()
    configure_logging("info", stream=stream)
    logger.warning(ValueError("ticket 5ecret-ticket-bytes"))
    assert "5ecret" not in stream.getvalue()
    assert lines_of(stream)[0]["event"] == "ValueError"


@pytest.mark.usefixtures("restore_root")
def test_recent_errors_keeps_the_last_warnings_redacted() -> None:
    configure_logging("info", stream=io.StringIO(), recent_errors=2)
    recent = installed_recent_errors()
    assert recent is not None
    logger.info("not kept")
    for number in range(3):
        log_event(logger, "upstream.failed", level=logging.WARNING, n=number, password="pw-xyz1")
    entries = recent.entries()
    assert [entry.fields["n"] for entry in entries] == [1, 2]
    assert all(entry.fields["password"] == REDACTED for entry in entries)
    assert entries[0].event == "upstream.failed"


def test_a_long_value_is_cut() -> None:
    from gateway.observability import redact_value

    cut = redact_value("x" * 5000)
    assert isinstance(cut, str)
    assert len(cut) < 2100
    assert cut.endswith("[2952 more characters]")
