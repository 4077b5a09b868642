"""The status page's bearer token: read from a file only its owner can read, compared in
constant time."""

from __future__ import annotations

import hmac
import os
import re
import secrets
import stat
from pathlib import Path
from typing import Final

__all__ = ["MIN_TOKEN_LENGTH", "TokenFileError", "generate_token", "load_token", "token_matches"]

MIN_TOKEN_LENGTH: Final = 24  # characters; generate_token gives 43 (256 random bits)
MAX_TOKEN_FILE: Final = 4096  # bytes read from the token file
_TOKEN: Final = re.compile(r"[A-Za-z0-9._~+/-]+=*")  # RFC 6750 §2.1 b64token


class TokenFileError(ValueError):
    """The token file is missing, readable by others, or does not hold a usable token."""


def generate_token() -> str:
    """A new random token (URL-safe, 256 bits)."""
    return secrets.token_urlsafe(32)


def load_token(path: Path) -> str:
    """The token in ``path``: the file must be a regular file with mode 0600 (or stricter)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise TokenFileError(f"{path}: cannot open the status token file ({exc.strerror})") from exc
    with os.fdopen(descriptor, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise TokenFileError(f"{path}: the status token file is not a regular file")
        if info.st_mode & 0o077:
            raise TokenFileError(
                f"{path}: the status token file has mode {stat.S_IMODE(info.st_mode):04o}; "
                f"run 'chmod 600 {path}'"
            )
        raw = handle.read(MAX_TOKEN_FILE + 1)
    if len(raw) > MAX_TOKEN_FILE:
        raise TokenFileError(f"{path}: the status token file is longer than {MAX_TOKEN_FILE} bytes")
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError as exc:
        raise TokenFileError(f"{path}: the status token must be ASCII") from exc
    if len(token) < MIN_TOKEN_LENGTH or not _TOKEN.fullmatch(token):
        raise TokenFileError(
            f"{path}: the status token must be at least {MIN_TOKEN_LENGTH} characters of "
            "A-Z a-z 0-9 . _ ~ + / - (write one with: python3 -c "
            "'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


def token_matches(expected: str, authorization: bytes | None) -> bool:
    """Whether an ``Authorization`` header value is ``Bearer <expected>`` (constant time in
    the token's contents)."""
    if authorization is None:
        return False
    scheme, _, given = authorization.partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return hmac.compare_digest(given.strip(), expected.encode("ascii"))
