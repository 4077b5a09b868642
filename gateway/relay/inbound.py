"""What an inbound message stanza becomes on the wire: its text, language and time.

A device gets the body the stanza's language rules pick (RFC 6120 §8.1.5: the body in the
stanza's own language, else the first), with a language tag only if the wire protocol can carry
it, and the sender's stated time (XEP-0203 ``<delay stamp>``) if it is readable and in the past,
else the time the gateway received it.
"""

from __future__ import annotations

import datetime

from gateway.wire import LocalWireError, TextContent
from gateway.xmpp import MessageStanza

__all__ = ["DELAY_TAG", "message_content", "stanza_timestamp", "wire_language"]

DELAY_TAG = "{urn:xmpp:delay}delay"  # XEP-0203


def wire_language(tag: str | None) -> str | None:
    """``tag`` if the wire protocol can carry it as a language tag, else None."""
    if tag is None:
        return None
    try:
        TextContent("", tag)
    except LocalWireError:
        return None
    return tag


def message_content(message: MessageStanza) -> TextContent | None:
    """The message's body as wire content, or None if it has none the wire can carry."""
    body = message.body
    if body is None:
        return None
    language = message.lang
    for body_lang, text in message.bodies:
        if text == body:
            language = body_lang or message.lang
            break
    try:
        return TextContent(body, wire_language(language))
    except LocalWireError:
        return None


def stanza_timestamp(message: MessageStanza, now: float) -> int:
    """The sender's stated time (XEP-0203 ``<delay stamp>``) if readable and past, else now."""
    for extension in message.extensions:
        if extension.tag == DELAY_TAG:
            stamp = extension.get("stamp", "")
            try:
                moment = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
            except ValueError:
                break
            if moment.utcoffset() is None:
                break
            seconds = int(moment.timestamp())
            if 0 <= seconds <= now:
                return seconds
            break
    return max(0, int(now))
