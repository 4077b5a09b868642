"""The command line's side of the admin socket: send one request line, read one answer line.

Synchronous (the commands run one request and exit) and bounded: the answer is read up to
:data:`MAX_ANSWER` bytes within a timeout, and must be a JSON object.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Final

from gateway.admin.protocol import encode_line
from gateway.admin.snapshots import JsonObject

__all__ = [
    "DEFAULT_CLIENT_TIMEOUT",
    "MAX_ANSWER",
    "AdminClientError",
    "GatewayNotRunningError",
    "admin_request",
]

DEFAULT_CLIENT_TIMEOUT: Final = 10.0  # seconds for the gateway to answer one request
# Answers list every enrolled device: about 300 bytes each, so this holds tens of thousands.
MAX_ANSWER: Final = 16 * 1024 * 1024


class AdminClientError(Exception):
    """The gateway's answer could not be had or read; the message says why."""


class GatewayNotRunningError(AdminClientError):
    """Nothing listens on the admin socket's path."""

    def __init__(self, path: Path) -> None:
        super().__init__(f"no gateway is running at {path}: start it with impp-gateway run")
        self.path = path


def admin_request(
    path: Path, request: JsonObject, *, timeout: float = DEFAULT_CLIENT_TIMEOUT
) -> JsonObject:
    """Send ``request`` to the gateway listening at ``path``; return its answer object."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.settimeout(timeout)
        try:
            connection.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise GatewayNotRunningError(path) from exc
        except PermissionError as exc:
            raise AdminClientError(
                f"not allowed to connect to {path}: run the command as the gateway's user"
            ) from exc
        except OSError as exc:
            raise AdminClientError(f"cannot connect to {path}: {exc}") from exc
        try:
            connection.sendall(encode_line(request))
            answer = bytearray()
            while b"\n" not in answer:
                if len(answer) > MAX_ANSWER:
                    raise AdminClientError(f"the answer from {path} exceeds {MAX_ANSWER} bytes")
                data = connection.recv(65536)
                if not data:
                    break
                answer += data
        except TimeoutError as exc:
            raise AdminClientError(
                f"the gateway at {path} did not answer in {timeout:g} s"
            ) from exc
        except OSError as exc:
            raise AdminClientError(f"the connection to {path} failed: {exc}") from exc
    line, newline, _ = bytes(answer).partition(b"\n")
    if not newline:
        raise AdminClientError(f"the gateway at {path} closed the connection without an answer")
    try:
        document = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise AdminClientError(f"the answer from {path} is not JSON") from exc
    if not isinstance(document, dict) or not isinstance(document.get("ok"), bool):
        raise AdminClientError(f"the answer from {path} is not an admin answer")
    return document
