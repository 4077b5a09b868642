"""Key and certificate files: created 0600 atomically, unsafe files refused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway.signing.keyfiles import KeyFileError, read_protected_file, write_protected_file


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_file_is_0600_and_round_trips(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    write_protected_file(target, b"secret")
    assert _mode(target) == 0o600
    assert read_protected_file(target) == b"secret"


def test_mode_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        write_protected_file(tmp_path / "key.pem", b"secret")
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "key.pem") == 0o600


def test_replacing_a_world_readable_file_leaves_a_0600_file(tmp_path: Path) -> None:
    target = tmp_path / "cert.pem"
    target.write_bytes(b"old")
    target.chmod(0o644)
    write_protected_file(target, b"new")
    assert _mode(target) == 0o600
    assert target.read_bytes() == b"new"


def test_no_temporary_files_are_left_behind(tmp_path: Path) -> None:
    write_protected_file(tmp_path / "a.pem", b"1")
    write_protected_file(tmp_path / "a.pem", b"2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pem"]


def test_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    write_protected_file(target, b"secret")
    target.chmod(0o640)
    with pytest.raises(KeyFileError, match="640"):
        read_protected_file(target)


def test_oversized_file_is_refused_before_reading(tmp_path: Path) -> None:
    target = tmp_path / "key.pem"
    write_protected_file(target, b"x" * 100)
    with pytest.raises(KeyFileError, match="limit"):
        read_protected_file(target, max_size=99)
    assert read_protected_file(target, max_size=100) == b"x" * 100


def test_missing_file_and_missing_directory_raise_key_file_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError):
        read_protected_file(tmp_path / "absent.pem")
    with pytest.raises(KeyFileError):
        write_protected_file(tmp_path / "no-such-dir" / "key.pem", b"x")


def test_symlink_is_not_followed_when_reading(tmp_path: Path) -> None:
    real = tmp_path / "real.pem"
    write_protected_file(real, b"secret")
    link = tmp_path / "link.pem"
    link.symlink_to(real)
    with pytest.raises(KeyFileError):
        read_protected_file(link)
