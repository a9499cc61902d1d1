"""Session probe accounting, run for real (agent process, TCP on 127.0.0.1) against an echo
server the tests break on purpose: RST (SO_LINGER 0), FIN, an endpoint that stops reading."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from drill.engine.records import ProbeResult, RunRecord, SessionLoss, SessionStats
from drill.probes import ProbeError, attribute, echo_server, start_probe, wire
from drill.probes.running import agent_argv
from drill.probes.session_running import RunningSessionProbe
from drill.report.report import build_report
from drill.runbook.model import Runbook, SessionProbe

TIMEOUT = 0.6  # stalled after this: short so the tests stay fast


class BreakableEcho:
    """A threaded echo server whose connections the test resets, closes or stalls.

    Each connection's thread performs the action itself (another thread closing a socket a
    recv() is blocked on would not wake it), so the break happens at a known moment."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = self.listener.getsockname()[1]
        self.conns: list[dict[str, object]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            state: dict[str, object] = {"sock": conn, "action": None, "done": threading.Event()}
            with self._lock:
                self.conns.append(state)
            threading.Thread(target=self._serve, args=(state,), daemon=True).start()

    def _serve(self, state: dict[str, object]) -> None:
        conn = state["sock"]
        assert isinstance(conn, socket.socket)
        done = state["done"]
        assert isinstance(done, threading.Event)
        conn.settimeout(0.02)
        while not self._stop.is_set():
            action = state["action"]
            if action == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()
                done.set()
                return
            if action == "close":
                conn.shutdown(socket.SHUT_RDWR)
                conn.close()
                done.set()
                return
            if action == "stall":
                done.set()
                time.sleep(0.02)  # keep the connection open, never read or answer again
                continue
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                conn.close()
                return
            conn.sendall(data)
        conn.close()

    def open_count(self) -> int:
        with self._lock:
            return len(self.conns)

    def break_(self, action: str, count: int, skip: int = 0) -> None:
        """Break ``count`` connections (after ``skip``) and wait until it is done."""
        with self._lock:
            chosen = self.conns[skip : skip + count]
        for state in chosen:
            state["action"] = action
        for state in chosen:
            done = state["done"]
            assert isinstance(done, threading.Event)
            assert done.wait(2.0)

    def close(self) -> None:
        self._stop.set()
        self._acceptor.join(2.0)
        self.listener.close()


@pytest.fixture
def echo() -> Iterator[BreakableEcho]:
    server = BreakableEcho()
    yield server
    server.close()


def spec(port: int, sessions: int = 10, **extra: object) -> SessionProbe:
    data: dict[str, object] = {
        "name": "sessions",
        "kind": "session",
        "target": "127.0.0.1",
        "port": port,
        "sessions": sessions,
        "interval": "50ms",
        "timeout": f"{TIMEOUT * 1000:.0f}ms",
        **extra,
    }
    return SessionProbe.model_validate(data)


def wait_for(predicate: object, timeout: float = 5.0) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


# --- the model and the command line -------------------------------------------------------


def test_defaults_are_fifty_sessions_every_100ms() -> None:
    probe = SessionProbe.model_validate({"name": "s", "kind": "session", "target": "192.0.2.11"})
    assert (probe.sessions, float(probe.interval), probe.port) == (50, 0.1, 7007)
    argv = agent_argv(probe)
    assert argv[-11:] == ["session", "--target", "192.0.2.11", "--port", "7007",
                          "--sessions", "50", "--interval", "0.1", "--timeout", "3.0"]  # fmt: skip


@pytest.mark.parametrize(
    "bad",
    [
        {"sessions": 0},
        {"sessions": 5000},
        {"interval": "0ms"},
        {"port": 0},
        {"rate": 10},
        {"max_lost_sessions": -1},
    ],
)
def test_bad_session_probe_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SessionProbe.model_validate({"name": "s", "kind": "session", "target": "x", **bad})


def test_runbook_accepts_a_session_probe() -> None:
    runbook = Runbook.model_validate(
        {
            "apiVersion": "drill/v1",
            "name": "x",
            "probes": [
                {
                    "name": "s",
                    "kind": "session",
                    "target": "192.0.2.11",
                    "from": "netns:two-dc-client",
                    "max_lost_sessions": 0,
                }
            ],
        }
    )
    assert isinstance(runbook.probes[0], SessionProbe)
    assert runbook.probes[0].from_ == "netns:two-dc-client"


def test_session_result_round_trips_on_the_wire() -> None:
    loss = SessionLoss(3, at=10.5, detected=11.0, reason="stalled")
    result = wire.SessionResult(5, 5, 100, 99, 0.1, 1.0, 11.0, 12.5, [loss], {"timeout": 1})
    assert wire.decode(wire.encode(result)) == result


# --- accounting against a server broken on purpose ---------------------------------------


def test_all_sessions_survive_a_healthy_endpoint(echo: BreakableEcho) -> None:
    with start_probe(spec(echo.port, sessions=20)) as probe:
        assert isinstance(probe, RunningSessionProbe)
        time.sleep(1.0)
    result = probe.stop()
    assert result.kind == "session"
    assert result.sessions is not None
    assert (result.sessions.opened, result.sessions.survived, result.sessions.lost) == (20, 20, 0)
    assert echo.open_count() == 20
    # 20 sessions x 20 messages/s for about a second, every one answered
    assert 300 <= result.sent <= 500
    assert result.lost == 0
    assert probe.check_limits() is None


def test_reset_closed_and_stalled_sessions_are_counted_and_attributed(
    echo: BreakableEcho,
) -> None:
    probe = start_probe(spec(echo.port, sessions=12))
    try:
        wait_for(lambda: echo.open_count() == 12)
        time.sleep(0.3)
        t0 = time.time()
        echo.break_("reset", 3)  # RST: SO_LINGER 0 then close
        echo.break_("close", 1, skip=3)  # FIN
        time.sleep(0.3)
        t1 = time.time()
        echo.break_("stall", 2, skip=4)  # the endpoint stops reading and answering
        time.sleep(TIMEOUT + 0.5)
        t2 = time.time()
    finally:
        result = probe.stop()
    stats = result.sessions
    assert stats is not None
    assert (stats.opened, stats.lost, stats.survived) == (12, 6, 6)
    reasons = sorted(loss.reason for loss in stats.losses)
    assert reasons == ["closed", "reset", "reset", "reset", "stalled", "stalled"]
    # when: a loss is dated by the message that got no answer, in the phase that broke it
    for loss in stats.losses:
        window = (t0, t1) if loss.reason in ("reset", "closed") else (t1, t2)
        assert window[0] - 0.06 <= loss.at <= window[1], loss
        assert loss.detected >= loss.at
    stalled = [x for x in stats.losses if x.reason == "stalled"]
    assert all(x.detected - x.at >= TIMEOUT - 0.01 for x in stalled)

    attribute(result, [("pre", t0 - 10, t0 - 0.06), ("cut", t0 - 0.06, t1), ("stall", t1, t2)])
    assert result.by_step["pre"]["lost"] == 0
    assert result.by_step["cut"]["lost"] == 4
    assert result.by_step["stall"]["lost"] == 2
    assert {x.step for x in stats.losses} == {"cut", "stall"}

    report = build_report(_record(result))
    body = report["probes"][0]
    assert body["kind"] == "session"
    assert (body["sessions_opened"], body["sessions_survived"], body["sessions_lost"]) == (
        12,
        6,
        6,
    )
    assert (body["sessions_reset"], body["sessions_stalled"]) == (4, 2)
    assert [x["step"] for x in body["session_losses"]].count("cut") == 4
    assert body["by_step"]["stall"]["lost"] == 2


def test_max_lost_sessions_trips_while_the_drill_runs(echo: BreakableEcho) -> None:
    probe = start_probe(spec(echo.port, sessions=8, max_lost_sessions=2))
    try:
        wait_for(lambda: echo.open_count() == 8)
        echo.break_("reset", 2)
        time.sleep(0.5)
        assert probe.check_limits() is None  # 2 lost is within the limit
        echo.break_("reset", 1, skip=2)
        wait_for(lambda: probe.check_limits() is not None, timeout=3.0)
        assert probe.check_limits() == "probe sessions: 3 of 8 sessions lost, limit 2"
    finally:
        result = probe.stop()
    assert result.sessions is not None and result.sessions.lost == 3
    assert probe.check_limits() == "probe sessions: 3 of 8 sessions lost, limit 2"


def test_no_endpoint_fails_at_start() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(ProbeError, match=r"no session to 127\.0\.0\.1"):
            start_probe(spec(port, sessions=3))


def test_an_endpoint_that_takes_fewer_sessions_is_reported(echo: BreakableEcho) -> None:
    # Sessions that never open are not "lost", but the drill must not pass silently.
    result = ProbeResult("s", "session", 10.0, 10, 0, 0.0,
                         sessions=SessionStats(requested=5, opened=3))  # fmt: skip
    body = build_report(_record(result))["probes"][0]
    assert (body["sessions_requested"], body["sessions_opened"]) == (5, 3)
    with start_probe(spec(echo.port, sessions=3)) as probe:
        pass
    probe.session_spec = spec(echo.port, sessions=4)  # as if 4 were asked and 3 opened
    assert probe.check_limits() == "probe sessions: only 3 of 4 sessions opened"


def test_echo_server_module_echoes_on_many_sessions() -> None:
    async def scenario() -> list[bytes]:
        ready = asyncio.Event()
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = asyncio.create_task(echo_server.serve("127.0.0.1", port, ready))
        await asyncio.wait_for(ready.wait(), 5)
        answers = []
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
        for i, (reader, writer) in enumerate(conns):
            writer.write(f"{i} 0\n".encode())
            answers.append(await reader.readexactly(4))
            writer.close()
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
        return answers

    assert asyncio.run(scenario()) == [f"{i} 0\n".encode() for i in range(5)]


def _record(result: ProbeResult) -> RunRecord:
    now = datetime.now(UTC)
    return RunRecord("r", "rb", "rb.yml", "0" * 64, "planned", False, "op", None, now,
                     ended=now, probes=[result])  # fmt: skip
