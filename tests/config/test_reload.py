"""SIGHUP's comparison of the running configuration with the edited file."""

from __future__ import annotations

from pathlib import Path

from gateway.config import (
    LIVE_KEYS,
    Configuration,
    live_configuration,
    load_configuration,
    plan_reload,
    render_configuration,
)
from gateway.config.reload import flatten_configuration


def _load(directory: Path, text: str) -> Configuration:
    path = directory / "gateway.toml"
    path.write_text(text)
    return load_configuration(path, check_files=False, check_ports=False)


def test_live_keys_applied_and_the_others_named_for_a_restart(tmp_path: Path) -> None:
    text = render_configuration(domains=["example.org"])
    running = _load(tmp_path, text)
    edited = text
    for old, replacement in (
        ("idle_timeout = 21600.0", "idle_timeout = 600.0"),
        ('log_level = "info"', 'log_level = "warning"'),
        ("queue_length = 1000", "queue_length = 5"),
        ('udp = ["127.0.0.1:5690"]', 'udp = ["127.0.0.1:5691"]'),
        ('# server = "xmpp.example.org:5222"', 'server = "127.0.0.1:5223"'),
    ):
        assert edited.count(old) == 1, old
        edited = edited.replace(old, replacement)
    new = _load(tmp_path, edited)
    plan = plan_reload(running, new)
    assert plan.applied == ("gateway.log_level", "limits.idle_timeout")
    assert plan.restart == (
        "limits.queue_length",
        "listen.udp",
        "upstream.domains.example.org.server_host",
        "upstream.domains.example.org.server_port",
    )
    summary = plan.summary()
    assert summary.startswith("reload: applied gateway.log_level, limits.idle_timeout; ")
    assert "needs a restart (running value kept): limits.queue_length, listen.udp" in summary
    live = live_configuration(running, new)
    assert live.limits.idle_timeout == 600.0
    assert live.limits.queue_length == 1000  # kept until a restart
    assert live.listen == running.listen
    assert not plan_reload(live, live).changed


def test_every_live_key_is_a_real_setting(tmp_path: Path) -> None:
    keys = flatten_configuration(_load(tmp_path, render_configuration()))
    assert set(keys) >= LIVE_KEYS, LIVE_KEYS - set(keys)
