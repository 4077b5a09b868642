"""CBOR diagnostic notation (RFC 8949 §8) for the subset the wire protocol uses, for doc checks."""

from __future__ import annotations

import json

from gateway.wire.cbor import CborValue


def diagnostic(value: CborValue) -> str:
    """Render ``value`` in diagnostic notation on one line."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return f"h'{value.hex()}'"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(diagnostic(item) for item in value) + "]"
    return "{" + ", ".join(f"{diagnostic(k)}: {diagnostic(v)}" for k, v in value.items()) + "}"


def normalize(text: str) -> str:
    """Drop whitespace and /comments/ outside string literals, so layout and notes do not count."""
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == '"' or (char == "'" and index > 0 and text[index - 1] == "h"):
            end = index + 1
            while end < len(text) and text[end] != char:
                end += 2 if text[end] == "\\" else 1
            out.append(text[index : end + 1])
            index = end + 1
        elif char == "/":
            end = text.index("/", index + 1)
            index = end + 1
        elif char.isspace():
            index += 1
        else:
            out.append(char)
            index += 1
    return "".join(out)
