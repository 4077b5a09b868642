"""``impp-gateway config check`` through ``main``: its output and exit status."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.cli import main
from tests.config.conftest import edit


def test_check_reports_ok_with_a_summary(
    gateway_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", "--config", str(gateway_dir / "gateway.toml")]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("configuration OK\n")
    assert "kid 0x0a" in captured.out
    assert "impp.test" in captured.out
    assert "loopback only" in captured.out
    assert captured.err == ""
    assert "BEGIN" not in captured.out


def test_check_lists_every_problem_with_its_fix_and_exits_2(
    gateway_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = gateway_dir / "gateway.toml"
    edit(config, "allow_public = false\n\n[edhoc]", "allow_publik = false\n\n[edhoc]")
    os.chmod(gateway_dir / "gateway.sqlite3", 0o644)
    assert main(["config", "check", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "listen.allow_publik: unknown key in [listen]" in captured.err
    assert "fix: did you mean 'allow_public'?" in captured.err
    database = (gateway_dir / "gateway.sqlite3").resolve()
    assert f"fix: chmod 600 {database}" in captured.err
    assert "2 problems; not started" in captured.err


def test_check_reads_the_environment_variable(
    gateway_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMPP_GATEWAY_CONFIG", str(gateway_dir / "gateway.toml"))
    assert main(["config", "check"]) == 0
    assert "configuration OK" in capsys.readouterr().out


def test_check_without_a_file_says_how_to_make_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMPP_GATEWAY_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["config", "check"]) == 2
    err = capsys.readouterr().err
    assert "gateway.toml: the configuration file does not exist" in err
    assert "impp-gateway init DIR" in err


def test_help_lists_init_and_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        main(["--help"])
    assert raised.value.code == 0
    out = capsys.readouterr().out
    assert "init" in out
    assert "config" in out
