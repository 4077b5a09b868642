"""Read the TOML configuration into a :class:`~gateway.config.model.Configuration`.

Theory of operation. The file is parsed with the standard library's ``tomllib``; then every
section is read against its known keys, one typed getter per key (``bool`` is never taken for
an integer, an integer is taken for a float), each with its range. A mistake records a
:class:`~gateway.config.errors.Problem` naming the dotted key and its line, and the reader goes
on with the default, so one run reports every mistake. Unknown keys are problems too, with the
nearest known key suggested (``difflib``). What the file refers to (key files and their modes,
the CA, the database, ports) is checked afterwards by :mod:`gateway.config.checks`, with the
default in place of each value found wrong. Any problem raises
:class:`~gateway.config.errors.ConfigError` carrying them all, in file order.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from gateway.config.errors import ConfigError, Problem
from gateway.config.lines import KeyLines, dotted
from gateway.config.model import (
    MAX_SESSIONS_LIMIT,
    Configuration,
    EdhocSection,
    GatewaySection,
    LimitsSection,
    ListenAddress,
    ListenSection,
    LogLevel,
    MetricsSection,
    SigningSection,
    StoreSection,
    Trust,
    UpstreamDomain,
    UpstreamSection,
)

__all__ = [
    "MAX_CONFIG_FILE_SIZE",
    "SECTION_KEYS",
    "is_loopback_host",
    "load_configuration",
    "parse_configuration",
]

MAX_CONFIG_FILE_SIZE: Final = 1024 * 1024  # a configuration is a few kilobytes; refuse the absurd

# RFC 6120 §13.12 lets a server refuse stanzas above 10,000 bytes, so no smaller cap makes sense;
# 16 MiB is far above any server's own limit (Prosody's default is 256 KiB).
MIN_STANZA_SIZE: Final = 10_000
MAX_STANZA_SIZE: Final = 16 * 1024 * 1024

DOMAIN_KEYS: Final = ("server", "trust", "allow_plaintext", "max_stanza_size")

SECTION_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "gateway": ("data_dir", "log_level", "drain_timeout"),
    "listen": ("udp", "tcp", "allow_public"),
    "edhoc": ("key_file", "credential_file"),
    "signing": ("ca_dir", "passphrase_file"),
    "store": ("database",),
    "upstream": ("trust", "max_stanza_size", "domains"),
    "limits": (
        "max_sessions",
        "max_handshakes",
        "max_handshakes_per_host",
        "handshake_timeout",
        "idle_timeout",
        "queue_length",
        "link_lost_grace",
        "max_directed",
    ),
    "metrics": ("enabled", "listen", "allow_public", "status_token_file"),
}

_HOSTNAME = re.compile(
    r"(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def is_loopback_host(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_hostname(text: str) -> bool:
    """True for a DNS name of letters, digits and hyphens (a domain or server host)."""
    return _HOSTNAME.fullmatch(text) is not None


def split_host_port(text: str) -> tuple[str, int] | str:
    """``HOST:PORT`` or ``[IPv6]:PORT`` -> (host, port), or the reason it is not one."""
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            return "an IPv6 address is written [ADDRESS]:PORT"
        port_text = rest[1:]
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            return "no port (write HOST:PORT)"
        if ":" in host:
            return "an IPv6 address must be in brackets: [ADDRESS]:PORT"
    if not host:
        return "no host before the port"
    if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
        return f"the port {port_text!r} is not a number"
    port = int(port_text)
    if not 1 <= port <= 65535:
        return f"the port {port} is outside 1-65535"
    return host, port


class _Reader:
    """Typed access to the parsed document, recording a problem for each mistake."""

    def __init__(self, text: str, base: Path) -> None:
        self.lines = KeyLines(text)
        self.base = base
        self.problems: list[Problem] = []

    def problem(self, path: Sequence[str], message: str, fix: str) -> None:
        self.problems.append(Problem(dotted(path), message, fix, self.lines.line(tuple(path))))

    def table(self, document: dict[str, object], path: tuple[str, ...]) -> dict[str, object]:
        value = document.get(path[-1], {})
        if not isinstance(value, dict):
            self.problem(
                path,
                f"must be a table, not {_kind(value)}",
                f"write it as a [{dotted(path)}] table",
            )
            return {}
        return value

    def unknown_keys(
        self, table: dict[str, object], path: tuple[str, ...], known: Sequence[str]
    ) -> None:
        for key in table:
            if key in known:
                continue
            if not known:
                self.problem(
                    (*path, key),
                    f"[{dotted(path)}] takes no keys in this release",
                    f"remove {key!r}",
                )
                continue
            # 0.5 rather than difflib's 0.6: one swapped pair in a short name ("singing" for
            # "signing") scores 0.57, and names here are few enough that a loose guess is cheap.
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
            hint = f"did you mean {close[0]!r}? " if close else ""
            if path:
                message, listing = f"unknown key in [{dotted(path)}]", "known keys"
            else:
                message, listing = "unknown section", "known sections"
            self.problem((*path, key), message, f"{hint}{listing}: {', '.join(known)}")

    def string(self, table: dict[str, object], path: tuple[str, ...], default: str) -> str:
        raw = table.get(path[-1], default)
        if not isinstance(raw, str):
            self.problem(path, f"must be a string, not {_kind(raw)}", f'write {path[-1]} = "..."')
            return default
        return raw

    def boolean(self, table: dict[str, object], path: tuple[str, ...], default: bool) -> bool:
        raw = table.get(path[-1], default)
        if not isinstance(raw, bool):
            self.problem(
                path,
                f"must be true or false, not {_kind(raw)}",
                f"write {path[-1]} = true or {path[-1]} = false (no quotes)",
            )
            return default
        return raw

    def integer(
        self, table: dict[str, object], path: tuple[str, ...], default: int, low: int, high: int
    ) -> int:
        raw = table.get(path[-1], default)
        if isinstance(raw, bool) or not isinstance(raw, int):
            self.problem(
                path,
                f"must be an integer, not {_kind(raw)}",
                f"write a whole number from {low} to {high}, without quotes",
            )
            return default
        if not low <= raw <= high:
            self.problem(path, f"{raw} is out of range", f"choose a value from {low} to {high}")
            return default
        return raw

    def number(
        self,
        table: dict[str, object],
        path: tuple[str, ...],
        default: float,
        low: float,
        high: float,
    ) -> float:
        raw = table.get(path[-1], default)
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            self.problem(
                path,
                f"must be a number, not {_kind(raw)}",
                f"write a number of seconds from {low:g} to {high:g}, without quotes",
            )
            return default
        if not low <= raw <= high:
            self.problem(
                path, f"{raw:g} is out of range", f"choose a value from {low:g} to {high:g}"
            )
            return default
        return float(raw)

    def path_value(
        self, table: dict[str, object], path: tuple[str, ...], default: str, base: Path
    ) -> Path:
        text = self.string(table, path, default)
        if not text:
            self.problem(path, "is empty", f"give a path, for example {default!r}")
            text = default
        return (base / Path(text).expanduser()).resolve() if text else base


def _kind(value: object) -> str:
    """How TOML would call the type of ``value``, for messages."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


def load_configuration(
    path: str | Path, *, check_files: bool = True, check_ports: bool = True
) -> Configuration:
    """Read, parse and validate the configuration file at ``path``; raise :class:`ConfigError`.

    ``check_files`` also checks every file and directory it names (existence, mode, contents);
    ``check_ports`` also binds each listener's port for a moment to see that it is free.
    """
    source = Path(path)
    try:
        with source.open("rb") as handle:
            data = handle.read(MAX_CONFIG_FILE_SIZE + 1)
        if len(data) > MAX_CONFIG_FILE_SIZE:
            raise ConfigError(
                source,
                [
                    Problem(
                        "",
                        f"the file is larger than the limit of {MAX_CONFIG_FILE_SIZE} bytes",
                        "give the gateway's configuration file (impp-gateway init writes one)",
                    )
                ],
            )
        text = data.decode("utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            source,
            [
                Problem(
                    "",
                    "the configuration file does not exist",
                    "create one with 'impp-gateway init DIR', or give its path with --config",
                )
            ],
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ConfigError(
            source,
            [Problem("", f"cannot read the file: {reason}", "check its path and permissions")],
        ) from exc
    return parse_configuration(
        text, source=source.resolve(), check_files=check_files, check_ports=check_ports
    )


def parse_configuration(
    text: str, *, source: Path, check_files: bool = True, check_ports: bool = True
) -> Configuration:
    """Validate configuration ``text`` that was read from ``source`` (its directory is the base)."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(
            source,
            [Problem("", f"not valid TOML: {exc}", "correct the syntax at that line and column")],
        ) from exc
    reader = _Reader(text, source.parent)
    reader.unknown_keys(document, (), tuple(SECTION_KEYS))
    for name, known in SECTION_KEYS.items():
        reader.unknown_keys(reader.table(document, (name,)), (name,), known)
    configuration = _read_sections(reader, document, source)
    if check_files or check_ports:
        from gateway.config.checks import check_environment

        reader.problems.extend(
            check_environment(
                configuration, reader.lines, check_files=check_files, check_ports=check_ports
            )
        )
    if reader.problems:
        in_file_order = sorted(
            reader.problems, key=lambda p: p.line if p.line is not None else len(text)
        )
        raise ConfigError(source, in_file_order)
    return configuration


def _read_sections(reader: _Reader, document: dict[str, object], source: Path) -> Configuration:
    table = reader.table(document, ("gateway",))
    data_dir = reader.path_value(table, ("gateway", "data_dir"), ".", source.parent)
    level_text = reader.string(table, ("gateway", "log_level"), LogLevel.INFO.value)
    try:
        log_level = LogLevel(level_text.lower())
    except ValueError:
        reader.problem(
            ("gateway", "log_level"),
            f"{level_text!r} is not a log level",
            "choose one of " + ", ".join(f'"{level.value}"' for level in LogLevel),
        )
        log_level = LogLevel.INFO
    drain_timeout = reader.number(
        table, ("gateway", "drain_timeout"), GatewaySection(data_dir).drain_timeout, 0.0, 3600.0
    )
    gateway = GatewaySection(data_dir, log_level, drain_timeout)

    listen = _read_listen(reader, reader.table(document, ("listen",)))

    table = reader.table(document, ("edhoc",))
    edhoc = EdhocSection(
        reader.path_value(table, ("edhoc", "key_file"), "edhoc-key.pem", data_dir),
        reader.path_value(table, ("edhoc", "credential_file"), "edhoc-credential.ccs", data_dir),
    )

    table = reader.table(document, ("signing",))
    passphrase_text = reader.string(table, ("signing", "passphrase_file"), "")
    signing = SigningSection(
        reader.path_value(table, ("signing", "ca_dir"), "ca", data_dir),
        (data_dir / Path(passphrase_text).expanduser()).resolve() if passphrase_text else None,
    )

    table = reader.table(document, ("store",))
    store = StoreSection(
        reader.path_value(table, ("store", "database"), "gateway.sqlite3", data_dir)
    )

    upstream = _read_upstream(reader, reader.table(document, ("upstream",)), data_dir)

    table = reader.table(document, ("limits",))
    defaults = LimitsSection()
    max_handshakes = reader.integer(
        table, ("limits", "max_handshakes"), defaults.max_handshakes, 1, 1_000_000
    )
    limits = LimitsSection(
        max_sessions=reader.integer(
            table, ("limits", "max_sessions"), defaults.max_sessions, 1, MAX_SESSIONS_LIMIT
        ),
        max_handshakes=max_handshakes,
        max_handshakes_per_host=reader.integer(
            table,
            ("limits", "max_handshakes_per_host"),
            min(defaults.max_handshakes_per_host, max_handshakes),
            1,
            max_handshakes,
        ),
        handshake_timeout=reader.number(
            table, ("limits", "handshake_timeout"), defaults.handshake_timeout, 1.0, 3600.0
        ),
        idle_timeout=reader.number(
            table, ("limits", "idle_timeout"), defaults.idle_timeout, 1.0, 30 * 86400.0
        ),
        queue_length=reader.integer(
            table, ("limits", "queue_length"), defaults.queue_length, 1, 1_000_000
        ),
        link_lost_grace=reader.number(
            table, ("limits", "link_lost_grace"), defaults.link_lost_grace, 0.0, 7 * 86400.0
        ),
        max_directed=reader.integer(
            table, ("limits", "max_directed"), defaults.max_directed, 0, 100_000
        ),
    )
    metrics = _read_metrics(reader, reader.table(document, ("metrics",)), data_dir)
    return Configuration(source, gateway, listen, edhoc, signing, store, upstream, limits, metrics)


def _read_metrics(reader: _Reader, table: dict[str, object], data_dir: Path) -> MetricsSection:
    """``[metrics]``: the endpoint's address (port 0: any free port), its exposure, its token."""
    defaults = MetricsSection()
    enabled = reader.boolean(table, ("metrics", "enabled"), defaults.enabled)
    allow_public = reader.boolean(table, ("metrics", "allow_public"), defaults.allow_public)
    path = ("metrics", "listen")
    text = reader.string(table, path, str(defaults.listen))
    listen = defaults.listen
    any_port = text.endswith(":0")  # port 0: any free port (tests, gateways sharing a host)
    split = split_host_port(text[:-1] + "1" if any_port else text)
    if isinstance(split, str):
        reader.problem(path, f"{text!r}: {split}", 'write listen = "127.0.0.1:9464"')
    else:
        host = split[0]
        port = 0 if any_port else split[1]
        try:
            host = host if host.lower() == "localhost" else str(ipaddress.ip_address(host))
        except ValueError:
            reader.problem(
                path,
                f"{text!r}: {host!r} is not an IP address",
                'listen on an IP address or localhost, e.g. listen = "127.0.0.1:9464"',
            )
        else:
            if not allow_public and not is_loopback_host(host):
                reader.problem(
                    path,
                    f"{text!r} listens beyond loopback, and metrics.allow_public is false",
                    "set allow_public = true in [metrics] (and a status_token_file) to expose "
                    f'the metrics to that network, or write listen = "127.0.0.1:{port}"',
                )
            else:
                listen = ListenAddress(host, port)
    token_text = reader.string(table, ("metrics", "status_token_file"), "")
    token_file = (data_dir / Path(token_text).expanduser()).resolve() if token_text else None
    if enabled and token_file is None and not is_loopback_host(listen.host):
        reader.problem(
            ("metrics", "status_token_file"),
            f"the status page would be served on {listen} beyond loopback without a token",
            "make a token file (docs/operations.md, Status page) and name it here, or listen "
            "on 127.0.0.1",
        )
    return MetricsSection(enabled, listen, allow_public, token_file)


def _read_listen(reader: _Reader, table: dict[str, object]) -> ListenSection:
    defaults = ListenSection()
    allow_public = reader.boolean(table, ("listen", "allow_public"), defaults.allow_public)
    lists: dict[str, tuple[ListenAddress, ...]] = {}
    for kind, default in (("udp", defaults.udp), ("tcp", defaults.tcp)):
        path = ("listen", kind)
        raw = table.get(kind, [str(address) for address in default])
        if not isinstance(raw, list):
            reader.problem(
                path,
                f"must be an array of strings, not {_kind(raw)}",
                f'write {kind} = ["127.0.0.1:5690"] (brackets, even for one address)',
            )
            lists[kind] = default
            continue
        addresses: list[ListenAddress] = []
        for item in raw:
            address = _listen_address(reader, path, item, allow_public)
            if address is None:
                continue
            if address in addresses:
                reader.problem(path, f"{address} is listed twice", "remove one of them")
                continue
            addresses.append(address)
        lists[kind] = tuple(addresses)
    return ListenSection(lists["udp"], lists["tcp"], allow_public)


def _listen_address(
    reader: _Reader, path: tuple[str, ...], item: object, allow_public: bool
) -> ListenAddress | None:
    if not isinstance(item, str):
        reader.problem(path, f"holds {_kind(item)}", 'write each listener as a string "HOST:PORT"')
        return None
    split = split_host_port(item)
    if isinstance(split, str):
        reader.problem(path, f"{item!r}: {split}", 'write "HOST:PORT", e.g. "127.0.0.1:5690"')
        return None
    host, port = split
    if host.lower() != "localhost":
        try:
            host = str(ipaddress.ip_address(host))
        except ValueError:
            reader.problem(
                path,
                f"{item!r}: {host!r} is not an IP address",
                "listen on an IP address (127.0.0.1, ::1, 0.0.0.0, a local interface's) or "
                "localhost",
            )
            return None
    if not allow_public and not is_loopback_host(host):
        reader.problem(
            path,
            f"{item!r} listens beyond loopback, and listen.allow_public is false",
            "set allow_public = true in [listen] to expose the gateway to that network, or "
            f"listen on 127.0.0.1:{port}",
        )
        return None
    return ListenAddress(host, port)


def _read_upstream(reader: _Reader, table: dict[str, object], data_dir: Path) -> UpstreamSection:
    trust = _trust(reader, table, ("upstream", "trust"), Trust(), data_dir)
    max_stanza_size = reader.integer(
        table,
        ("upstream", "max_stanza_size"),
        UpstreamSection().max_stanza_size,
        MIN_STANZA_SIZE,
        MAX_STANZA_SIZE,
    )
    domains_table = reader.table(table, ("upstream", "domains"))
    domains: list[UpstreamDomain] = []
    for name, raw in domains_table.items():
        path = ("upstream", "domains", name)
        if not isinstance(raw, dict):
            reader.problem(
                path,
                f"must be a table, not {_kind(raw)}",
                f"write it as a [{dotted(path)}] table",
            )
            continue
        if not is_hostname(name):
            reader.problem(
                path,
                f"{name!r} is not a domain name",
                'name the account domain, as in alice@example.org -> "example.org"',
            )
            continue
        reader.unknown_keys(raw, path, DOMAIN_KEYS)
        domains.append(_domain(reader, raw, path, name.lower(), trust, max_stanza_size, data_dir))
    return UpstreamSection(trust, max_stanza_size, tuple(domains))


def _domain(
    reader: _Reader,
    table: dict[str, object],
    path: tuple[str, ...],
    name: str,
    trust: Trust,
    max_stanza_size: int,
    data_dir: Path,
) -> UpstreamDomain:
    host: str | None = None
    port: int | None = None
    if "server" in table:
        text = reader.string(table, (*path, "server"), "")
        split = split_host_port(text) if text else "it is empty"
        if isinstance(split, str):
            reader.problem(
                (*path, "server"),
                f"{text!r}: {split}",
                f'write server = "xmpp.{name}:5222", or remove it to use SRV records',
            )
        elif not is_hostname(split[0]) and not _is_ip(split[0]):
            reader.problem(
                (*path, "server"),
                f"{split[0]!r} is neither a host name nor an IP address",
                f'write server = "xmpp.{name}:5222"',
            )
        else:
            host, port = split
    allow_plaintext = reader.boolean(table, (*path, "allow_plaintext"), False)
    if allow_plaintext and (host is None or not is_loopback_host(host)):
        reader.problem(
            (*path, "allow_plaintext"),
            "plaintext is allowed only to a server on loopback, and server is "
            + ("not set" if host is None else f"{host!r}"),
            'set allow_plaintext = false (TLS), or server = "127.0.0.1:PORT" for a local server',
        )
        allow_plaintext = False
    return UpstreamDomain(
        domain=name,
        server_host=host,
        server_port=port,
        trust=_trust(reader, table, (*path, "trust"), trust, data_dir),
        allow_plaintext=allow_plaintext,
        max_stanza_size=reader.integer(
            table, (*path, "max_stanza_size"), max_stanza_size, MIN_STANZA_SIZE, MAX_STANZA_SIZE
        ),
    )


def _trust(
    reader: _Reader, table: dict[str, object], path: tuple[str, ...], default: Trust, base: Path
) -> Trust:
    if path[-1] not in table:
        return default
    text = reader.string(table, path, "system")
    if text == "system":
        return Trust()
    if not text:
        reader.problem(path, "is empty", 'write trust = "system" or the path of a PEM bundle')
        return default
    return Trust((base / Path(text).expanduser()).resolve())


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
