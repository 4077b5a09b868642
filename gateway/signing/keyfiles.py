"""Key and certificate files at rest: created with mode 0600, written atomically.

A secret file must never exist, even for an instant, with wider permissions than 0600: the file
is created by ``os.open`` with ``O_CREAT | O_EXCL`` and mode ``0o600`` (the process umask can only
narrow that), never ``chmod``-ed after the bytes are in it. The bytes go to a fresh temporary file
in the same directory, which is flushed to disk and then renamed over the target (``os.replace`` is
atomic on POSIX), so a crash leaves either the old file or the new one, never half of one.

Reading refuses a file that the group or others may read or write (as ssh refuses such a key), and
refuses files larger than a limit before reading them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from gateway.signing.errors import SigningError

__all__ = [
    "DEFAULT_MAX_KEY_FILE_SIZE",
    "SECRET_FILE_MODE",
    "KeyFileError",
    "read_protected_file",
    "write_protected_file",
]

SECRET_FILE_MODE = 0o600  # owner read/write; nobody else

DEFAULT_MAX_KEY_FILE_SIZE = 1024 * 1024  # a PEM bundle of a few hundred certificates fits

_PERMISSION_BITS_OTHERS = stat.S_IRWXG | stat.S_IRWXO


class KeyFileError(SigningError):
    """A key or certificate file could not be written or read safely (local, not a peer's fault)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, remote=False)


def write_protected_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically as a new file with mode 0600.

    Replaces an existing file at ``path`` (the rename is atomic); the directory must exist.
    """
    target = Path(path)
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(temporary, flags, SECRET_FILE_MODE)
    except OSError as exc:
        raise KeyFileError(f"cannot create {temporary.name} in {target.parent}: {exc}") from exc
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        _remove_quietly(temporary)
        raise KeyFileError(f"cannot write {target}: {exc}") from exc
    except BaseException:
        _remove_quietly(temporary)
        raise
    _fsync_directory(target.parent)


def read_protected_file(
    path: str | os.PathLike[str], *, max_size: int = DEFAULT_MAX_KEY_FILE_SIZE
) -> bytes:
    """Read a file written by :func:`write_protected_file`, refusing unsafe ones.

    Raises :class:`KeyFileError` if the file is missing, is not a regular file, is larger than
    ``max_size``, or may be read or written by the group or others.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError as exc:
        raise KeyFileError(f"cannot open {path}: {exc}") from exc
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileError(f"{path} is not a regular file")
        if info.st_mode & _PERMISSION_BITS_OTHERS:
            raise KeyFileError(
                f"{path} has mode {stat.S_IMODE(info.st_mode):o}; it must be 600 (owner only)"
            )
        if info.st_size > max_size:
            raise KeyFileError(f"{path} is {info.st_size} bytes, above the limit of {max_size}")
        data = handle.read(max_size + 1)
    if len(data) > max_size:
        raise KeyFileError(f"{path} grew above the limit of {max_size} bytes while being read")
    return data


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        descriptor = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
