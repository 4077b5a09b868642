"""``impp-gateway doctor``: check a gateway's configuration, files, store, listeners, upstream
servers and one account's login, and say for each failure how to fix it.

Every check reuses the code the gateway itself runs: the configuration loader and its file
checks (gateway.config), the store's schema version (gateway.store.schema, read through a
read-only connection: doctor never migrates), the listeners' bind probe, the SRV resolver
(gateway.xmpp.resolver), the upstream TLS policy (gateway.xmpp.tls) and the enrollment login
(gateway.enroll.login). Nothing is written anywhere.
"""

from __future__ import annotations

import datetime
import secrets
import sqlite3
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import trio

from gateway.admin.client import AdminClientError, admin_request
from gateway.admin.server import admin_socket_path
from gateway.admin.tls_probe import (
    CertificateSummary,
    ProbeError,
    describe_certificate,
    name_matches,
    starttls_handshake,
)
from gateway.config import (
    ConfigError,
    Configuration,
    UpstreamDomain,
    check_environment,
    load_configuration,
    port_problem,
)
from gateway.config.lines import KeyLines
from gateway.xmpp.net.resolver import SRV_SERVICE, ServerAddress, dns_srv_lookup, order_srv_records
from gateway.xmpp.net.tls import TrustStore, create_client_context

__all__ = ["DEFAULT_CHECK_TIMEOUT", "CheckResult", "run_doctor"]

DEFAULT_CHECK_TIMEOUT: Final = 30.0  # seconds for one network check (DNS, connect, TLS)
_HOSTNAME_MISMATCH: Final = 62  # X509_V_ERR_HOSTNAME_MISMATCH
_SCRAM_MECHANISMS: Final = {"SHA-256": "SCRAM-SHA-256", "SHA-1": "SCRAM-SHA-1"}


@dataclass(frozen=True)
class CheckResult:
    """One check: its name, whether it passed, what it saw, and the fixes when it did not."""

    name: str
    ok: bool
    details: tuple[str, ...] = ()
    fixes: tuple[str, ...] = ()


async def run_doctor(
    config_path: Path, *, login: str | None = None, time_limit: float = DEFAULT_CHECK_TIMEOUT
) -> list[CheckResult]:
    """Every check, in order; later checks are skipped when the configuration cannot be read."""
    try:
        configuration = load_configuration(config_path, check_files=False, check_ports=False)
    except ConfigError as exc:
        return [
            CheckResult(
                "configuration",
                False,
                tuple(p.format(exc.source).split("\n  fix: ")[0] for p in exc.problems),
                tuple(p.fix for p in exc.problems),
            )
        ]
    results = [CheckResult("configuration", True, (f"{configuration.source} is valid",))]
    results.extend(_file_checks(configuration))
    results.append(_schema_check(configuration))
    results.append(_listener_check(configuration))
    for domain in configuration.upstream.domains:
        results.extend(await _domain_checks(domain, time_limit))
    if login is not None:
        results.append(await _login_check(configuration, login, time_limit))
    return results


def _file_checks(configuration: Configuration) -> list[CheckResult]:
    lines = KeyLines(configuration.source.read_text(encoding="utf-8"))
    problems = check_environment(configuration, lines, check_files=True, check_ports=False)
    modes = [p for p in problems if p.fix.startswith("chmod ")]
    others = [p for p in problems if not p.fix.startswith("chmod ")]

    def result(name: str, found: Sequence[object], ok_text: str) -> CheckResult:
        if not found:
            return CheckResult(name, True, (ok_text,))
        return CheckResult(
            name,
            False,
            tuple(f"{p.key}: {p.message}" for p in problems if p in found),
            tuple(p.fix for p in problems if p in found),
        )

    return [
        result("files", others, "every file the configuration names is present and readable"),
        result("file modes", modes, "secrets are mode 600, directories 700"),
    ]


def _schema_check(configuration: Configuration) -> CheckResult:
    from gateway.store.schema import SCHEMA_VERSION, schema_version

    database = configuration.store.database
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            current = schema_version(connection)
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return CheckResult(
            "store schema",
            False,
            (f"cannot read {database}: {exc}",),
            ("restore the database from a backup, or create one with 'impp-gateway init DIR'",),
        )
    detail = f"{database}: schema version {current}, this gateway's is {SCHEMA_VERSION}"
    if current == SCHEMA_VERSION:
        return CheckResult("store schema", True, (detail,))
    if current > SCHEMA_VERSION:
        fix = "run the newer gateway that wrote it, or restore a backup made by this version"
    else:
        fix = (
            "back the database up (docs/operations.md), then start the gateway: "
            "'impp-gateway run' migrates the schema on start"
        )
    return CheckResult("store schema", False, (detail,), (fix,))


def _listener_check(configuration: Configuration) -> CheckResult:
    socket_path = admin_socket_path(configuration.gateway.data_dir)
    try:
        answer = admin_request(socket_path, {"op": "status"}, timeout=5.0)
    except AdminClientError:
        answer = None
    if answer is not None and answer.get("ok") is True:
        return CheckResult(
            "listeners",
            True,
            (f"the running gateway holds them (admin socket {socket_path})",),
        )
    details: list[str] = []
    fixes: list[str] = []
    for kind, addresses in (("udp", configuration.listen.udp), ("tcp", configuration.listen.tcp)):
        for address in addresses:
            reason = port_problem(address, kind)
            if reason is None:
                details.append(f"{kind.upper()} {address} can be bound")
            else:
                details.append(f"{kind.upper()} {address} cannot be bound: {reason}")
                fixes.append(
                    f"stop the process holding {kind.upper()} {address} (ss -lunp / ss -ltnp "
                    f"shows which) or choose another port in listen.{kind}"
                )
    return CheckResult("listeners", not fixes, tuple(details), tuple(fixes))


def _table(domain: UpstreamDomain) -> str:
    return f'[upstream.domains."{domain.domain}"]'


async def _resolve(
    domain: UpstreamDomain, time_limit: float
) -> tuple[CheckResult, list[ServerAddress]]:
    name = f"resolve {domain.domain}"
    if domain.server_host is not None and domain.server_port is not None:
        pinned = ServerAddress(domain.server_host, domain.server_port)
        detail = f"pinned to {pinned.host}:{pinned.port} by server = in {_table(domain)}"
        targets = [pinned]
    else:
        records = None
        with trio.move_on_after(time_limit):
            records = await dns_srv_lookup(f"{SRV_SERVICE}.{domain.domain}.")
        if records:
            targets = order_srv_records(records, secrets.SystemRandom())
            if not targets:
                return (
                    CheckResult(
                        name,
                        False,
                        (f"the SRV record of {domain.domain} says it offers no XMPP service",),
                        (f'set server = "HOST:PORT" in {_table(domain)}',),
                    ),
                    [],
                )
            shown = ", ".join(f"{t.host}:{t.port}" for t in targets)
            detail = f"SRV {SRV_SERVICE}.{domain.domain}: {shown}"
        else:
            targets = [ServerAddress(domain.domain, 5222)]
            detail = (
                f"no SRV record {SRV_SERVICE}.{domain.domain}; falling back to {domain.domain}:5222"
            )
    reachable: list[ServerAddress] = []
    failures: list[str] = []
    for target in targets:
        try:
            with trio.fail_after(time_limit):
                await trio.socket.getaddrinfo(
                    target.host, target.port, type=trio.socket.SOCK_STREAM
                )
            reachable.append(target)
        except (OSError, trio.TooSlowError) as exc:
            failures.append(f"{target.host} does not resolve: {exc}")
    if not reachable:
        return (
            CheckResult(
                name,
                False,
                (detail, *failures),
                (
                    f"publish an SRV record {SRV_SERVICE}.{domain.domain} or an address record, "
                    f'or set server = "HOST:PORT" in {_table(domain)}',
                ),
            ),
            [],
        )
    return CheckResult(name, True, (detail, *failures)), reachable


def _describe(summary: CertificateSummary, domain: str) -> tuple[str, ...]:
    matches = name_matches(domain, summary.dns_names)
    expiry = summary.not_after.strftime("%Y-%m-%d %H:%M UTC")
    expired = summary.not_after < datetime.datetime.now(datetime.UTC)
    return (
        f"certificate subject: {summary.subject}",
        f"certificate issuer:  {summary.issuer}",
        f"certificate expires: {expiry}" + (" (EXPIRED)" if expired else ""),
        "certificate names:   "
        + (", ".join(summary.dns_names) or "none")
        + (f" (matches {domain})" if matches else f" (does NOT match {domain})"),
    )


async def _probe(
    target: ServerAddress, domain: str, context: ssl.SSLContext, time_limit: float
) -> bytes:
    with trio.fail_after(time_limit):
        stream = await trio.open_tcp_stream(target.host, target.port)
        async with stream:
            return await starttls_handshake(stream, domain, context)


async def _tls_check(
    domain: UpstreamDomain, targets: list[ServerAddress], time_limit: float
) -> CheckResult:
    name = f"tls {domain.domain}"
    trust = TrustStore(ca_file=domain.trust.ca_file, use_system_store=domain.trust.ca_file is None)
    try:
        context = create_client_context(trust)
    except (OSError, ValueError, ssl.SSLError) as exc:
        return CheckResult(
            name,
            False,
            (f"cannot load the trust store {domain.trust}: {exc}",),
            (f'give a PEM file of the server\'s CA, or "system", as trust = in {_table(domain)}',),
        )
    errors: list[str] = []
    for target in targets:
        where = f"{target.host}:{target.port}"
        try:
            der = await _probe(target, domain.domain, context, time_limit)
        except (OSError, trio.TooSlowError, ProbeError) as exc:
            errors.append(f"{where}: {exc or type(exc).__name__}")
            continue
        except trio.BrokenResourceError as exc:
            return await _tls_failure(domain, target, exc, time_limit)
        return CheckResult(
            name,
            True,
            (
                f"{where}: STARTTLS, chain verified against trust = {domain.trust}",
                *_describe(describe_certificate(der), domain.domain),
            ),
        )
    return CheckResult(
        name,
        False,
        tuple(errors),
        (
            f"check that the XMPP server of {domain.domain} runs and offers STARTTLS on its client "
            f'port, and that server = "HOST:PORT" in {_table(domain)} names that port',
        ),
    )


async def _tls_failure(
    domain: UpstreamDomain,
    target: ServerAddress,
    error: trio.BrokenResourceError,
    time_limit: float,
) -> CheckResult:
    """The handshake failed: say why, and show the certificate that was refused."""
    name = f"tls {domain.domain}"
    where = f"{target.host}:{target.port}"
    cause = error.__cause__
    details = [f"{where}: TLS handshake failed: {cause or error}"]
    # Only to show the operator what the server presents; never used to log in.
    inspect = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    inspect.check_hostname = False
    inspect.verify_mode = ssl.CERT_NONE
    summary: CertificateSummary | None = None
    try:
        summary = describe_certificate(await _probe(target, domain.domain, inspect, time_limit))
        details.extend(_describe(summary, domain.domain))
    except (OSError, trio.TooSlowError, trio.BrokenResourceError, ProbeError, ValueError):
        details.append("the certificate could not be fetched for display")
    if isinstance(cause, ssl.SSLCertVerificationError) and cause.verify_code == _HOSTNAME_MISMATCH:
        names = ", ".join(summary.dns_names) if summary is not None else "another name"
        fix = (
            f"the server's certificate names {names}, not {domain.domain}: install a certificate "
            f"for {domain.domain} on the server, or correct server = in {_table(domain)} if it "
            "points at another domain's server"
        )
    elif isinstance(cause, ssl.SSLCertVerificationError):
        issuer = summary.issuer if summary is not None else "the server's CA"
        fix = (
            f"the certificate does not chain to trust = {domain.trust}: set trust = to a PEM file "
            f'holding the CA that issued it ({issuer}) in {_table(domain)}, or "system" for a '
            "publicly trusted server"
        )
    else:
        fix = f"the server at {where} broke the TLS handshake; check its TLS configuration"
    return CheckResult(name, False, tuple(details), (fix,))


async def _domain_checks(domain: UpstreamDomain, time_limit: float) -> list[CheckResult]:
    resolution, targets = await _resolve(domain, time_limit)
    if not targets:
        return [resolution]
    return [resolution, await _tls_check(domain, targets, time_limit)]


async def _login_check(configuration: Configuration, login: str, time_limit: float) -> CheckResult:
    from gateway.admin.stored_login import StoredLoginError, login_with_stored_credential

    name = f"login {login}"
    try:
        mechanism = await login_with_stored_credential(configuration, login, time_limit=time_limit)
    except StoredLoginError as exc:
        return CheckResult(name, False, (exc.message,), (exc.fix,))
    return CheckResult(name, True, (f"logged in and bound with {mechanism}, then closed",))
