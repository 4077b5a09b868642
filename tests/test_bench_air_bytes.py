"""``python -m bench air-bytes``: its record's shape, and the pieces it measures with.

The benchmark's figures are never judged here (they are measured each run); what is checked is
that the run works end to end and that the kernel's TCP counters are read correctly.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench._xmpp_direct import read_tcp_info
from bench.air_bytes import OPERATIONS, Information, _waits, computed_alternatives

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected TCP pair over loopback (client, server side)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname(), timeout=10)
        server, _ = listener.accept()
        server.settimeout(10)
        with client, server:
            yield client, server


def _receive_exactly(sock: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        assert chunk, "the peer closed early"
        data += chunk
    return data


def test_tcp_info_counts_the_segments_and_bytes_sent(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = tcp_pair
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_before, server_before = read_tcp_info(client), read_tcp_info(server)
    payload = b"x" * 5000
    client.sendall(payload)
    assert _receive_exactly(server, len(payload)) == payload
    server.sendall(b"ok")  # carries the acknowledgement of everything received
    assert _receive_exactly(client, 2) == b"ok"
    client_after, server_after = read_tcp_info(client), read_tcp_info(server)
    assert client_after.segments_out > client_before.segments_out
    assert server_after.segments_in > server_before.segments_in
    assert server_after.segments_in - server_before.segments_in >= 1
    assert server_after.bytes_received - server_before.bytes_received == len(payload)
    assert client_after.bytes_acked - client_before.bytes_acked == len(payload)
    assert client_after.bytes_received - client_before.bytes_received == 2
    # Linux turns TCP timestamps on by default; either way the header size follows the flag.
    assert client_after.header_bytes == 40 + (12 if client_after.timestamps else 0)


def test_tcp_info_segments_grow_with_each_small_send(
    tcp_pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = tcp_pair
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    before = read_tcp_info(client).segments_out
    for _ in range(3):
        client.sendall(b"ping")
        assert _receive_exactly(server, 4) == b"ping"
        server.sendall(b"pong")
        assert _receive_exactly(client, 4) == b"pong"
    # Three request segments at the least (each send waited for its answer: no coalescing).
    assert read_tcp_info(client).segments_out - before >= 3


def test_a_wait_is_a_request_run_answered_by_the_gateway() -> None:
    # handshake: request awaited, answer; then an unsolicited push and a lone ack: no wait.
    entries = [
        ("up", 39, True),
        ("down", 50, False),
        ("up", 24, False),
        ("down", 71, False),
        ("up", 14, False),
        ("down", 19, False),
        ("up", 18, True),
        ("up", 14, False),
        ("down", 12, False),
    ]
    assert _waits(entries) == 2
    assert _waits([("down", 19, False), ("up", 14, False)]) == 0


def test_computed_alternatives_cover_every_operation_and_the_floor_is_lowest() -> None:
    computed = computed_alternatives(Information(text=20, contact_address=22))
    assert set(computed) == set(OPERATIONS)
    for operation, alternatives in computed.items():
        assert set(alternatives) == {"oscore_coap", "mqtt_sn_dtls13", "floor"}
        for figures in alternatives.values():
            assert figures["link_bytes"] == figures["payload_bytes"] + 28 * figures["datagrams"]
        floor = alternatives["floor"]["payload_bytes"]
        assert floor <= alternatives["oscore_coap"]["payload_bytes"], operation
        assert floor <= alternatives["mqtt_sn_dtls13"]["payload_bytes"], operation


def test_air_bytes_quick_runs_and_its_record_has_the_shape(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "air-bytes", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    record = json.loads((tmp_path / "air-bytes.json").read_text("utf-8"))
    assert record["name"] == "air-bytes"
    assert record["quick"] is True
    rows = {row["operation"]: row for row in record["results"]}
    assert set(rows) == set(OPERATIONS)
    for operation, row in rows.items():
        assert row["unit"].startswith("bytes")
        for key in ("ours", "baseline"):
            assert isinstance(row[key], int), (operation, key)
            assert row[key] > 0, (operation, key)
        assert row["ratio"] == pytest.approx(row["ours"] / row["baseline"], rel=1e-3)
        for side in ("ours_figures", "baseline_figures"):
            figures = row[side]
            assert figures["payload_bytes"] == row["ours" if side == "ours_figures" else "baseline"]
            assert figures["link_bytes"] > figures["payload_bytes"], (operation, side)
            assert isinstance(figures["round_trips"], int), (operation, side)
            assert figures["round_trips"] >= 0, (operation, side)
        assert set(row["computed"]) == {"oscore_coap", "mqtt_sn_dtls13", "floor"}
    assert {goal["met"] for goal in record["goals"]} <= {True, False}
    assert len(record["goals"]) >= 8
    for chart in record.get("charts", []):
        assert (tmp_path / chart).read_bytes().startswith(b"\x89PNG"), chart
