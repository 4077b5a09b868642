"""``impp-gateway enroll`` against a real Prosody: what is stored, what is written, what is refused.

The command runs through ``gateway.cli.main`` (each call runs its own trio loop, so these tests are
synchronous), and once as the installed console script.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.cli import main
from gateway.config import load_gateway_identity
from gateway.edhoc import Credential
from gateway.enroll import read_provisioning_file
from gateway.enroll.provisioning import Transport
from gateway.signing.keywrap import is_sealed_key
from gateway.store import GatewayStore
from tests.enroll.conftest import Gateway, make_gateway
from tests.support.prosody import Account, ProsodyServer

SUBPROCESS_TIMEOUT = 120  # seconds for one console-script run (a login against a local server)


def password_file(directory: Path, password: str) -> Path:
    path = directory / "password"
    path.write_text(password + "\n")
    path.chmod(0o600)
    return path


def database_bytes(gateway: Gateway) -> bytes:
    """The database and its WAL, as bytes on disk (where a password must not be)."""
    data = b""
    for suffix in ("", "-wal", "-shm"):
        path = gateway.database.with_name(gateway.database.name + suffix)
        if path.exists():
            data += path.read_bytes()
    return data


def rows(gateway: Gateway, query: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(f"file:{gateway.database}?mode=ro", uri=True) as connection:
        return connection.execute(query).fetchall()


def enroll(gateway: Gateway, account: Account, tmp_path: Path, *extra: str) -> int:
    secret = password_file(tmp_path, account.password)
    return main(
        gateway.argv("enroll", "--jid", account.jid, "--password-file", str(secret), *extra)
    )


def test_enroll_stores_scram_secret_not_password(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = running_prosody.create_user()
    assert enroll(gateway, account, tmp_path) == 0
    out = capsys.readouterr().out
    assert f"enrolled {account.jid} as device kid 00" in out
    assert "SCRAM-SHA-256 salted password" in out
    assert "the password itself is not stored" in out

    devices = rows(gateway, "SELECT kid, state, account_jid FROM devices")
    assert devices == [(b"\x00", "enrolled", account.jid)]
    [(hash_name, salt, iterations, salted, password)] = rows(
        gateway,
        "SELECT hash_name, salt, iterations, salted_password, password FROM upstream_credentials",
    )
    assert password is None
    assert hash_name == "SHA-256"
    assert isinstance(salt, bytes)
    assert isinstance(iterations, int)
    # What SCRAM's Hi() gives for this password and the server's salt (RFC 5802 §3).
    assert salted == hashlib.pbkdf2_hmac("sha256", account.password.encode(), salt, iterations)
    assert account.password.encode() not in database_bytes(gateway)

    provisioning_path = gateway.directory / "provisioning" / "00.prov"
    assert stat.S_IMODE(provisioning_path.stat().st_mode) == 0o600
    provisioning = read_provisioning_file(provisioning_path)
    assert provisioning.device_kid == b"\x00"
    assert provisioning.account == account.jid
    assert provisioning.device_private_key is not None
    device = provisioning.device_edhoc_credential()
    assert device.private_key == provisioning.device_private_key
    [(stored_credential,)] = rows(gateway, "SELECT credential FROM devices")
    assert stored_credential == provisioning.device_credential
    identity = load_gateway_identity(
        gateway.directory / "edhoc-key.pem", gateway.directory / "edhoc-credential.ccs"
    )
    assert provisioning.gateway_credential == identity.encoded
    assert {e.transport for e in provisioning.endpoints} == {Transport.UDP, Transport.TCP}
    assert (gateway.directory / "devices" / "00.crt").exists()
    key_file = gateway.directory / "devices" / "00.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert is_sealed_key(key_file.read_bytes())


def test_wrong_password_is_refused_and_nothing_is_stored(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = running_prosody.create_user()
    wrong = Account(account.jid, account.localpart, account.domain, "not-" + account.password)
    assert enroll(gateway, wrong, tmp_path) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"refused the password for {account.jid} (not-authorized)" in captured.err
    assert "check the password" in captured.err
    assert "nothing was enrolled" in captured.err
    assert rows(gateway, "SELECT * FROM devices") == []
    assert rows(gateway, "SELECT * FROM upstream_credentials") == []
    assert not (gateway.directory / "provisioning").exists()
    assert not (gateway.directory / "devices").exists()
    assert wrong.password.encode() not in database_bytes(gateway)


def test_device_key_keeps_the_private_key_on_the_device(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    device_key = ec.generate_private_key(ec.SECP256R1())
    public_file = tmp_path / "device.pub.pem"
    public_file.write_bytes(
        device_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    account = running_prosody.create_user()
    out_file = tmp_path / "device.prov"
    assert (
        enroll(gateway, account, tmp_path, "--device-key", str(public_file), "--out", str(out_file))
        == 0
    )
    assert "its private key never left the device" in capsys.readouterr().out
    provisioning = read_provisioning_file(out_file)
    assert provisioning.device_private_key is None
    scalar = device_key.private_numbers().private_value.to_bytes(32, "big")
    # The credential the gateway registered is the device's key, under the assigned kid.
    usable = Credential.from_ccs(provisioning.device_credential).with_private_key(scalar)
    assert usable.kid == provisioning.device_kid
    [(stored,)] = rows(gateway, "SELECT credential FROM devices")
    assert stored == provisioning.device_credential
    assert scalar not in out_file.read_bytes()


def test_device_key_refuses_a_private_key(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key_file = tmp_path / "device.pem"
    key_file.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    account = running_prosody.create_user()
    assert enroll(gateway, account, tmp_path, "--device-key", str(key_file)) == 1
    err = capsys.readouterr().err
    assert "holds a private key" in err
    assert "-pubout" in err
    assert rows(gateway, "SELECT * FROM devices") == []


def test_kids_are_unique_and_an_account_has_one_enrolled_device(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first, second = running_prosody.create_user(), running_prosody.create_user()
    assert enroll(gateway, first, tmp_path) == 0
    assert enroll(gateway, second, tmp_path) == 0
    assert rows(gateway, "SELECT kid, account_jid FROM devices ORDER BY created_at") == [
        (b"\x00", first.jid),
        (b"\x01", second.jid),
    ]
    capsys.readouterr()
    assert enroll(gateway, first, tmp_path) == 1
    err = capsys.readouterr().err
    assert f"{first.jid} already has an enrolled device (kid 00)" in err
    assert "impp-gateway devices revoke 00" in err


def test_register_creates_the_account_then_enrolls(
    tmp_path: Path,
    registering_prosody: ProsodyServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = make_gateway(tmp_path / "gw", registering_prosody)
    account = Account(
        f"new-{os.getpid()}-{tmp_path.name[-6:]}@{registering_prosody.domain}",
        "",
        registering_prosody.domain,
        "a fresh password",
    )
    capsys.readouterr()
    assert enroll(gateway, account, tmp_path, "--register") == 0
    out = capsys.readouterr().out
    assert "registered:   the account was created (XEP-0077)" in out
    assert "SCRAM-SHA-256 accepted" in out
    assert len(rows(gateway, "SELECT * FROM devices")) == 1
    # Registering it again is a conflict, said plainly, and stores nothing more.
    other = make_gateway(tmp_path / "gw2", registering_prosody)
    capsys.readouterr()
    assert enroll(other, account, tmp_path, "--register") == 1
    assert "already" in capsys.readouterr().err
    assert rows(other, "SELECT * FROM devices") == []


def test_register_where_the_server_does_not_allow_it(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = Account(f"nobody-{tmp_path.name[-6:]}@{running_prosody.domain}", "", "", "pw")
    assert enroll(gateway, account, tmp_path, "--register") == 1
    err = capsys.readouterr().err
    assert "does not offer in-band registration" in err or "refused the registration" in err
    assert rows(gateway, "SELECT * FROM devices") == []


def test_unreachable_server_says_where_it_looked(
    tmp_path: Path,
    running_prosody: ProsodyServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from device_sim.harness import free_port

    gateway = make_gateway(tmp_path / "gw", running_prosody, server=f"127.0.0.1:{free_port()}")
    capsys.readouterr()
    account = running_prosody.create_user()
    assert enroll(gateway, account, tmp_path) == 1
    err = capsys.readouterr().err
    assert "cannot reach the XMPP server of impp.test at 127.0.0.1:" in err
    assert 'server = "HOST:PORT"' in err


def test_untrusted_certificate_is_a_tls_error(
    tmp_path: Path,
    running_prosody: ProsodyServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    gateway = make_gateway(tmp_path / "gw", running_prosody, trust="system")
    capsys.readouterr()
    account = running_prosody.create_user()
    assert enroll(gateway, account, tmp_path) == 1
    err = capsys.readouterr().err
    assert "TLS with 127.0.0.1:" in err
    assert "failed" in err
    assert 'trust = "system"' in err
    assert rows(gateway, "SELECT * FROM devices") == []


def test_password_sources(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = running_prosody.create_user()
    argv = gateway.argv("enroll", "--jid", account.jid, "--password-env", "ENROLL_TEST_PASSWORD")
    monkeypatch.delenv("ENROLL_TEST_PASSWORD", raising=False)
    assert main(argv) == 1
    assert "ENROLL_TEST_PASSWORD is unset or empty" in capsys.readouterr().err
    # No source and no terminal: refused rather than blocking on a prompt.
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    assert main(gateway.argv("enroll", "--jid", account.jid)) == 1
    assert "standard input is not a terminal" in capsys.readouterr().err
    monkeypatch.setenv("ENROLL_TEST_PASSWORD", account.password)
    assert main(argv) == 0


def test_console_script_enroll_list_revoke_enroll_again(
    gateway: Gateway, running_prosody: ProsodyServer, tmp_path: Path
) -> None:
    script = Path(sys.executable).with_name("impp-gateway")
    account = running_prosody.create_user()
    environment = {**os.environ, "ENROLL_PASSWORD": account.password}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(script), *gateway.argv(*args)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=SUBPROCESS_TIMEOUT,
            check=False,
        )

    enrolled = run("enroll", "--jid", account.jid, "--password-env", "ENROLL_PASSWORD")
    assert enrolled.returncode == 0, enrolled.stderr
    assert f"enrolled {account.jid} as device kid 00" in enrolled.stdout
    listed = run("devices", "list")
    assert listed.returncode == 0
    assert listed.stdout.splitlines()[1].split()[:3] == ["00", account.jid, "enrolled"]
    revoked = run("devices", "revoke", "00")
    assert revoked.returncode == 0
    assert "revoked device 00" in revoked.stdout
    # A fresh process logs in again (no salted-password cache of an earlier login).
    again = run("enroll", "--jid", account.jid, "--password-env", "ENROLL_PASSWORD")
    assert again.returncode == 0, again.stderr
    assert "as device kid 01" in again.stdout
    assert account.password not in enrolled.stdout + enrolled.stderr + again.stdout


def test_scram_sha1_server(
    tmp_path: Path, running_prosody: ProsodyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = make_gateway(tmp_path / "gw", running_prosody, domain=running_prosody.sha1_domain)
    account = running_prosody.create_user(domain=running_prosody.sha1_domain)
    assert enroll(gateway, account, tmp_path) == 0
    assert "SCRAM-SHA-1 salted password" in capsys.readouterr().out
    [(hash_name, salt, iterations, salted)] = rows(
        gateway, "SELECT hash_name, salt, iterations, salted_password FROM upstream_credentials"
    )
    assert hash_name == "SHA-1"
    assert isinstance(salt, bytes)
    assert isinstance(iterations, int)
    assert salted == hashlib.pbkdf2_hmac("sha1", account.password.encode(), salt, iterations)


def test_a_plain_only_server_leaves_the_password_and_says_so(
    tmp_path: Path, registering_prosody: ProsodyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    domain = registering_prosody.sha1_domain
    gateway = make_gateway(tmp_path / "gw", registering_prosody, domain=domain)
    account = registering_prosody.create_user(domain=domain)
    capsys.readouterr()
    assert enroll(gateway, account, tmp_path) == 0
    out = capsys.readouterr().out
    assert "PLAIN accepted" in out
    assert "THE PASSWORD ITSELF" in out
    assert account.password not in out
    assert rows(gateway, "SELECT hash_name, password FROM upstream_credentials") == [
        ("PLAIN", account.password)
    ]
    assert main(gateway.argv("devices", "show", "00")) == 0
    assert "the password itself" in capsys.readouterr().out


def test_a_domain_the_gateway_does_not_serve(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stranger = Account("bob@elsewhere.example", "bob", "elsewhere.example", "pw")
    assert enroll(gateway, stranger, tmp_path) == 1
    err = capsys.readouterr().err
    assert "the gateway serves no domain 'elsewhere.example'" in err
    assert '[upstream.domains."elsewhere.example"]' in err


def test_the_prompt_when_standard_input_is_a_terminal(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    account = running_prosody.create_user()
    prompts: list[str] = []

    def fake_getpass(prompt: str) -> str:
        prompts.append(prompt)
        return account.password

    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    assert main(gateway.argv("enroll", "--jid", account.jid)) == 0
    assert prompts == [f"password for {account.jid}: "]
    assert account.password not in capsys.readouterr().out


def test_a_wildcard_listener_needs_the_address_devices_use(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = gateway.config.read_text()
    listen = text[text.index("[listen]") : text.index("[edhoc]")]
    port = listen.split('udp = ["127.0.0.1:')[1].split('"')[0]
    gateway.config.write_text(
        text.replace(
            listen,
            f'[listen]\nudp = ["0.0.0.0:{port}"]\ntcp = []\nallow_public = true\n\n',
        )
    )
    account = running_prosody.create_user()
    assert enroll(gateway, account, tmp_path) == 1
    assert "give the address devices reach it at with --gateway-host" in capsys.readouterr().err
    assert rows(gateway, "SELECT * FROM devices") == []
    out_file = tmp_path / "device.prov"
    assert (
        enroll(gateway, account, tmp_path, "--gateway-host", "192.0.2.7", "--out", str(out_file))
        == 0
    )
    [endpoint] = read_provisioning_file(out_file).endpoints
    assert (endpoint.transport, endpoint.host, str(endpoint.port)) == (
        Transport.UDP,
        "192.0.2.7",
        port,
    )


def test_enroll_revoke_enroll_again_in_one_process(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The second login meets this process's SaltedPassword cache (no PBKDF2) and still yields
    the salt: the client's scram_credential() reports a cached key as it does a derived one."""
    account = running_prosody.create_user()
    assert enroll(gateway, account, tmp_path) == 0
    assert main(gateway.argv("devices", "revoke", "00")) == 0
    capsys.readouterr()
    assert enroll(gateway, account, tmp_path) == 0
    assert f"enrolled {account.jid} as device kid 01" in capsys.readouterr().out
    [(salt, iterations, salted)] = rows(
        gateway, "SELECT salt, iterations, salted_password FROM upstream_credentials"
    )
    assert isinstance(salt, bytes)
    assert isinstance(iterations, int)
    assert salted == hashlib.pbkdf2_hmac("sha256", account.password.encode(), salt, iterations)


def test_a_kid_taken_meanwhile_is_given_up_and_the_next_one_used(
    gateway: Gateway,
    running_prosody: ProsodyServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another enrollment took the kid between the read and the write: enroll_device says so."""
    import gateway.enroll.enrollment as enrollment

    first, second = running_prosody.create_user(), running_prosody.create_user()
    assert enroll(gateway, first, tmp_path) == 0
    real = enrollment._free_kid
    offered: list[bytes] = []

    async def stale_then_real(store: GatewayStore) -> bytes:
        kid = b"\x00" if not offered else await real(store)
        offered.append(kid)
        return kid

    monkeypatch.setattr(enrollment, "_free_kid", stale_then_real)
    capsys.readouterr()
    assert enroll(gateway, second, tmp_path) == 0
    assert offered == [b"\x00", b"\x01"]
    assert "as device kid 01" in capsys.readouterr().out
    # The stale attempt left no file behind and did not touch the first device's.
    assert sorted(p.name for p in (gateway.directory / "provisioning").iterdir()) == [
        "00.prov",
        "01.prov",
    ]
    assert sorted(p.name for p in (gateway.directory / "devices").iterdir()) == [
        "00.crt",
        "00.key",
        "01.crt",
        "01.key",
    ]
    assert read_provisioning_file(gateway.directory / "provisioning" / "00.prov").account == (
        first.jid
    )
