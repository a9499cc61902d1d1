"""Probes without root: gap arithmetic, attribution, wire format, packets, and the service
and UDP agents run for real against servers on 127.0.0.1."""

from __future__ import annotations

import http.server
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from drill.engine.records import Outage, ProbeResult
from drill.errors import InputError, NeedsRootError
from drill.probes import ProbeError, RunningProbe, attribute, start_probe, vantage, wire
from drill.probes.gaps import GapTracker, track
from drill.probes.ledger import Ledger
from drill.probes.pacer import MAX_LAG, Schedule
from drill.probes.running import agent_argv
from drill.probes.service import HttpFailure, Target, parse_response
from drill.probes.transports import Icmp4, Icmp6, Udp, checksum
from drill.runbook.model import PacketProbe, ServiceProbe

IV = 0.01  # 100 packets/s


def run(pattern: str, interval: float = IV) -> GapTracker:
    """'.' got through, 'x' lost; packet i sent at i * interval."""
    return track([(i * interval, c == ".") for i, c in enumerate(pattern)], interval)


# --- gap computation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "lost", "max_gap_ms", "outages"),
    [
        ("", 0, 0.0, []),
        ("....", 0, 0.0, []),
        ("..x..", 1, 10.0, [(0.01, 0.03, 1)]),
        ("..xxx..", 3, 30.0, [(0.01, 0.05, 3)]),
        # at the start: measured from the probe's start (as if packet -1 got through)
        ("xx...", 2, 20.0, [(-0.01, 0.02, 2)]),
        # at the end: measured to the probe's stop (as if packet n got through)
        ("...xx", 2, 20.0, [(0.02, 0.05, 2)]),
        ("xxxx", 4, 40.0, [(-0.01, 0.04, 4)]),
        # several runs: the longest wins, each is kept
        (".x..xxx.x.", 5, 30.0, [(0.0, 0.02, 1), (0.03, 0.07, 3), (0.07, 0.09, 1)]),
    ],
)
def test_gap_table(
    pattern: str, lost: int, max_gap_ms: float, outages: list[tuple[float, float, int]]
) -> None:
    t = run(pattern)
    assert t.sent == len(pattern)
    assert t.lost == lost
    assert t.max_gap_ms == pytest.approx(max_gap_ms)
    assert [(round(o.start, 6), round(o.end, 6), o.lost) for o in t.outages] == outages


def test_gap_uses_actual_send_times_not_the_nominal_rate() -> None:
    # The sender stalled: the packets around the loss were sent 50 ms apart, not 10.
    t = track([(0.0, True), (0.05, False), (0.1, True)], IV)
    assert t.max_gap_ms == pytest.approx(90.0)


def test_ongoing_gap_is_a_lower_bound_while_loss_lasts() -> None:
    t = GapTracker(IV)
    for i, ok in enumerate("..xxxx"):
        t.feed(i * IV, ok == ".")
    assert t.max_gap_ms == 0.0  # nothing closed yet
    assert t.ongoing_gap_ms == pytest.approx(40.0)  # last good 0.01, last lost 0.05
    t.feed(6 * IV, True)  # the next packet got through: the bound was tight
    assert t.ongoing_gap_ms == 0.0
    assert t.max_gap_ms == pytest.approx(40.0)


def test_tracker_refuses_feed_after_finish() -> None:
    t = run("..")
    with pytest.raises(RuntimeError):
        t.feed(1.0, True)


# --- attribution ----------------------------------------------------------------------


def probe_result(outages: list[Outage], rate: float = 100.0) -> ProbeResult:
    lost = sum(o.lost for o in outages)
    return ProbeResult("p", "packet", rate, 1000, lost, 0.0, outages=outages)


def test_attribution_inside_one_step() -> None:
    result = probe_result([Outage(10.0, 10.31, 30)])
    attribute(result, [("before", 0.0, 10.0), ("switch", 10.0, 20.0), ("after", 20.0, 30.0)])
    assert result.by_step["switch"]["lost"] == 30
    assert result.by_step["switch"]["max_gap_ms"] == pytest.approx(300.0)
    assert result.by_step["before"] == {"lost": 0, "max_gap_ms": 0.0}
    assert result.by_step["after"] == {"lost": 0, "max_gap_ms": 0.0}


def test_attribution_splits_an_outage_across_two_steps_by_send_time() -> None:
    # 39 lost packets sent 1.01 .. 1.39; the step boundary is at 1.2 (sends up to 1.19: 19).
    result = probe_result([Outage(1.0, 1.4, 39)])
    attribute(result, [("a", 0.0, 1.2), ("b", 1.2, 5.0)])
    assert result.by_step["a"]["lost"] + result.by_step["b"]["lost"] == 39
    assert result.by_step["a"]["lost"] == 19
    # interruption window [1.005, 1.395]: 195 ms in a, 195 ms in b
    assert result.by_step["a"]["max_gap_ms"] == pytest.approx(195.0)
    assert result.by_step["b"]["max_gap_ms"] == pytest.approx(195.0)


def test_attribution_ignores_loss_outside_steps_and_merges_retried_names() -> None:
    result = probe_result([Outage(0.5, 0.53, 2), Outage(3.0, 3.03, 2), Outage(6.0, 6.05, 4)])
    attribute(result, [("s", 2.0, 4.0), ("s", 5.0, 7.0)])
    assert result.by_step == {"s": {"lost": 6, "max_gap_ms": pytest.approx(40.0)}}


def test_attribution_without_steps_is_empty() -> None:
    result = probe_result([Outage(0.5, 0.53, 2)])
    attribute(result, [])
    assert result.by_step == {}


# --- vantage points -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        ("local", ["true", "x"]),
        ("netns:two-dc-client", ["ip", "netns", "exec", "two-dc-client", "true", "x"]),
        ("netns:prb_a.1", ["ip", "netns", "exec", "prb_a.1", "true", "x"]),
        ("lab:labs/two-dc:client", ["ip", "netns", "exec", "two-dc-client", "true", "x"]),
        ("lab:/srv/labs/two-dc/:app1", ["ip", "netns", "exec", "two-dc-app1", "true", "x"]),
    ],
)
def test_wrap(point: str, expected: list[str]) -> None:
    assert vantage.wrap(point, ["true", "x"]) == expected


@pytest.mark.parametrize(
    "point",
    ["", "Local", "netns:", "netns:a/b", "netns:..", "ssh:host", "lab:two-dc", "lab::x", "lab:x:"],
)
def test_wrap_rejects_unknown_vantage(point: str) -> None:
    with pytest.raises(InputError):
        vantage.wrap(point, ["true"])


# --- bookkeeping, pacing, wire format -------------------------------------------------


def test_ledger_counts_late_replies_as_lost_and_decides_in_order() -> None:
    ledger = Ledger(interval=IV, grace=1.0)
    for i in range(4):
        ledger.record_send(i * IV)
    assert ledger.answer(0, 0.001)
    assert not ledger.answer(1, 1.5)  # 1.49 s after sending: late
    assert ledger.answer(3, 0.035)
    assert not ledger.answer(3, 0.036)  # duplicate
    assert not ledger.answer(9, 0.05)  # never sent
    ledger.decide(now=0.5)
    assert ledger.tracker.sent == 1  # seq 1 is still within grace, so nothing after it decided
    ledger.decide(now=2.0)
    assert (ledger.tracker.sent, ledger.tracker.lost, ledger.late) == (4, 2, 1)
    assert ledger.undecided == 0


def test_ledger_forgets_decided_entries_but_keeps_numbering() -> None:
    ledger = Ledger(interval=0.001, grace=1.0)
    for i in range(10_000):
        seq = ledger.record_send(i * 0.001)
        if i % 1000 != 999:  # every thousandth packet is lost
            assert ledger.answer(seq, i * 0.001 + 0.0002)
    ledger.decide(now=9.5)  # decides up to the first packet still within grace (8.5 s)
    assert len(ledger._status) < 2000  # the decided prefix was dropped
    assert len(ledger) == 10_000
    assert not ledger.answer(42, 0.05)  # already decided
    assert ledger.answer(9_999, 10.0)  # unanswered so far, within grace: numbering survived
    ledger.decide(now=100.0)
    t = ledger.tracker
    assert (t.sent, t.lost, len(t.outages)) == (10_000, 9, 9)


def test_schedule_is_absolute() -> None:
    s = Schedule(rate=1000, start=100.0)
    dues = []
    for _ in range(1000):
        dues.append(s.due(now=100.0))
        s.take()
    assert dues[-1] == pytest.approx(100.999)  # no accumulated drift
    assert s.skipped == 0


def test_schedule_skips_instead_of_bursting() -> None:
    s = Schedule(rate=1000, start=0.0, max_lag=0.05)
    s.take()
    assert s.due(now=0.0305) == pytest.approx(0.001)  # 30 ms behind: catch up, no skip
    assert s.due(now=2.0) == pytest.approx(2.0)
    assert s.skipped == 1999


def test_result_round_trip() -> None:
    result = wire.Result(
        sent=10, lost=2, interval=0.001, started=1.5, stopped=2.5,
        outages=[Outage(1.6, 1.603, 2)], backends={"app1": 8}, failures={"timeout": 2},
    )  # fmt: skip
    assert wire.decode(wire.encode(result)) == result


@pytest.mark.parametrize("line", ["", "{}", '{"type": "nope"}', '{"type": "progress"}', "[1]"])
def test_decode_rejects_garbage(line: str) -> None:
    with pytest.raises(ValueError):
        wire.decode(line)


# --- packets --------------------------------------------------------------------------


def test_icmp4_request_has_valid_checksum_and_only_our_replies_match() -> None:
    icmp = Icmp4(ident=7, token=b"12345678")
    request = icmp.build(123_456)
    assert request[0] == 8 and checksum(request) == 0
    header = bytes([0x45]) + bytes(19)
    reply = bytes([0, 0]) + request[2:]
    assert icmp.parse(header + reply) == 123_456
    assert icmp.parse(header + request) is None  # our own request seen on loopback
    assert Icmp4(ident=8, token=b"12345678").parse(header + reply) is None
    assert Icmp4(ident=7, token=b"87654321").parse(header + reply) is None
    assert icmp.parse(header + reply[:10]) is None


def test_icmp6_and_udp_payloads() -> None:
    icmp6 = Icmp6(ident=7, token=b"12345678")
    request = icmp6.build(5)
    assert request[0] == 128
    assert icmp6.parse(bytes([129]) + request[1:]) == 5
    udp = Udp(token=b"12345678")
    assert udp.parse(udp.build(2**40)) == 2**40
    assert Udp(token=b"xxxxxxxx").parse(udp.build(1)) is None


# --- service probe: parsing -----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "backend"),
    [
        (b"HTTP/1.0 200 OK\r\n\r\napp1\n", "app1"),
        (b"HTTP/1.1 204 No Content\r\nX: y\r\n\r\n", ""),
        (b"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n  app2  ", "app2"),
    ],
)
def test_parse_response_success(raw: bytes, backend: str) -> None:
    assert parse_response(raw) == backend


@pytest.mark.parametrize("raw", [b"", b"SSH-2.0-OpenSSH\r\n", b"HTTP/1.1 500 Oops\r\n\r\nx"])
def test_parse_response_failure(raw: bytes) -> None:
    with pytest.raises(HttpFailure):
        parse_response(raw)


def test_target_from_url() -> None:
    t = Target.from_url("https://[2001:db8::1]:8443/h")
    assert (t.host, t.port, t.tls is not None) == ("2001:db8::1", 8443, True)
    with pytest.raises(ValueError):
        Target.from_url("ftp://192.0.2.10/")


def test_agent_argv_needs_a_port_for_udp() -> None:
    spec = PacketProbe(name="u", kind="packet", target="192.0.2.10", protocol="udp")
    with pytest.raises(InputError):
        agent_argv(spec)


# --- the agents, for real, on loopback --------------------------------------------------


class Backend(http.server.BaseHTTPRequestHandler):
    """Answers its server's name, or 503 while the server is 'down'; counts both."""

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, CountingServer)
        with server.lock:
            failing = server.failing
            server.answers["503" if failing else "200"] += 1
        body = b"" if failing else b"app1\n"
        self.send_response(503 if failing else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class CountingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Backend)
        self.lock = threading.Lock()
        self.failing = False
        self.answers = {"200": 0, "503": 0}


@pytest.fixture
def web() -> Iterator[CountingServer]:
    server = CountingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def wait_for(condition: object, what: str, within: float = 20.0) -> None:
    """Poll until ``condition()`` holds; a deadline against hangs, not a speed assertion."""
    deadline = time.monotonic() + within
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def test_service_probe_counts_exactly_the_failed_requests(web: CountingServer) -> None:
    port = web.server_address[1]
    spec = ServiceProbe(
        name="web", kind="service", url=f"http://127.0.0.1:{port}/", rate=50, max_loss=3
    )
    with start_probe(spec) as probe:
        wait_for(lambda: web.answers["200"] >= 10, "first answers")
        assert probe.check_limits() is None
        with web.lock:
            web.failing = True
        wait_for(lambda: web.answers["503"] >= 8, "failed answers")
        with web.lock:
            web.failing = False
        wait_for(lambda: probe.check_limits() is not None, "the loss limit to trip")
        wait_for(lambda: web.answers["200"] >= 30, "recovery")
        result = probe.stop()
    assert result.error is None
    assert result.lost == web.answers["503"]
    assert result.sent == web.answers["200"] + web.answers["503"]
    assert result.backends == {"app1": web.answers["200"]}
    assert len(result.outages) == 1 and result.outages[0].lost == result.lost
    # one run of n failures at 50/s: a gap of n intervals, give or take the pacing jitter
    assert result.max_gap_ms == pytest.approx(result.lost * 20.0, abs=20.0)
    assert "requests lost, limit 3" in (probe.check_limits() or "")


def test_service_probe_without_server_loses_everything() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = ServiceProbe(name="down", kind="service", url=f"http://127.0.0.1:{port}/", rate=20)
    with start_probe(spec) as probe:
        wait_for(lambda: probe_sent(probe) >= 5, "sending")
        result = probe.stop()
    assert result.sent >= 5 and result.lost == result.sent
    # everything lost: the gap is the whole duration, from the first send to one interval
    # after the last (docs/probes.md)...
    (outage,) = result.outages
    assert outage.lost == result.sent
    # (max_gap_ms is reported to the microsecond)
    assert result.max_gap_ms == pytest.approx((outage.end - outage.start) * 1000.0 - 50.0, abs=1e-3)
    # ...which is sent x interval only for a sender exactly on schedule; it may run up to
    # MAX_LAG late (once 294 ms for 6 requests at 20/s: the first went out 6 ms late).
    assert result.max_gap_ms == pytest.approx(result.sent * 50.0, abs=MAX_LAG * 1000.0)


def probe_sent(probe: RunningProbe) -> int:
    progress = probe._progress  # the live view check_limits() uses
    return progress.sent if progress else 0


def test_udp_probe_through_the_echo_agent() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spec = PacketProbe(
        name="u", kind="packet", target="127.0.0.1", protocol="udp", port=port, rate=500
    )
    server = EchoServer(port)
    try:
        with start_probe(spec) as probe:
            wait_for(lambda: probe_sent(probe) >= 250, "250 packets")
            server.stop()
            wait_for(lambda: probe_sent(probe) >= 750, "packets while the echo is down")
            result = probe.stop()
    finally:
        server.stop()
    assert result.sent >= 750 and result.error is None
    assert result.lost > 0 and len(result.outages) == 1
    # the echo never came back: the run ends at the probe's stop, so the gap is measured to it
    outage = result.outages[0]
    assert outage.end == pytest.approx(outage.start + (outage.lost + 1) * 0.002, abs=0.05)


class EchoServer:
    """The agent's own UDP echo mode, as a lab would run it on the target."""

    def __init__(self, port: int) -> None:
        import subprocess
        import sys

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "drill.probes.agent", "udp-echo", "--port", str(port),
             "--bind", "127.0.0.1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        assert isinstance(wire.decode(self.proc.stdout.readline()), wire.Ready)

    def stop(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(5)


def test_start_fails_loudly_when_the_agent_cannot_start() -> None:
    spec = ServiceProbe(name="bad", kind="service", url="gopher://192.0.2.10/", rate=1)
    with pytest.raises(ProbeError, match="service probe url must be http"):
        start_probe(spec)


def test_start_rejects_an_unknown_vantage_point_before_starting_anything() -> None:
    spec = ServiceProbe.model_validate(
        {"name": "v", "kind": "service", "url": "http://192.0.2.10/", "from": "mars:1"}
    )
    with pytest.raises(InputError):
        start_probe(spec)


@pytest.mark.parametrize(
    "spec",
    [
        PacketProbe(name="icmp", kind="packet", target="192.0.2.10"),
        ServiceProbe.model_validate(
            {"name": "ns", "kind": "service", "url": "http://192.0.2.10/", "from": "netns:x"}
        ),
    ],
    ids=["icmp", "netns"],
)
def test_start_needs_root_for_raw_sockets_and_namespaces(
    monkeypatch: pytest.MonkeyPatch, spec: PacketProbe | ServiceProbe
) -> None:
    monkeypatch.setattr("drill.probes.running.os.geteuid", lambda: 1000)
    with pytest.raises(NeedsRootError):
        start_probe(spec)


def test_an_agent_that_dies_is_reported_not_ignored(web: CountingServer) -> None:
    spec = ServiceProbe(
        name="web", kind="service", url=f"http://127.0.0.1:{web.server_address[1]}/", rate=20
    )
    probe = start_probe(spec)
    try:
        # Its own session: a Ctrl-C at the operator's terminal does not reach it.
        assert os.getsid(probe.pid) != os.getsid(0)
        wait_for(lambda: probe_sent(probe) >= 2, "requests")
        os.kill(probe.pid, signal.SIGKILL)
        wait_for(lambda: probe.check_limits() is not None, "the death to be noticed")
        assert "stopped measuring" in (probe.check_limits() or "")
    finally:
        result = probe.stop()
    assert result.error is not None and "agent exited" in result.error
    assert result.sent >= 2
