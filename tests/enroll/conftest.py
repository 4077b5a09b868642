"""A gateway made by ``impp-gateway init`` whose domain is the private Prosody, and a second
Prosody that allows in-band registration (XEP-0077)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.config import CONFIG_FILE_NAME
from tests.support.prosody import ProsodyServer, prosody_available


@dataclass(frozen=True)
class Gateway:
    """A gateway directory and the files a test looks at."""

    directory: Path
    config: Path
    database: Path

    def argv(self, *args: str) -> list[str]:
        """``args`` followed by ``--config`` for this gateway."""
        return [*args, "--config", str(self.config)]


def make_gateway(
    directory: Path, prosody: ProsodyServer, *, domain: str | None = None, **settings: str
) -> Gateway:
    """``init`` into ``directory`` for ``domain`` (the server's main one by default) and point
    the domain's table at ``prosody``; ``settings`` replace its keys (``server``, ``trust``)."""
    server = prosody
    domain = domain or server.domain
    assert main(["init", str(directory), "--domain", domain]) == 0
    config = directory / CONFIG_FILE_NAME
    text = config.read_text()
    old = f'# server = "xmpp.{domain}:5222"\n'
    assert text.count(old) == 1
    values = {"server": f"{server.host}:{server.c2s_port}", "trust": str(server.ca_file)}
    values.update(settings)
    config.write_text(text.replace(old, "".join(f'{k} = "{v}"\n' for k, v in values.items())))
    return Gateway(directory, config, directory / "gateway.sqlite3")


@pytest.fixture
def gateway(
    tmp_path: Path, running_prosody: ProsodyServer, capsys: pytest.CaptureFixture[str]
) -> Gateway:
    """A fresh gateway serving the session's Prosody (whose registration is closed)."""
    made = make_gateway(tmp_path / "gw", running_prosody)
    capsys.readouterr()
    return made


def _lua(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@pytest.fixture(scope="session")
def registering_prosody(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProsodyServer]:
    """A private Prosody with ``allow_registration = true``, for ``enroll --register``, whose
    second host (``sha1.impp.test``) offers PLAIN only."""
    if not prosody_available():
        pytest.fail("prosody is not installed; './run test' installs it", pytrace=False)
    server = ProsodyServer(tmp_path_factory.mktemp("prosody-register"))
    text = server.config_path.read_text()
    assert text.count("allow_registration = false") == 1
    text = text.replace("allow_registration = false", "allow_registration = true")
    # Its SHA-1 host offers PLAIN only: a server where the gateway must keep the password.
    sha1_host = f"VirtualHost {_lua(server.sha1_domain)}\n"
    assert text.count(sha1_host) == 1
    text = text.replace(
        sha1_host,
        sha1_host + '    disable_sasl_mechanisms = { "SCRAM-SHA-1", "SCRAM-SHA-256" }\n',
    )
    server.config_path.write_text(text)
    server.start()
    try:
        yield server
    finally:
        server.stop()
