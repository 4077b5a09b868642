"""Reading length-prefixed session packets from a trio stream, for both ends of a TCP session."""

from __future__ import annotations

import trio

from gateway.session import StreamDeframer

RECEIVE_CHUNK = 16384  # bytes asked of the stream per read


async def receive_packets(stream: trio.abc.Stream, deframer: StreamDeframer) -> list[bytes] | None:
    """The packets completed by the stream's next bytes (maybe none); ``None`` once it closed.

    Raises :class:`~gateway.session.PacketError` when the framing is lost (the connection is
    then unusable) and ``trio.BrokenResourceError`` when the stream breaks.
    """
    data = await stream.receive_some(RECEIVE_CHUNK)
    if not data:
        return None
    return deframer.feed_untrusted(data)
