"""Enrollment of many devices at once: accounts from a template or a CSV, one file each.

Every device goes through :func:`gateway.enroll.enrollment.enroll`, the single-device path, so
what is checked, stored and written is the same (docs/provisioning.md). This module only says
which accounts, with which passwords, and where each provisioning file goes: ``DIR/<jid>.prov``.

Passwords. From a template, every account takes the one password given (a file or an
environment variable) or, with ``--register`` and no password given, a fresh random one per
account (``secrets.token_urlsafe``) that is used to register and log in once and then forgotten:
the gateway keeps only SCRAM's salted password, and nobody needs the password itself. From a CSV,
each row names the account and the file that holds its password. Passwords are never printed or
logged, and :class:`BulkAccount` keeps them out of ``repr``.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import trio

from gateway.config import Configuration
from gateway.enroll.enrollment import EnrollmentOutcome, EnrollmentRequest, enroll

__all__ = [
    "MAX_BULK",
    "BulkAccount",
    "BulkError",
    "BulkOutcome",
    "accounts_from_csv",
    "accounts_from_template",
    "enroll_bulk",
    "plan_outputs",
    "provisioning_path",
]

MAX_BULK: Final = 100_000  # devices in one command
MAX_CSV_BYTES: Final = 16 * 1024 * 1024
MAX_PASSWORD_BYTES: Final = 4096
TEMPLATE_FIELD: Final = "{n}"
GENERATED_PASSWORD_BYTES: Final = 24  # 192 bits, URL-safe base64 (32 characters)


class BulkError(Exception):
    """The bulk request cannot be carried out as given; nothing more was enrolled."""


@dataclass(frozen=True)
class BulkAccount:
    """One account to enroll and its password."""

    jid: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class BulkOutcome:
    """What a bulk enrollment did: the outcomes in order, and the failure that stopped it."""

    enrolled: list[EnrollmentOutcome]
    failed_jid: str | None = None
    failure: Exception | None = None


def accounts_from_template(
    template: str,
    count: int,
    *,
    first: int = 1,
    password: str | None,
    random_password: Callable[[], str] | None = None,
) -> list[BulkAccount]:
    """``count`` accounts ``template`` with ``{n}`` = first, first+1, ...

    ``password`` for all, else one fresh ``random_password()`` each (for ``--register``).
    """
    if template.count(TEMPLATE_FIELD) != 1:
        raise BulkError(
            f"the JID template must hold {TEMPLATE_FIELD} once, e.g. dev{{n}}@example.org"
        )
    if not 1 <= count <= MAX_BULK:
        raise BulkError(f"--bulk takes 1 to {MAX_BULK} devices")
    if first < 0:
        raise BulkError("--first must not be negative")
    make = random_password or (lambda: secrets.token_urlsafe(GENERATED_PASSWORD_BYTES))
    return [
        BulkAccount(
            template.replace(TEMPLATE_FIELD, str(n)), password if password is not None else make()
        )
        for n in range(first, first + count)
    ]


def _read_password(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PASSWORD_BYTES + 1)
    except OSError as exc:
        raise BulkError(f"cannot read the password file {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_PASSWORD_BYTES:
        raise BulkError(f"{path} is larger than a password file can be")
    try:
        password = data.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise BulkError(f"the password file {path} is not UTF-8") from exc
    if not password:
        raise BulkError(f"the password file {path} is empty")
    return password


def accounts_from_csv(path: Path) -> list[BulkAccount]:
    """Rows ``jid,password-file`` (a path relative to the CSV's directory, or absolute).

    Blank lines and lines starting with ``#`` are skipped; a header row ``jid,password_file``
    may come first.
    """
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CSV_BYTES + 1)
    except OSError as exc:
        raise BulkError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if len(data) > MAX_CSV_BYTES:
        raise BulkError(f"{path} is larger than {MAX_CSV_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BulkError(f"{path} is not UTF-8") from exc
    accounts: list[BulkAccount] = []
    seen: set[str] = set()
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        cells = [cell.strip() for cell in row]
        if number == 1 and cells[0].lower() == "jid":
            continue
        if len(cells) != 2 or not all(cells):
            raise BulkError(f"{path}:{number}: expected 'jid,password-file'")
        jid, password_file = cells
        if jid in seen:
            raise BulkError(f"{path}:{number}: {jid} is listed twice")
        seen.add(jid)
        password_path = Path(password_file)
        if not password_path.is_absolute():
            password_path = path.parent / password_path
        accounts.append(BulkAccount(jid, _read_password(password_path)))
        if len(accounts) > MAX_BULK:
            raise BulkError(f"{path} lists more than {MAX_BULK} accounts")
    if not accounts:
        raise BulkError(f"{path} lists no accounts")
    return accounts


def provisioning_path(directory: Path, jid: str) -> Path:
    """Where the device of ``jid`` gets its provisioning file."""
    if "/" in jid or jid.startswith("."):
        raise BulkError(f"{jid!r} cannot name a file")
    return directory / f"{jid}.prov"


def plan_outputs(out_dir: Path, accounts: Sequence[BulkAccount]) -> list[Path]:
    """Each account's provisioning file in ``out_dir`` (made 0700 if missing).

    Files already there for an account are refused before anything is enrolled, so a repeated
    command never overwrites a device's key.
    """
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = [provisioning_path(out_dir, account.jid) for account in accounts]
    existing = [p.name for p in paths if p.exists()]
    if existing:
        raise BulkError(
            f"{out_dir} already holds {len(existing)} of these files ({existing[0]}, ...): "
            "use a new directory, or remove them and revoke their devices"
        )
    return paths


async def enroll_bulk(
    configuration: Configuration,
    accounts: Sequence[BulkAccount],
    outputs: Sequence[Path],
    *,
    register: bool,
    gateway_host: str | None = None,
    jobs: int = 4,
    on_enrolled: Callable[[EnrollmentOutcome], None] | None = None,
) -> BulkOutcome:
    """Enroll ``accounts`` (files at ``outputs``, see :func:`plan_outputs`), ``jobs`` at a time.

    After the first failure no new enrollment starts; those under way finish (an enrollment is
    never cancelled half-way), and the outcome names the first account in order that failed.
    """
    enrolled: dict[int, EnrollmentOutcome] = {}
    failures: dict[int, Exception] = {}
    limit = trio.Semaphore(max(1, jobs))

    async def one(index: int, account: BulkAccount) -> None:
        async with limit:
            if failures:
                return
            request = EnrollmentRequest(
                account=account.jid,
                password=account.password,
                register=register,
                output=outputs[index],
                gateway_host=gateway_host,
            )
            try:
                outcome = await enroll(configuration, request)
            except Exception as exc:
                failures[index] = exc
                return
            enrolled[index] = outcome
            if on_enrolled is not None:
                on_enrolled(outcome)

    async with trio.open_nursery() as nursery:
        for index, account in enumerate(accounts):
            nursery.start_soon(one, index, account)
    ordered = [enrolled[i] for i in sorted(enrolled)]
    if not failures:
        return BulkOutcome(ordered)
    first = min(failures)
    return BulkOutcome(ordered, accounts[first].jid, failures[first])
