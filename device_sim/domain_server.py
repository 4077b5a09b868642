"""A private Prosody for the demo, tests and benchmarks: its own config, certificates, data, ports.

The server is Debian's ``prosody`` package (0.12), started in the foreground from a configuration
written into a temporary directory, listening only on loopback ports chosen free at start-up. It
serves two virtual hosts:

* ``impp.test`` with SCRAM-SHA-256 (``password_hash = "SHA-256"``), the default for tests;
* ``sha1.impp.test`` with SCRAM-SHA-1, so both SCRAM variants meet a real server;

plus a component domain (XEP-0114) for the aggregating mode. TLS uses a P-256 certificate
issued by a throw-away test CA that this module makes; clients trust ``ca_file``. Neither host
name resolves in DNS: clients connect to ``host``/``c2s_port`` through a static override, as the
gateway's configuration allows.

Readiness is read from Prosody's own log on its standard output ("Activated service ..."), so
start-up never polls or sleeps. The process runs in its own process group with a parent-death
signal, and :meth:`ProsodyServer.stop` kills the whole group, so no process is left behind even
when a test fails or the test run itself is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import ipaddress
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import threading  # the log pump; Prosody itself is a separate process
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.signing.ca import self_signed_ca_certificate

PROSODY_BINARY = "prosody"
PROSODYCTL_BINARY = "prosodyctl"
DEFAULT_DOMAIN = "impp.test"
SHA1_DOMAIN = "sha1.impp.test"
COMPONENT_DOMAIN = "devices.impp.test"
START_TIMEOUT = 30.0  # seconds for Prosody to load its modules and open every port
STOP_TIMEOUT = 10.0  # seconds between SIGTERM and SIGKILL
MODULES = (
    "roster",
    "saslauth",
    "tls",
    "dialback",
    "disco",
    "ping",
    "smacks",
    "csi_simple",
    "carbons",
    "mam",
    "offline",
    "pep",
    "register",
    "blocklist",
    "private",
    "vcard_legacy",
    "version",
    "uptime",
    "time",
)
_PR_SET_PDEATHSIG = 1


class ProsodyError(RuntimeError):
    """Prosody is missing, failed to start, or a prosodyctl command failed."""


@dataclass(frozen=True)
class Account:
    """A registered user of the private Prosody."""

    jid: str
    localpart: str
    domain: str
    password: str


def prosody_available() -> bool:
    """True when Debian's prosody (and prosodyctl) are on PATH."""
    return shutil.which(PROSODY_BINARY) is not None and shutil.which(PROSODYCTL_BINARY) is not None


def _free_loopback_ports(count: int) -> list[int]:
    """Ports the kernel reports free on 127.0.0.1 now (bound together so they differ)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the start (never chmod after writing secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def make_test_pki(directory: Path, names: list[str]) -> tuple[Path, Path, Path]:
    """Make a test CA and a server certificate for ``names``; return (ca, cert, key) paths."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = self_signed_ca_certificate(
        ca_key, "impp-gateway test CA", now=now.timestamp(), validity=datetime.timedelta(days=2)
    )
    ca_name = ca_cert.subject
    server_key = ec.generate_private_key(ec.SECP256R1())
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alt_names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH, x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    cert_path = directory / "server.crt"
    key_path = directory / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        key_path,
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return ca_path, cert_path, key_path


def _lua_string(value: str) -> str:
    """A Lua string literal for ``value`` (paths and names we generate; quotes escaped)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _set_parent_death_signal() -> None:  # pragma: no cover - runs in the child before exec
    """Ask Linux to SIGKILL Prosody when the test process dies, however it dies."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class _ProcessStarter:
    """One long-lived thread that forks every Prosody, so its parent-death signal means what it
    says.

    Linux delivers ``PR_SET_PDEATHSIG`` when the *thread* that forked the child exits, not the
    process (prctl(2)).  A Prosody started from a short-lived thread (``trio.to_thread``'s workers
    exit after 10 s idle) would be killed while the test goes on.  Forking from this daemon thread,
    which lives as long as the interpreter, ties Prosody's life to the test process's.
    """

    def __init__(self) -> None:
        self._requests: queue.Queue[tuple[Callable[[], subprocess.Popen[bytes]], Future[Any]]] = (
            queue.Queue()
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def popen(self, spawn: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        """Run ``spawn`` (a ``subprocess.Popen`` call) on the starter thread; return its result."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._serve, name="prosody-starter", daemon=True
                )
                self._thread.start()
        done: Future[subprocess.Popen[bytes]] = Future()
        self._requests.put((spawn, done))
        return done.result()

    @property
    def native_id(self) -> int | None:
        """The kernel id of the starter thread (for tests), or None before the first start."""
        return None if self._thread is None else self._thread.native_id

    def _serve(self) -> None:
        while True:
            spawn, done = self._requests.get()
            try:
                done.set_result(spawn())
            except BaseException as exc:  # handed to the caller, which re-raises it
                done.set_exception(exc)


_STARTER = _ProcessStarter()


class ProsodyServer:
    """One private Prosody instance: config, PKI, data and ports live under ``directory``.

    ``start``/``stop``/``restart`` keep the same ports, accounts and data, so a restart looks to
    clients like the domain server going away and coming back.
    """

    def __init__(self, directory: Path, *, domain: str = DEFAULT_DOMAIN) -> None:
        if not prosody_available():
            raise ProsodyError(
                "prosody is not installed: run './run test' (it installs Debian's prosody), "
                "or 'apt-get install prosody' as root"
            )
        self.directory = directory
        self.domain = domain
        self.sha1_domain = SHA1_DOMAIN
        self.component_domain = COMPONENT_DOMAIN
        self.component_secret = secrets.token_urlsafe(18)
        self.host = "127.0.0.1"
        self.c2s_port, self.s2s_port, self.component_port = _free_loopback_ports(3)
        self.data_dir = directory / "data"
        self.data_dir.mkdir(mode=0o700)
        self.log_path = directory / "prosody.log"
        names = [domain, self.sha1_domain, self.component_domain]
        self.ca_file, self.cert_file, self.key_file = make_test_pki(directory, names)
        self.config_path = directory / "prosody.cfg.lua"
        self.config_path.write_text(self._config(), "utf-8")
        self._process: subprocess.Popen[bytes] | None = None
        self._log_lines: queue.Queue[str | None] = queue.Queue()
        self._log_thread: threading.Thread | None = None
        self._user_counter = 0
        self._user_lock = threading.Lock()

    # -- configuration ---------------------------------------------------------------------

    def _config(self) -> str:
        modules = ", ".join(_lua_string(m) for m in MODULES)
        ssl = (
            f"{{ key = {_lua_string(str(self.key_file))}, "
            f"certificate = {_lua_string(str(self.cert_file))} }}"
        )
        return f"""-- Written by tests/support/prosody.py for one test run; not for production.
run_as_root = true
daemonize = false
pidfile = {_lua_string(str(self.directory / "prosody.pid"))}
data_path = {_lua_string(str(self.data_dir))}
plugin_paths = {{}}
certificates = {_lua_string(str(self.directory))}
log = {{
    {{ levels = {{ min = "info" }}, to = "console" }};
    {{ levels = {{ min = "debug" }}, to = "file", filename = {_lua_string(str(self.log_path))} }};
}}
interfaces = {{ "127.0.0.1" }}
local_interfaces = {{ "127.0.0.1" }}
c2s_ports = {{ {self.c2s_port} }}
s2s_ports = {{ {self.s2s_port} }}
component_ports = {{ {self.component_port} }}
component_interfaces = {{ "127.0.0.1" }}
modules_enabled = {{ {modules} }}
modules_disabled = {{ "http", "bosh", "websocket", "limits", "register_limits" }}
allow_registration = false
c2s_require_encryption = true
s2s_require_encryption = true
s2s_secure_auth = false
authentication = "internal_hashed"
password_hash = "SHA-256"
storage = "internal"
archive_expires_after = "1d"
default_archive_policy = true
smacks_hibernation_time = 600
smacks_max_unacked_stanzas = 0
ssl = {ssl}

VirtualHost {_lua_string(self.domain)}
    ssl = {ssl}

VirtualHost {_lua_string(self.sha1_domain)}
    password_hash = "SHA-1"
    ssl = {ssl}

Component {_lua_string(self.component_domain)}
    component_secret = {_lua_string(self.component_secret)}
"""

    # -- process lifetime --------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The running server's process id, or None when it is stopped."""
        if self._process is None or self._process.poll() is not None:
            return None
        return self._process.pid

    def start(self) -> None:
        """Start Prosody and return once c2s, s2s and component ports all listen."""
        if self.pid is not None:
            raise ProsodyError("prosody is already running")
        self._log_lines = queue.Queue()
        argv = [PROSODY_BINARY, "--config", str(self.config_path), "-F"]
        self._process = _STARTER.popen(
            lambda: subprocess.Popen(  # noqa: S603 - fixed argv, our own config
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,
                preexec_fn=_set_parent_death_signal,
            )
        )
        self._log_thread = threading.Thread(
            target=self._pump_log, args=(self._process,), name="prosody-log", daemon=True
        )
        self._log_thread.start()
        self._await_ready()

    def _pump_log(self, process: subprocess.Popen[bytes]) -> None:
        """Copy Prosody's console log into a queue (readiness) and keep the pipe drained."""
        assert process.stdout is not None
        with (self.directory / "console.log").open("ab") as console:
            for raw in process.stdout:
                console.write(raw)
                console.flush()
                self._log_lines.put(raw.decode("utf-8", "replace"))
        self._log_lines.put(None)

    def _await_ready(self) -> None:
        pending = {
            f"'c2s' on [127.0.0.1]:{self.c2s_port}",
            f"'s2s' on [127.0.0.1]:{self.s2s_port}",
            f"'component' on [127.0.0.1]:{self.component_port}",
        }
        seen: list[str] = []
        deadline = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=START_TIMEOUT)
        while pending:
            remaining = (deadline - datetime.datetime.now(datetime.UTC)).total_seconds()
            try:
                line = self._log_lines.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                line = None
                reason = f"not ready after {START_TIMEOUT:.0f} s"
            else:
                reason = "exited during start-up"
            if line is None:
                tail = "".join(seen[-20:])
                self.stop()
                raise ProsodyError(f"prosody {reason}; its last log lines:\n{tail}")
            seen.append(line)
            pending = {p for p in pending if not ("Activated service" in line and p in line)}

    def stop(self) -> None:
        """Stop Prosody (SIGTERM, then SIGKILL of its whole process group) and reap it."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # anything it forked
        if self._log_thread is not None:
            self._log_thread.join(timeout=STOP_TIMEOUT)
        if process.stdout is not None:
            process.stdout.close()
        self._process = None

    def restart(self) -> None:
        """Stop and start again on the same ports with the same accounts and data."""
        self.stop()
        self.start()

    # -- accounts ----------------------------------------------------------------------------

    def create_user(
        self,
        localpart: str | None = None,
        password: str | None = None,
        *,
        domain: str | None = None,
    ) -> Account:
        """Register an account (with prosodyctl, straight into the server's store)."""
        domain = domain or self.domain
        if localpart is None:
            with self._user_lock:
                self._user_counter += 1
                localpart = f"user{self._user_counter}-{secrets.token_hex(3)}"
        password = password or secrets.token_urlsafe(12)
        result = subprocess.run(  # noqa: S603 - fixed argv, our own config
            [
                PROSODYCTL_BINARY,
                "--config",
                str(self.config_path),
                "register",
                localpart,
                domain,
                password,
            ],
            capture_output=True,
            check=False,
            timeout=60,
            cwd=self.directory,
        )
        if result.returncode != 0:
            # The password is never echoed back: prosodyctl's message is about the account.
            raise ProsodyError(
                f"prosodyctl register {localpart}@{domain} failed ({result.returncode}): "
                f"{result.stdout.decode(errors='replace')}{result.stderr.decode(errors='replace')}"
            )
        return Account(f"{localpart}@{domain}", localpart, domain, password)

    def running_processes(self) -> list[int]:
        """Pids of any process whose command line names this server's config (leak check)."""
        found = []
        marker = str(self.config_path).encode()
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                found.append(int(entry.name))
        return found


@contextlib.contextmanager
def running_prosody(directory: Path) -> Iterator[ProsodyServer]:
    """Start a private Prosody in ``directory`` for the duration of the block."""
    server = ProsodyServer(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
