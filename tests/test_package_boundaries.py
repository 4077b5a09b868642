"""The package boundaries docs/architecture.md draws, checked against the code.

The dependency arrows are read from the source with :mod:`ast` (every ``import`` and ``from ...
import``, including those inside functions), so an arrow that the architecture forbids fails here
before it becomes a habit. The sans-IO cores are also imported in a fresh interpreter to show that
they load neither trio nor ssl, and the public names of the packages the service imports side by
side are checked for collisions.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = ROOT / "gateway"

# What each sans-IO core may import from the gateway (docs/architecture.md, "Dependencies").
ALLOWED_GATEWAY_IMPORTS: dict[str, frozenset[str]] = {
    "gateway.cbor": frozenset(),
    "gateway.jid": frozenset(),
    "gateway.signature_status": frozenset(),
    "gateway.wire": frozenset({"gateway.cbor", "gateway.signature_status"}),
    "gateway.edhoc": frozenset({"gateway.cbor"}),
    "gateway.session": frozenset({"gateway.cbor", "gateway.edhoc", "gateway.wire"}),
    "gateway.impp": frozenset({"gateway.jid"}),
    "gateway.signing": frozenset({"gateway.impp", "gateway.jid", "gateway.signature_status"}),
    "gateway.xmpp": frozenset({"gateway.jid"}),
    "gateway.relay": frozenset(
        {
            "gateway.impp",
            "gateway.jid",
            "gateway.signature_status",
            "gateway.signing",
            "gateway.wire",
            "gateway.xmpp",
        }
    ),
}
# I/O that no sans-IO core may import, directly or inside a function.
IO_MODULES = frozenset({"trio", "ssl", "socket", "selectors", "asyncio", "sqlite3", "threading"})
SANS_IO_CORES = tuple(ALLOWED_GATEWAY_IMPORTS)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _unit(module: str) -> str:
    """The architecture's unit a module belongs to: a package, a top-level module, or xmpp.net."""
    parts = module.split(".")
    if parts[0] != "gateway" or len(parts) == 1:
        return parts[0]
    if parts[1] == "xmpp" and len(parts) > 2 and parts[2] == "net":
        return "gateway.xmpp.net"
    return f"gateway.{parts[1]}"


def _imports(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (``from gateway import x`` names gateway.x)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            if node.module == "gateway":
                names.update(f"gateway.{alias.name}" for alias in node.names)
            else:
                names.add(node.module)
    return names


def _dependency_arrows() -> dict[str, set[str]]:
    arrows: dict[str, set[str]] = defaultdict(set)
    for path in GATEWAY.rglob("*.py"):
        source = _unit(_module_name(path))
        for name in _imports(path):
            target = _unit(name)
            if target != source:
                arrows[source].add(target)
    return arrows


ARROWS = _dependency_arrows()


@pytest.mark.parametrize("core", SANS_IO_CORES)
def test_core_imports_only_the_packages_the_architecture_allows(core: str) -> None:
    gateway_imports = {target for target in ARROWS[core] if target.startswith("gateway")}
    assert gateway_imports <= ALLOWED_GATEWAY_IMPORTS[core]


@pytest.mark.parametrize("core", SANS_IO_CORES)
def test_core_imports_no_io_module(core: str) -> None:
    assert not ARROWS[core] & IO_MODULES


def test_xmpp_adapters_live_in_their_subpackage() -> None:
    """The trio/ssl edge of the XMPP upstream is gateway.xmpp.net; the core never imports it."""
    assert "gateway.xmpp.net" not in ARROWS["gateway.xmpp"]
    assert {"trio", "ssl"} <= ARROWS["gateway.xmpp.net"]
    assert "gateway.xmpp.net" not in ARROWS["gateway.relay"]


def test_the_rule_sees_a_forbidden_arrow(tmp_path: Path) -> None:
    """The import reader finds imports inside functions and ``from gateway import x`` forms."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from gateway import xmpp\n\ndef later() -> None:\n    import trio\n", encoding="utf-8"
    )
    assert _imports(sample) == {"gateway.xmpp", "trio"}


@pytest.mark.parametrize("core", [*SANS_IO_CORES, "gateway.xmpp.client"])
def test_importing_a_core_loads_neither_trio_nor_ssl(core: str) -> None:
    check = (
        f"import sys, {core}\n"
        "loaded = sorted(name for name in ('trio', 'ssl') if name in sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


# Packages the service imports side by side.
SIDE_BY_SIDE = (
    "wire",
    "edhoc",
    "session",
    "transport",
    "xmpp",
    "impp",
    "signing",
    "relay",
    "store",
    "config",
    "enroll",
    "metrics",
    "observability",
    "statuspage",
    "admin",
)


def test_public_names_do_not_collide_across_packages() -> None:
    """Two packages may export one name only when it is the same object (a shared type)."""
    exporters: dict[str, dict[str, object]] = defaultdict(dict)
    for package in SIDE_BY_SIDE:
        module = importlib.import_module(f"gateway.{package}")
        for name in module.__all__:
            exporters[name][package] = getattr(module, name)
    collisions = {
        name: frozenset(owners)
        for name, owners in exporters.items()
        if len(owners) > 1 and len({id(value) for value in owners.values()}) > 1
    }
    assert collisions == {}


def test_one_signature_status_for_the_device_and_the_verifier() -> None:
    from gateway import signing, wire
    from gateway.signature_status import SignatureStatus

    assert wire.SignatureStatus is SignatureStatus
    assert signing.SignatureStatus is SignatureStatus
