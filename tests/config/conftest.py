"""A gateway directory made by ``impp-gateway init``, listening on a port free for UDP and TCP."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_sim.harness import edit_config as edit
from device_sim.harness import free_port
from gateway.cli import main
from gateway.config import DEFAULT_DEVICE_PORT


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
