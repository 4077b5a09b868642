"""A gateway directory made by ``impp-gateway init``, listening on a port free for UDP and TCP."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import DEFAULT_DEVICE_PORT


def free_port() -> int:
    """A loopback port that is free for both UDP and TCP right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port
    raise AssertionError("no loopback port free for both UDP and TCP")


def edit(path: Path, old: str, new: str) -> None:
    """Replace the one occurrence of ``old`` in the file (keeps its mode)."""
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new))


@pytest.fixture
def gateway_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """``init`` into a fresh directory, then move its listeners to a free port."""
    directory = tmp_path / "gw"
    assert main(["init", str(directory), "--domain", "impp.test"]) == 0
    capsys.readouterr()
    port = free_port()
    config = directory / "gateway.toml"
    edit(config, f'udp = ["127.0.0.1:{DEFAULT_DEVICE_PORT}"]', f'udp = ["127.0.0.1:{port}"]')
    edit(config, f'tcp = ["127.0.0.1:{DEFAULT_DEVICE_PORT}"]', f'tcp = ["127.0.0.1:{port}"]')
    return directory
