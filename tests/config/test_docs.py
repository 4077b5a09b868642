"""docs/operations.md describes every configuration key the template writes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from gateway.config import SECTION_KEYS, render_configuration

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def _template_keys() -> list[str]:
    document = tomllib.loads(render_configuration(["example.org"]))
    keys: list[str] = []
    for section, table in document.items():
        for key in table:
            if key == "domains":
                continue
            keys.append(f"{section}.{key}")
    return keys


def test_every_template_key_is_documented() -> None:
    text = OPERATIONS.read_text()
    keys = _template_keys()
    assert len(keys) == sum(len(k) for k in SECTION_KEYS.values()) - 1  # all but domains
    missing = [key for key in keys if f"`{key}`" not in text]
    assert not missing, f"docs/operations.md does not describe {missing}"


def test_every_per_domain_key_is_documented() -> None:
    from gateway.config.loader import DOMAIN_KEYS

    text = OPERATIONS.read_text()
    documented = set(re.findall(r'`upstream\.domains\."DOMAIN"\.([a-z_]+)`', text))
    assert documented == set(DOMAIN_KEYS)
