"""The per-class tables the encoder and decoder compile at import agree with the declarations."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway.wire import Ack, ErrorCode, IncomingMessage, LocalWireError, TextContent, encode
from gateway.wire.codec import _CONTACT_TABLE as ENCODER_CONTACT_TABLE
from gateway.wire.codec import _TABLES as ENCODER_TABLES
from gateway.wire.decoding import _CONTACT_KEYS, _CONTACT_TABLE, _READERS
from gateway.wire.fields import CONTENT_KEYS, TYPE_KEY, Kind, declared_fields
from gateway.wire.messages import MESSAGE_CLASSES, Contact


@pytest.mark.parametrize("cls", MESSAGE_CLASSES, ids=lambda cls: cls.__name__)
def test_both_tables_follow_the_declaration(cls: type) -> None:
    declared = declared_fields(cls)
    message_type, encoder_table = ENCODER_TABLES[cls]
    assert message_type == cls.TYPE.value  # type: ignore[attr-defined]  # every message has TYPE
    assert [(key, name, default) for key, name, _, default in encoder_table] == [
        (field.key, field.name, field.default) for field in declared
    ]
    reader = _READERS[cls.TYPE.value]  # type: ignore[attr-defined]
    assert reader.cls is cls
    assert [(name, key, default) for name, key, _, default, _ in reader.table] == [
        (field.name, field.key, field.default) for field in declared
    ]
    content = set(CONTENT_KEYS) if any(f.kind is Kind.CONTENT for f in declared) else set()
    assert reader.keys == {TYPE_KEY} | {f.key for f in declared} | content


def test_contact_tables_follow_the_declaration() -> None:
    declared = declared_fields(Contact)
    assert [key for key, *_ in ENCODER_CONTACT_TABLE] == [field.key for field in declared]
    assert [key for _, key, *_ in _CONTACT_TABLE] == [field.key for field in declared]
    assert {field.key for field in declared} == _CONTACT_KEYS


@dataclass(frozen=True)
class _DerivedIncoming(IncomingMessage):
    """A caller's subclass of a message: encoded as the message it derives from."""


def test_a_subclass_of_a_message_encodes_as_its_base() -> None:
    base = IncomingMessage(id=1, sender=2, timestamp=3, content=TextContent("hi"))
    derived = _DerivedIncoming(id=1, sender=2, timestamp=3, content=TextContent("hi"))
    assert encode(derived) == encode(base)


def test_a_non_message_is_refused_as_unknown_type() -> None:
    with pytest.raises(LocalWireError) as caught:
        encode(TextContent("hi"))  # type: ignore[arg-type]  # the point: not a message
    assert caught.value.code is ErrorCode.UNKNOWN_TYPE


def test_a_cumulative_ack_keeps_the_size_limit() -> None:
    with pytest.raises(LocalWireError) as caught:
        encode(Ack(70000), max_size=2)  # 0x1a + 4 bytes
    assert caught.value.code is ErrorCode.TOO_LARGE
