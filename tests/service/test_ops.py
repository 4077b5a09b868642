"""The operations side of the running service (issue 13): metrics, readiness, admin, logs, drain.

Real components throughout: the in-process service of test_end_to_end.py against a private
Prosody, a loopback device, HTTP over loopback TCP parsed by ``prometheus_client``'s own parser,
the ``impp-gateway status`` / ``sessions`` commands over the real admin socket.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel
from prometheus_client.parser import text_string_to_metric_families

from gateway import wire
from gateway.cli import main
from gateway.config import ConfigError, Configuration, load_configuration
from gateway.observability import current_account, current_kid
from gateway.service import TICKET_RING_BLOB
from gateway.session import SessionClosed, TicketKeyRing, TicketReceived
from gateway.store import GatewayStore
from gateway.transport import DeviceDriver, run_device_over_udp
from tests.conftest import MakePerson
from tests.service.conftest import (
    WAIT,
    RunningGateway,
    connect_device,
    device_session,
    enroll,
    serving_device,
    start_gateway,
    upstream_ready,
)
from tests.support.logscan import LogScan, capture_logs
from tests.support.prosody import ProsodyServer

MAX_RESPONSE = 4 * 1024 * 1024  # far above a scrape of a few devices


async def http_get(port: int, path: str) -> tuple[int, str]:
    """GET ``path`` from 127.0.0.1:``port`` (HTTP/1.1, connection closed after); status, body."""
    with trio.fail_after(WAIT):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
            await stream.send_all(request.encode("ascii"))
            data = bytearray()
            while chunk := await stream.receive_some(65536):
                data += chunk
                assert len(data) < MAX_RESPONSE
    head, _, body = bytes(data).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"transfer-encoding: chunked" in head.lower():
        body = _unchunk(body)
    return status, body.decode("utf-8")


def _unchunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_text, _, rest = body.partition(b"\r\n")
        size = int(size_text.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


def samples(text: str, family: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of ``family`` in a Prometheus text exposition, parsed by the client."""
    found: list[tuple[dict[str, str], float]] = []
    for metric in text_string_to_metric_families(text):
        if metric.name == family:
            found.extend((dict(sample.labels), sample.value) for sample in metric.samples)
    return found


def metrics_port(gateway: RunningGateway) -> int:
    port = gateway.addresses.metrics_port
    assert port is not None
    return port


async def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run ``impp-gateway ARGV`` in a thread (its admin client blocks); status, stdout, stderr."""
    capsys.readouterr()
    with trio.fail_after(WAIT):
        status = await trio.to_thread.run_sync(main, list(argv))
    out, err = capsys.readouterr()
    return status, out, err


async def test_metrics_show_the_device_session_and_readiness_turns_draining(
    open_store: tuple[GatewayStore, Configuration],
    running_prosody: ProsodyServer,
) -> None:
    store, configuration = open_store
    enrolled = await enroll(store, configuration, running_prosody.create_user())
    gate = trio.Event()
    reached = trio.Event()
    running: list[RunningGateway] = []
    put_blob = store.put_blob

    async def gated_put_blob(name: str, value: bytes, *, now: float) -> None:
        # Holds the drain at its last step (the ticket ring), so readiness is read mid-drain.
        if running and running[0].service.draining and name == TICKET_RING_BLOB:
            reached.set()
            await gate.wait()
        await put_blob(name, value, now=now)

    store.put_blob = gated_put_blob  # type: ignore[method-assign]  # a gate on the same store
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        running.append(gateway)
        port = metrics_port(gateway)
        await upstream_ready(gateway, enrolled.kid)
        assert await http_get(port, "/readyz") == (200, "ready\n")
        assert (await http_get(port, "/healthz"))[0] == 200

        status, before = await http_get(port, "/metrics")
        assert status == 200
        established = [v for labels, v in samples(before, "impp_gateway_device_sessions")
                       if labels["state"] == "established"]  # fmt: skip
        assert established
        assert sum(established) == 0

        await connect_device(nursery, enrolled, gateway.udp_port)
        status, after = await http_get(port, "/metrics")
        assert status == 200
        established = [v for labels, v in samples(after, "impp_gateway_device_sessions")
                       if labels["state"] == "established"]  # fmt: skip
        assert sum(established) == 1
        upstream = samples(after, "impp_gateway_upstream_sessions")
        assert any(v == 1 for labels, v in upstream if labels.get("state") == "ready"), upstream
        depth = samples(after, "impp_gateway_device_queue_depth")
        assert any(labels.get("le") == "+Inf" and v == 1 for labels, v in depth), depth

        page_status, page = await http_get(port, "/status/status.json")
        assert page_status == 200
        assert json.loads(page)["sessions"]["count"] == 1

        gateway.service.request_stop()
        with trio.fail_after(WAIT):
            await reached.wait()
        assert await http_get(port, "/readyz") == (503, "draining\n")
        gate.set()
        with trio.fail_after(WAIT):
            await gateway.stopped.wait()
        nursery.cancel_scope.cancel()
    # The upstream stream's resumption state outlives the drain (the binding's checkpoint).
    assert await store.get_stream_resumption(enrolled.account.jid) is not None


async def test_status_and_sessions_through_the_admin_socket_and_close(
    open_store: tuple[GatewayStore, Configuration],
    running_prosody: ProsodyServer,
    gateway_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store, configuration = open_store
    enrolled = await enroll(store, configuration, running_prosody.create_user())
    kid = enrolled.kid.hex()
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        await upstream_ready(gateway, enrolled.kid)
        device = await connect_device(nursery, enrolled, gateway.udp_port)
        assert gateway.addresses.admin_socket == configuration.gateway.data_dir / "admin.sock"
        assert gateway.addresses.admin_socket.stat().st_mode & 0o777 == 0o600

        code, out, _ = await cli(capsys, "status", "--config", str(gateway_home))
        assert code == 0
        assert "draining:   no" in out
        assert "sessions:   established 1" in out
        assert "upstreams:  ready 1" in out

        code, out, _ = await cli(
            capsys, "sessions", "--config", str(gateway_home), "--json", "--device", kid
        )
        assert code == 0
        (row,) = json.loads(out)["sessions"]
        assert row["kid"] == kid
        assert row["account"] == enrolled.account.jid
        assert row["state"] == "established"
        assert row["upstream_state"] == "ready"
        assert row["address"].startswith("127.0.0.1:")

        code, out, _ = await cli(capsys, "sessions", "--config", str(gateway_home))
        assert code == 0
        assert kid in out
        assert enrolled.account.jid in out
        assert "1 device" in out

        code, out, _ = await cli(capsys, "sessions", "--config", str(gateway_home), "--close", kid)
        assert code == 0, out
        assert f"closed the session of device {kid}" in out
        await device.next_event(SessionClosed)
        with trio.fail_after(WAIT):
            await gateway.service.wait_for_counters(lambda c: c.get("session-closed", 0) >= 1)
        assert gateway.service.bound[enrolled.kid].links == set()
        code, out, _ = await cli(
            capsys, "sessions", "--config", str(gateway_home), "--json", "--device", kid
        )
        assert json.loads(out)["sessions"][0]["state"] == "none"
        code, _, err = await cli(capsys, "sessions", "--config", str(gateway_home), "--close", kid)
        assert code == 1
        assert "has no session" in err
        await gateway.stop()
        nursery.cancel_scope.cancel()


async def test_no_secret_in_any_log_line_of_a_chat(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    store, configuration = open_store
    account = running_prosody.create_user()
    enrolled = await enroll(store, configuration, account)
    assert enrolled.credential.private_key is not None
    out_body, in_body = "the eagle lands at dawn", "bring the blue umbrella"
    person = await make_person()
    contexts: list[tuple[str | None, str | None]] = []

    class ContextProbe(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.pathname.endswith("binding.py"):
                contexts.append((current_kid(), current_account()))

    probe = ContextProbe(logging.DEBUG)
    logging.getLogger().addHandler(probe)
    try:
        with capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                gateway = await start_gateway(nursery, store, configuration)
                await upstream_ready(gateway, enrolled.kid)
                device = await connect_device(nursery, enrolled, gateway.udp_port)
                device.send(wire.SetPresence(open=True))
                device.send(
                    wire.SendMessage(id=1, to=person.jid, content=wire.TextContent(out_body))
                )
                assert (await person.next_message(sender=account.jid)).body == out_body
                await person.send_message(account.jid, in_body)
                incoming = await device.next_operation(wire.IncomingMessage)
                assert isinstance(incoming.content, wire.TextContent)
                assert incoming.content.text == in_body
                await gateway.stop()
                nursery.cancel_scope.cancel()
    finally:
        logging.getLogger().removeHandler(probe)
    # Every line but the test's own XMPP peer's (slixmpp logs its stanzas, bodies included).
    gateway_lines = LogScan()
    for record in logs.records:
        if not record.name.startswith("slixmpp"):
            gateway_lines.emit(record)
    gateway_lines.assert_saw_something()
    assert any(r.name.startswith("gateway.") for r in gateway_lines.records)
    gateway_lines.assert_no_secrets(
        [out_body, in_body, account.password, enrolled.credential.private_key]
    )
    # The binding's lines carry the device's kid and account (bound where its task starts).
    assert contexts
    assert set(contexts) == {(enrolled.kid.hex(), account.jid)}


async def test_draining_refuses_handshakes_and_times_out(
    open_store: tuple[GatewayStore, Configuration],
    running_prosody: ProsodyServer,
) -> None:
    store, configuration = open_store
    enrolled = await enroll(store, configuration, running_prosody.create_user())
    configuration = dataclasses.replace(
        configuration,
        gateway=dataclasses.replace(configuration.gateway, drain_timeout=1.0),
    )
    running: list[RunningGateway] = []
    put_blob = store.put_blob

    async def stuck_put_blob(name: str, value: bytes, *, now: float) -> None:
        # The drain's last step never finishes: only drain_timeout can end it.
        if running and running[0].service.draining:
            await trio.sleep_forever()
        await put_blob(name, value, now=now)

    store.put_blob = stuck_put_blob  # type: ignore[method-assign]  # a stuck step, same store
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        running.append(gateway)
        await upstream_ready(gateway, enrolled.kid)
        # Draining (set as request_stop sets it, before the stop): handshakes find no credential.
        gateway.service.draining = True
        driver = DeviceDriver(device_session(enrolled))
        nursery.start_soon(run_device_over_udp, driver, ("127.0.0.1", gateway.udp_port))
        driver.connect()
        with trio.fail_after(WAIT):
            await gateway.service.wait_for_counters(
                lambda c: c.get("handshake-refused-draining", 0) >= 1
            )
        assert gateway.service.bound[enrolled.kid].links == set()
        assert (await http_get(metrics_port(gateway), "/readyz"))[0] == 503
        await gateway.stop()  # bounded by WAIT; the drain itself by drain_timeout
        assert gateway.service.counters.get("drain-timed-out") == 1
        nursery.cancel_scope.cancel()


def _write(directory: Path, metrics: str) -> Path:
    from gateway.config import render_configuration

    text = render_configuration()
    start = text.index("[metrics]")
    path = directory / "gateway.toml"
    path.write_text(text[:start] + metrics)
    return path


def _problems(path: Path) -> dict[str, Any]:
    with pytest.raises(ConfigError) as raised:
        load_configuration(path, check_files=False, check_ports=False)
    return {problem.key: problem for problem in raised.value.problems}


def test_metrics_defaults(tmp_path: Path) -> None:
    configuration = load_configuration(
        _write(tmp_path, "[metrics]\n"), check_files=False, check_ports=False
    )
    metrics = configuration.metrics
    assert (metrics.enabled, str(metrics.listen), metrics.allow_public) == (
        True,
        "127.0.0.1:9464",
        False,
    )
    assert metrics.status_token_file is None
    assert configuration.gateway.drain_timeout == 10.0


@pytest.mark.parametrize(
    ("metrics", "key", "message", "fix"),
    [
        ('listen = "0.0.0.0:9464"\n', "metrics.listen", "beyond loopback", "allow_public = true"),
        ('listen = "9464"\n', "metrics.listen", "no port", "127.0.0.1:9464"),
        ('listen = "metrics.local:9464"\n', "metrics.listen", "not an IP address", "localhost"),
        ("enabled = 1\n", "metrics.enabled", "true or false", "no quotes"),
        (
            'listen = "0.0.0.0:9464"\nallow_public = true\n',
            "metrics.status_token_file",
            "without a token",
            "token file",
        ),
        ("prot = 1\n", "metrics.prot", "unknown key", "known keys: enabled, listen"),
    ],
)
def test_metrics_mistakes_name_key_and_fix(
    tmp_path: Path, metrics: str, key: str, message: str, fix: str
) -> None:
    problems = _problems(_write(tmp_path, "[metrics]\n" + metrics))
    assert key in problems, problems
    assert message in problems[key].message
    assert fix in problems[key].fix


def test_status_token_file_mode_is_checked(tmp_path: Path) -> None:
    (tmp_path / "ca").mkdir()
    token = tmp_path / "status-token"
    token.write_text("a" * 32 + "\n")
    token.chmod(0o644)
    path = _write(tmp_path, f'[metrics]\nstatus_token_file = "{token}"\n')
    with pytest.raises(ConfigError) as raised:
        load_configuration(path, check_ports=False)
    problem = {p.key: p for p in raised.value.problems}["metrics.status_token_file"]
    assert "mode" in problem.message
    assert "chmod 600" in problem.fix


async def test_the_ticket_ring_is_committed_before_the_ticket_it_sealed_is_sent(
    open_store: tuple[GatewayStore, Configuration],
    running_prosody: ProsodyServer,
) -> None:
    """The NewTicket a device holds opens with the ring already in the store: a gateway that
    crashed right after sending it would still honour it (before, the ring was saved only
    after a resumption, so the first ticket's key was in no stored ring)."""
    store, configuration = open_store
    enrolled = await enroll(store, configuration, running_prosody.create_user())
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        device = await connect_device(nursery, enrolled, gateway.udp_port)
        tickets = [e for e in device.events if isinstance(e, TicketReceived)]
        ticket = tickets[-1] if tickets else await device.next_event(TicketReceived)
        blob = await store.get_blob(TICKET_RING_BLOB)
        assert blob is not None
        now = trio.current_time()
        stored = TicketKeyRing.from_bytes(blob, now)
        opened = stored.open_untrusted(ticket.ticket, now)
        assert opened.identity
        await gateway.stop()
        nursery.cancel_scope.cancel()


def _total(text: str, family: str, **labels: str) -> float:
    return sum(
        value
        for found, value in samples(text, family)
        if all(found.get(k) == v for k, v in labels.items())
    )


async def test_upstream_counters_do_not_go_down_when_a_session_closes(
    open_store: tuple[GatewayStore, Configuration],
    running_prosody: ProsodyServer,
) -> None:
    """A revoked device's upstream session closes; its stanzas and connections stay counted
    (before, the counters were sums over the live sessions and fell to zero)."""
    store, configuration = open_store
    enrolled = await enroll(store, configuration, running_prosody.create_user())
    async with trio.open_nursery() as nursery:
        gateway = await start_gateway(nursery, store, configuration)
        port = metrics_port(gateway)
        await upstream_ready(gateway, enrolled.kid)
        _, before = await http_get(port, "/metrics")
        sent = _total(before, "impp_gateway_upstream_stanzas", direction="sent")
        received = _total(before, "impp_gateway_upstream_stanzas", direction="received")
        connections = _total(before, "impp_gateway_upstream_connections")
        assert connections == 1
        assert sent + received > 0
        assert await store.revoke_device(enrolled.kid, now=0.0)
        await gateway.service.refresh_registry()
        assert enrolled.kid not in gateway.service.bound
        _, after = await http_get(port, "/metrics")
        assert _total(after, "impp_gateway_upstream_sessions") == 0
        assert _total(after, "impp_gateway_upstream_stanzas", direction="sent") >= sent
        assert _total(after, "impp_gateway_upstream_stanzas", direction="received") >= received
        assert _total(after, "impp_gateway_upstream_connections") == connections
        await gateway.stop()
        nursery.cancel_scope.cancel()


async def test_end_to_end_latency_reaches_the_metrics(
    open_store: tuple[GatewayStore, Configuration],
    make_person: MakePerson,
    running_prosody: ProsodyServer,
) -> None:
    """The service's one EndToEndLatency is shared by its bindings and scraped as histograms:
    a message a person sends to the device is counted once the device acknowledged it."""
    person = await make_person()
    async with serving_device(open_store, running_prosody) as scene:
        device, account, gateway = scene.device, scene.account, scene.gateway
        device.send(wire.SetPresence(open=True))
        await person.send_message(account.jid, "how long did this take")
        await device.next_operation(wire.IncomingMessage)
        binding = scene.binding
        with trio.fail_after(WAIT):
            await binding.counters.wait_for(lambda c: c.get("delivered-to-device") >= 1)
        _, text = await http_get(metrics_port(gateway), "/metrics")
        family = "impp_gateway_message_latency_person_to_device_seconds"
        counts = {labels.get("le"): v for labels, v in samples(text, family) if "le" in labels}
        assert counts["+Inf"] == 1, counts
        assert samples(text, "impp_gateway_message_latency_device_to_person_seconds")
