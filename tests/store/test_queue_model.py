"""The to-device queue against a plain model, over random sequences of operations (hypothesis):
order, duplicates, coalescing, overflow and removal agree with the model at every step."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

from hypothesis import given
from hypothesis import strategies as st

from gateway.store import sqlite_ops as ops
from gateway.store.records import EnqueueResult, QueueKind
from gateway.store.schema import migrate

LIMIT = 4
DEVICES = [b"a", b"b"]


@dataclass
class _Model:
    queues: dict[bytes, list[tuple[bytes, str | None]]] = field(
        default_factory=lambda: {d: [] for d in DEVICES}
    )

    def enqueue(self, device: bytes, message_id: bytes, key: str | None) -> EnqueueResult:
        queue = self.queues[device]
        if any(m == message_id for m, _ in queue):
            return EnqueueResult.DUPLICATE
        replaced = key is not None and any(k == key for _, k in queue)
        if replaced:
            queue[:] = [(m, k) for m, k in queue if k != key]
        elif len(queue) >= LIMIT:
            return EnqueueResult.OVERFLOW
        queue.append((message_id, key))
        return EnqueueResult.REPLACED if replaced else EnqueueResult.QUEUED


_enqueue = st.tuples(
    st.just("enqueue"),
    st.sampled_from(DEVICES),
    st.integers(0, 9).map(lambda n: b"m%d" % n),
    st.sampled_from([None, None, "presence x", "presence y"]),
)
_remove = st.tuples(st.just("remove"), st.sampled_from(DEVICES), st.integers(0, LIMIT), st.none())


@given(st.lists(st.one_of(_enqueue, _remove), max_size=40))
def test_queue_agrees_with_the_model(steps: list[tuple[str, bytes, object, str | None]]) -> None:
    connection = sqlite3.connect(":memory:", isolation_level=None)
    migrate(connection)
    limits = ops.Limits(LIMIT, LIMIT, 16, 16)
    model = _Model()
    for action, device, argument, key in steps:
        if action == "enqueue":
            assert isinstance(argument, bytes)
            got = ops.enqueue_to_device(
                connection, limits, device, argument, QueueKind.MESSAGE, b"p", 0.0, None, key
            )
            assert got is model.enqueue(device, argument, key)
        else:
            assert isinstance(argument, int)
            items = ops.device_queue(connection, device, 0.0, 100)
            if argument < len(items):
                assert ops.remove_from_device_queue(connection, device, [items[argument].seq]) == 1
                del model.queues[device][argument]
        for each in DEVICES:
            items = ops.device_queue(connection, each, 0.0, 100)
            assert [(i.message_id, i.coalesce_key) for i in items] == model.queues[each]
    connection.close()
