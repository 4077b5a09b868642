"""Each class of configuration mistake yields a problem that names the key, its line and a fix;
all problems are reported together."""

from __future__ import annotations

import os
import socket
import tomllib
from pathlib import Path

import pytest

from gateway.config import ConfigError, Problem, load_configuration, render_configuration
from gateway.config.lines import KeyLines, split_dotted
from tests.config.conftest import edit

CONFIG = "gateway.toml"
LISTEN_PRIVATE = "allow_public = false\n\n[edhoc]"  # [listen]'s, not [metrics]'s


def _problems(directory: Path, **options: bool) -> list[Problem]:
    with pytest.raises(ConfigError) as raised:
        load_configuration(directory / CONFIG, **options)
    return list(raised.value.problems)


def _only(problems: list[Problem], key: str) -> Problem:
    found = [p for p in problems if p.key == key]
    assert len(found) == 1, problems
    return found[0]


def _line_of(directory: Path, text: str) -> int:
    lines = (directory / CONFIG).read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def test_unknown_key_suggests_the_nearest(gateway_dir: Path) -> None:
    edit(gateway_dir / CONFIG, "max_sessions =", "max_sesions =")
    problem = _only(_problems(gateway_dir), "limits.max_sesions")
    assert "unknown key in [limits]" in problem.message
    assert "did you mean 'max_sessions'?" in problem.fix
    assert problem.line == _line_of(gateway_dir, "max_sesions =")


def test_unknown_section_suggests_the_nearest(gateway_dir: Path) -> None:
    with (gateway_dir / CONFIG).open("a") as handle:
        handle.write('\n[singing]\nca_dir = "ca"\n')
    problem = _only(_problems(gateway_dir), "singing")
    assert "did you mean 'signing'?" in problem.fix
    assert problem.line == _line_of(gateway_dir, "[singing]")


def test_unknown_metrics_key_suggests_the_nearest(gateway_dir: Path) -> None:
    edit(gateway_dir / CONFIG, "enabled = true", "enabled = true\nport = 9100")
    problem = _only(_problems(gateway_dir), "metrics.port")
    assert "unknown key in [metrics]" in problem.message
    assert "known keys: enabled, listen, allow_public, status_token_file" in problem.fix


def test_wrong_types_name_the_key_and_the_expected_form(gateway_dir: Path) -> None:
    config = gateway_dir / CONFIG
    edit(config, "max_handshakes = 4096", 'max_handshakes = "4096"')
    edit(config, LISTEN_PRIVATE, LISTEN_PRIVATE.replace("false", '"no"'))
    edit(config, "idle_timeout = 21600.0", "idle_timeout = true")
    problems = _problems(gateway_dir)
    assert "must be an integer, not a string" in _only(problems, "limits.max_handshakes").message
    assert "without quotes" in _only(problems, "limits.max_handshakes").fix
    assert "must be true or false" in _only(problems, "listen.allow_public").message
    assert "(no quotes)" in _only(problems, "listen.allow_public").fix
    assert "must be a number, not a boolean" in _only(problems, "limits.idle_timeout").message


def test_out_of_range_values_say_the_range(gateway_dir: Path) -> None:
    config = gateway_dir / CONFIG
    edit(config, "max_sessions = 60000", "max_sessions = 70000")
    edit(config, "max_stanza_size = 262144", "max_stanza_size = 100")
    problems = _problems(gateway_dir)
    assert "choose a value from 1 to 65535" in _only(problems, "limits.max_sessions").fix
    assert "from 10000 to" in _only(problems, "upstream.max_stanza_size").fix


@pytest.mark.parametrize(
    ("listener", "reason"),
    [
        ("127.0.0.1:0", "outside 1-65535"),
        ("127.0.0.1:65536", "outside 1-65535"),
        ("127.0.0.1:http", "is not a number"),
        ("127.0.0.1", "no port"),
        ("::1:5690", "must be in brackets"),
        ("example.org:5690", "is not an IP address"),
    ],
)
def test_bad_listener_addresses(gateway_dir: Path, listener: str, reason: str) -> None:
    config = gateway_dir / CONFIG
    text = config.read_text()
    start = text.index("udp = [")
    end = text.index("\n", start)
    config.write_text(text[:start] + f'udp = ["{listener}"]' + text[end:])
    problem = _only(_problems(gateway_dir, check_ports=False), "listen.udp")
    assert reason in problem.message
    assert problem.fix


@pytest.mark.parametrize("host", ["0.0.0.0", "[::]", "192.0.2.7"])  # the point
def test_public_listener_needs_allow_public(gateway_dir: Path, host: str) -> None:
    config = gateway_dir / CONFIG
    text = config.read_text()
    start = text.index("tcp = [")
    end = text.index("\n", start)
    config.write_text(text[:start] + f'tcp = ["{host}:5690"]' + text[end:])
    problem = _only(_problems(gateway_dir, check_ports=False), "listen.tcp")
    assert "beyond loopback" in problem.message
    assert "allow_public = true" in problem.fix
    edit(config, LISTEN_PRIVATE, LISTEN_PRIVATE.replace("false", "true"))
    load_configuration(config, check_ports=False)


def test_port_in_use_is_reported_with_its_key(gateway_dir: Path) -> None:
    config = gateway_dir / CONFIG
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        text = config.read_text()
        start = text.index("tcp = [")
        end = text.index("\n", start)
        config.write_text(text[:start] + f'tcp = ["127.0.0.1:{port}"]' + text[end:])
        problem = _only(_problems(gateway_dir), "listen.tcp")
    assert f"cannot listen on TCP 127.0.0.1:{port}" in problem.message
    assert "in use" in problem.message.lower()
    assert "choose another port" in problem.fix
    assert problem.line == _line_of(gateway_dir, "tcp = [")
    load_configuration(config)  # the holder is closed: the port is free again


def test_udp_port_in_use_is_reported(gateway_dir: Path) -> None:
    config = gateway_dir / CONFIG
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        text = config.read_text()
        start = text.index("udp = [")
        end = text.index("\n", start)
        config.write_text(text[:start] + f'udp = ["127.0.0.1:{port}"]' + text[end:])
        problem = _only(_problems(gateway_dir), "listen.udp")
    assert f"cannot listen on UDP 127.0.0.1:{port}" in problem.message


def test_missing_file_says_how_to_make_it(gateway_dir: Path) -> None:
    (gateway_dir / "edhoc-credential.ccs").unlink()
    problem = _only(_problems(gateway_dir), "edhoc.credential_file")
    assert "does not exist" in problem.message
    assert "impp-gateway init" in problem.fix


def test_loose_secret_mode_says_the_chmod(gateway_dir: Path) -> None:
    key = gateway_dir / "edhoc-key.pem"
    os.chmod(key, 0o644)
    problem = _only(_problems(gateway_dir), "edhoc.key_file")
    assert "has mode 644" in problem.message
    assert problem.fix == f"chmod 600 {key.resolve()}"


def test_loose_ca_files_and_directories(gateway_dir: Path) -> None:
    os.chmod(gateway_dir / "ca" / "ca-key.pem", 0o640)
    os.chmod(gateway_dir / "ca", 0o755)
    problems = _problems(gateway_dir)
    fixes = [p.fix for p in problems if p.key == "signing.ca_dir"]
    ca_dir = (gateway_dir / "ca").resolve()
    assert f"chmod 700 {ca_dir}" in fixes
    assert f"chmod 600 {ca_dir / 'ca-key.pem'}" in fixes


def test_mismatched_identity_files(gateway_dir: Path, tmp_path: Path) -> None:
    from gateway.config import new_gateway_identity, write_gateway_identity

    other = new_gateway_identity(subject="another gateway")
    write_gateway_identity(other, tmp_path / "other-key.pem", tmp_path / "other.ccs")
    (gateway_dir / "edhoc-key.pem").write_bytes((tmp_path / "other-key.pem").read_bytes())
    problem = _only(_problems(gateway_dir), "edhoc.key_file")
    assert "does not match" in problem.message


def test_wrong_passphrase_file(gateway_dir: Path) -> None:
    secret = gateway_dir / "passphrase"
    secret.write_bytes(b"not the CA's passphrase\n")
    os.chmod(secret, 0o600)
    edit(gateway_dir / CONFIG, 'passphrase_file = ""', 'passphrase_file = "passphrase"')
    problem = _only(_problems(gateway_dir), "signing.passphrase_file")
    assert "cannot be opened" in problem.message


def test_unusable_trust_file(gateway_dir: Path) -> None:
    (gateway_dir / "trust.pem").write_text("not a certificate\n")
    edit(gateway_dir / CONFIG, '\ntrust = "system"', '\ntrust = "trust.pem"')
    problem = _only(_problems(gateway_dir), "upstream.trust")
    assert "no usable CA certificate" in problem.message


def test_plaintext_only_to_loopback(gateway_dir: Path) -> None:
    with (gateway_dir / CONFIG).open("a") as handle:
        handle.write(
            '\n[upstream.domains."other.test"]\nserver = "xmpp.other.test:5222"\n'
            "allow_plaintext = true\n"
        )
    problem = _only(_problems(gateway_dir), 'upstream.domains."other.test".allow_plaintext')
    assert "only to a server on loopback" in problem.message
    assert problem.line == _line_of(gateway_dir, "allow_plaintext = true")
    edit(gateway_dir / CONFIG, 'server = "xmpp.other.test:5222"', 'server = "127.0.0.1:5222"')
    configuration = load_configuration(gateway_dir / CONFIG)
    domain = next(d for d in configuration.upstream.domains if d.domain == "other.test")
    assert (domain.server_host, domain.server_port, domain.allow_plaintext) == (
        "127.0.0.1",
        5222,
        True,
    )


def test_every_problem_is_reported_at_once_in_file_order(gateway_dir: Path) -> None:
    config = gateway_dir / CONFIG
    edit(config, 'log_level = "info"', 'log_level = "loud"')
    edit(config, "queue_length = 1000", "queue_length = -1")
    os.chmod(gateway_dir / "edhoc-key.pem", 0o604)
    problems = _problems(gateway_dir)
    assert [p.key for p in problems] == [
        "gateway.log_level",
        "edhoc.key_file",
        "limits.queue_length",
    ]
    assert all(p.line is not None for p in problems)
    assert [p.line for p in problems] == sorted(p.line or 0 for p in problems)


def test_toml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    config = tmp_path / CONFIG
    config.write_text('[gateway]\nlog_level = "info\n')
    (problem,) = _problems(tmp_path)
    assert "not valid TOML" in problem.message
    assert "line 2" in problem.message
    assert "syntax" in problem.fix


def test_missing_configuration_file(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path)
    assert "does not exist" in problem.message
    assert "impp-gateway init" in problem.fix


def test_problem_format_names_file_line_key_and_fix() -> None:
    problem = Problem("listen.udp", "bad", "do this", 17)
    assert (
        problem.format(Path("/etc/gw.toml")) == "/etc/gw.toml:17: listen.udp: bad\n  fix: do this"
    )


def test_template_is_valid_toml_with_every_key() -> None:
    from gateway.config import SECTION_KEYS

    document = tomllib.loads(render_configuration(["a.test", "b.test"]))
    for section, keys in SECTION_KEYS.items():
        assert set(document[section]) == set(keys), section
    assert set(document["upstream"]["domains"]) == {"a.test", "b.test"}


def test_key_lines_locate_quoted_tables_and_keys() -> None:
    text = '[a]\nx = 1\n\n[a.b."c.d"]\n"y" = 2\n# z = 3\n'
    lines = KeyLines(text)
    assert lines.line(("a", "x")) == 2
    assert lines.line(("a", "b", "c.d")) == 4
    assert lines.line(("a", "b", "c.d", "y")) == 5
    assert lines.line(("a", "b", "c.d", "z")) == 4  # commented out: its table's line
    assert lines.line(("nowhere",)) is None
    assert split_dotted('upstream.domains."example.org"') == ("upstream", "domains", "example.org")


def test_ipv6_loopback_and_localhost_listeners_are_accepted(gateway_dir: Path) -> None:
    config = gateway_dir / CONFIG
    text = config.read_text()
    start = text.index("udp = [")
    end = text.index("\n", start)
    config.write_text(text[:start] + 'udp = ["[::1]:5690", "localhost:5691"]' + text[end:])
    configuration = load_configuration(config, check_ports=False)
    assert [str(a) for a in configuration.listen.udp] == ["[::1]:5690", "localhost:5691"]


def test_unreadable_configuration_says_why(tmp_path: Path) -> None:
    (tmp_path / CONFIG).mkdir()
    (problem,) = _problems(tmp_path)
    assert "cannot read the file: Is a directory" in problem.message


def test_configuration_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / CONFIG).write_bytes(b'[gateway]\nlog_level = "\xff"\n')
    (problem,) = _problems(tmp_path)
    assert "not UTF-8" in problem.message


def test_the_relay_keys_are_read_and_checked(gateway_dir: Path) -> None:
    config = gateway_dir / CONFIG
    defaults = load_configuration(config, check_ports=False).limits
    assert (defaults.link_lost_grace, defaults.max_directed) == (300.0, 64)
    edit(config, "link_lost_grace = 300.0", "link_lost_grace = 30")
    edit(config, "max_directed = 64", "max_directed = 8")
    limits = load_configuration(config, check_ports=False).limits
    assert (limits.link_lost_grace, limits.max_directed) == (30.0, 8)
    edit(config, "link_lost_grace = 30", 'link_lost_grace = "5 min"')
    edit(config, "max_directed = 8", "max_directed = -1")
    problems = _problems(gateway_dir, check_ports=False)
    grace = _only(problems, "limits.link_lost_grace")
    assert "must be a number, not a string" in grace.message
    assert "seconds from 0 to 604800" in grace.fix
    assert grace.line == _line_of(gateway_dir, "link_lost_grace =")
    directed = _only(problems, "limits.max_directed")
    assert "-1 is out of range" in directed.message
    assert "choose a value from 0 to 100000" in directed.fix
