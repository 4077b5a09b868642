"""A small real :class:`~gateway.admin.AdminHandler`: two devices, one of which can be closed."""

from __future__ import annotations

from collections.abc import Sequence

from gateway.admin import (
    ListenerSnapshot,
    SessionSnapshot,
    StatusSnapshot,
    StoreSnapshot,
)

ALICE = SessionSnapshot(
    kid=b"\x0a",
    account="alice@impp.test",
    state="established",
    upstream_state="online",
    address="127.0.0.1:40001",
    cid=b"\x00\x07",
    last_activity_age=12.5,
    queue_depth=3,
    oldest_queued_age=300.0,
    asleep=False,
)
BOB = SessionSnapshot(
    kid=b"\x0b\x01", account="bob@impp.test", state="idle", upstream_state="offline"
)


class TwoDevices:
    """Holds two sessions; ``close`` ends one; ``fail`` makes every answer raise."""

    def __init__(self) -> None:
        self.open: dict[bytes, SessionSnapshot] = {ALICE.kid: ALICE, BOB.kid: BOB}
        self.fail = False

    def status(self) -> StatusSnapshot:
        if self.fail:
            raise RuntimeError("the handler broke")
        return StatusSnapshot(
            version="0.test",
            uptime=3725.0,
            listeners=(
                ListenerSnapshot("udp", "127.0.0.1:5690"),
                ListenerSnapshot("tcp", "127.0.0.1:5690"),
            ),
            sessions_by_state={"established": 1, "idle": len(self.open) - 1},
            upstream_by_state={"online": 1, "offline": 1},
            store=StoreSnapshot("open", 3, 0),
            draining=False,
        )

    def sessions(self, device: bytes | None) -> Sequence[SessionSnapshot]:
        if self.fail:
            raise RuntimeError("the handler broke")
        return [s for kid, s in self.open.items() if device is None or kid == device]

    async def close(self, device: bytes) -> bool:
        return self.open.pop(device, None) is not None
