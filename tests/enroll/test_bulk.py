"""``impp-gateway enroll --bulk`` and ``--csv``: many devices through the single-device path."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import pytest

from gateway.cli import main
from gateway.enroll import read_provisioning_file
from gateway.enroll.bulk import (
    BulkError,
    accounts_from_csv,
    accounts_from_template,
    plan_outputs,
)
from tests.enroll.conftest import Gateway, make_gateway
from tests.support.prosody import ProsodyServer


def devices(gateway: Gateway) -> list[tuple[bytes, str]]:
    with sqlite3.connect(f"file:{gateway.database}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT kid, account_jid FROM devices ORDER BY kid").fetchall()


def test_template_accounts_and_their_passwords() -> None:
    shared = accounts_from_template("dev{n}@example.org", 3, first=7, password="pw")
    assert [a.jid for a in shared] == ["dev7@example.org", "dev8@example.org", "dev9@example.org"]
    assert {a.password for a in shared} == {"pw"}
    assert "pw" not in repr(shared)
    fresh = accounts_from_template("d{n}@example.org", 50, password=None)
    assert len({a.password for a in fresh}) == 50
    assert all(len(a.password) >= 32 for a in fresh)
    with pytest.raises(BulkError, match="must hold"):
        accounts_from_template("dev@example.org", 3, password="pw")
    with pytest.raises(BulkError, match="1 to"):
        accounts_from_template("dev{n}@example.org", 0, password="pw")


def test_csv_rows_name_password_files(tmp_path: Path) -> None:
    (tmp_path / "a.pw").write_text("alpha\n")
    (tmp_path / "b.pw").write_text("beta")
    sheet = tmp_path / "devices.csv"
    sheet.write_text("jid,password_file\n# a comment\na@example.org,a.pw\n\nb@example.org, b.pw\n")
    accounts = accounts_from_csv(sheet)
    assert [(a.jid, a.password) for a in accounts] == [
        ("a@example.org", "alpha"),
        ("b@example.org", "beta"),
    ]
    sheet.write_text("a@example.org,a.pw\na@example.org,b.pw\n")
    with pytest.raises(BulkError, match="listed twice"):
        accounts_from_csv(sheet)
    sheet.write_text("a@example.org\n")
    with pytest.raises(BulkError, match="expected"):
        accounts_from_csv(sheet)
    sheet.write_text("a@example.org,missing.pw\n")
    with pytest.raises(BulkError, match="cannot read"):
        accounts_from_csv(sheet)


def test_existing_files_are_refused_before_anything_is_enrolled(tmp_path: Path) -> None:
    accounts = accounts_from_template("dev{n}@example.org", 2, password="pw")
    out = tmp_path / "out"
    paths = plan_outputs(out, accounts)
    assert [p.name for p in paths] == ["dev1@example.org.prov", "dev2@example.org.prov"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    paths[1].write_bytes(b"")
    with pytest.raises(BulkError, match="already holds 1"):
        plan_outputs(out, accounts)


def test_bulk_register_enrolls_each_account_and_writes_one_file_each(
    tmp_path: Path, registering_prosody: ProsodyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = make_gateway(tmp_path / "gw", registering_prosody)
    capsys.readouterr()
    template = f"bulk{{n}}-{os.getpid()}-{tmp_path.name[-6:]}@{registering_prosody.domain}"
    out = tmp_path / "provisioning"
    argv = ["enroll", "--bulk", "3", "--jid-template", template, "--register", "--out", str(out)]
    assert main(gateway.argv(*argv)) == 0
    printed = capsys.readouterr().out
    assert "3 of 3 devices enrolled" in printed
    assert "random one per account" in printed
    jids = [template.replace("{n}", str(n)) for n in (1, 2, 3)]
    files = sorted(out.iterdir())
    assert [f.name for f in files] == sorted(f"{jid}.prov" for jid in jids)
    kids = set()
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        provisioning = read_provisioning_file(path)
        assert f"{provisioning.account}.prov" == path.name
        assert provisioning.device_private_key is not None
        kids.add(provisioning.device_kid)
    assert len(kids) == 3
    assert sorted(jid for _, jid in devices(gateway)) == sorted(jids)
    # Again into the same directory: refused before any enrollment.
    assert main(gateway.argv(*argv)) == 1
    assert "already holds 3" in capsys.readouterr().err
    assert len(devices(gateway)) == 3


def test_csv_enrolls_existing_accounts_and_stops_at_a_wrong_password(
    tmp_path: Path, running_prosody: ProsodyServer, capsys: pytest.CaptureFixture[str]
) -> None:
    gateway = make_gateway(tmp_path / "gw", running_prosody)
    capsys.readouterr()
    first, second = running_prosody.create_user(), running_prosody.create_user()
    (tmp_path / "1.pw").write_text(first.password)
    (tmp_path / "2.pw").write_text(second.password)
    (tmp_path / "wrong.pw").write_text("not the password")
    sheet = tmp_path / "devices.csv"
    sheet.write_text(f"{first.jid},1.pw\n{second.jid},2.pw\n")
    out = tmp_path / "out"
    assert main(gateway.argv("enroll", "--csv", str(sheet), "--out", str(out), "--jobs", "2")) == 0
    captured = capsys.readouterr()
    assert "2 of 2 devices enrolled" in captured.out
    assert first.password not in captured.out + captured.err
    assert sorted(jid for _, jid in devices(gateway)) == sorted([first.jid, second.jid])
    third = running_prosody.create_user()
    sheet.write_text(f"{third.jid},wrong.pw\n")
    assert main(gateway.argv("enroll", "--csv", str(sheet), "--out", str(tmp_path / "o2"))) == 1
    err = capsys.readouterr().err
    assert third.jid in err
    assert "not the password" not in err
    assert len(devices(gateway)) == 2
    assert list((tmp_path / "o2").iterdir()) == []


def test_bulk_needs_a_template_an_out_directory_and_a_password_source(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "out")
    assert main(gateway.argv("enroll", "--bulk", "2", "--out", out, "--register")) == 1
    assert "--jid-template" in capsys.readouterr().err
    assert main(gateway.argv("enroll", "--bulk", "2", "--jid-template", "d{n}@x")) == 2
    assert "--out DIR" in capsys.readouterr().err
    assert (
        main(gateway.argv("enroll", "--bulk", "2", "--jid-template", "d{n}@x", "--out", out)) == 1
    )
    assert "password" in capsys.readouterr().err
    assert devices(gateway) == []
