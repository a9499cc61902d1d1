"""The isolation rehearsal: probes generated from a flow catalog, verdicts per tier, and the
flow probe agent against real sockets on this host."""

from __future__ import annotations

import json
import resource
import socket
import threading
import time
from pathlib import Path

import pytest

from drill.flows.catalog import Catalog, CatalogBuilder
from drill.flows.isolation import Attempt, FlowProbe, judge, plan
from drill.flows.records import FlowRecord
from drill.flows.services import load_services
from drill.probes import wire
from drill.probes.flows import FlowAgent, FlowTarget

SERVICES = """\
apiVersion: drill/v1
services:
  - {name: web, site: [dc1, dc2], dr: required, addresses: [192.0.2.10], ports: [80/tcp]}
  - {name: auth, site: dc1, dr: required, addresses: [192.0.2.22], ports: [8080/tcp]}
  - {name: auth, site: dc2, dr: required, addresses: [192.0.2.32], ports: [8080/tcp]}
  - {name: db, site: dc1, dr: required, addresses: [192.0.2.23], ports: [5432/tcp]}
  - {name: db, site: dc2, dr: required, addresses: [192.0.2.33], ports: [5432/tcp]}
  - {name: dns, site: dc2, dr: required, addresses: [192.0.2.35], ports: [53/udp]}
  - {name: settlement, site: dc1, dr: deferred, addresses: [192.0.2.27], ports: [8300/tcp]}
  - {name: routing, site: dc1, dr: deferred, addresses: [198.51.100.9], ports: [179/tcp, 3784/udp]}
  - {name: routing, site: dc2, dr: deferred, addresses: [198.51.100.10], ports: [179/tcp, 3784/udp]}
  - {name: customers, site: wan, dr: deferred, addresses: [203.0.113.0/24]}
"""
T0, T1 = "2026-12-01T05:00:00.000Z", "2026-12-01T05:00:30.000Z"
HOSTS = {
    "dc1-srv": ["192.0.2.22", "192.0.2.23"],
    "dc2-srv": ["192.0.2.32", "192.0.2.33"],
    "dc2-edge": ["198.51.100.10"],
    "client": ["203.0.113.10"],
}
VANTAGE = {h: f"lab:labs/payment-dr:{h}" for h in HOSTS}


def rec(src: str, dst: str, sport: int, dport: int, proto: int = 6) -> FlowRecord:
    return FlowRecord(src, dst, sport, dport, proto, 4, 400, T0, T1, "198.18.2.253")


def catalog(tmp_path: Path, records: list[FlowRecord]) -> Catalog:
    services = tmp_path / "services.yml"
    services.write_text(SERVICES)
    builder = CatalogBuilder(load_services(services))
    builder.add_all(records)
    return builder.catalog(["flows.jsonl"], str(services))


def by_label(probes: tuple[FlowProbe, ...]) -> dict[str, FlowProbe]:
    return {p.label: p for p in probes}


def test_the_planted_dependency_is_probed_where_the_flow_went(tmp_path: Path) -> None:
    cat = catalog(tmp_path, [rec("192.0.2.32", "192.0.2.27", 40000, 8300)])
    result = plan(cat, "dc1", HOSTS, VANTAGE)
    (probe,) = result.probes
    assert probe.label == "auth@dc2 -> settlement@dc1 tcp/8300"
    assert probe.tier == "required"  # the client is required, although settlement is not
    assert (probe.method, probe.source, probe.target, probe.port) == (
        "tcp",
        "192.0.2.32",
        "192.0.2.27",
        8300,
    )
    assert (probe.host, probe.vantage) == ("dc2-srv", "lab:labs/payment-dr:dc2-srv")
    assert probe.target_note == ""


def test_a_required_service_with_a_dr_instance_is_probed_there(tmp_path: Path) -> None:
    # auth@dc2 wrote to the dc1 primary before the switchover; the switchover moves db
    cat = catalog(tmp_path, [rec("192.0.2.32", "192.0.2.23", 40000, 5432)])
    (probe,) = plan(cat, "dc1", HOSTS, VANTAGE).probes
    assert probe.target == "192.0.2.33" and probe.port == 5432
    assert "db also runs at dc2" in probe.target_note and "192.0.2.23" in probe.target_note
    # isolating dc2 instead: the same flow's client is gone with the site
    assert plan(cat, "dc2", HOSTS, VANTAGE).gone_with_site == 1


def test_flows_that_go_with_the_site_or_cannot_be_probed(tmp_path: Path) -> None:
    records = [
        rec("192.0.2.22", "192.0.2.27", 40000, 8300),  # auth@dc1: goes with dc1
        rec("198.51.100.10", "198.51.100.9", 49152, 3784, proto=17),  # BFD: no probe for it
        rec("203.0.113.10", "192.0.2.10", 50000, 80),  # customers -> web VIP
        rec("192.0.2.32", "192.0.2.35", 40000, 53, proto=17),  # auth -> dns over udp
        rec("203.0.113.10", "192.0.2.10", 0, 2048, proto=1),  # ping the VIP
        rec("198.51.100.10", "198.51.100.9", 40000, 179),  # iBGP to dc1: deferred
    ]
    result = plan(catalog(tmp_path, records), "dc1", HOSTS, VANTAGE)
    probes = by_label(result.probes)
    assert result.gone_with_site == 1
    assert probes["customers@wan -> web@dc1+dc2 tcp/80"].target == "192.0.2.10"
    assert probes["auth@dc2 -> dns@dc2 udp/53"].method == "dns"
    assert probes["customers@wan -> web@dc1+dc2 icmp"].method == "icmp"
    bgp = probes["routing@dc2 -> routing@dc1 tcp/179"]
    assert bgp.tier == "deferred" and bgp.target == "198.51.100.9"  # deferred: where it went
    (skipped,) = result.unprobed
    assert skipped.label == "routing@dc2 -> routing@dc1 udp/3784"
    assert "no probe for udp/3784" in skipped.reason
    # required flows come first, and ids are the agent's
    assert [p.tier for p in result.probes][-1] == "deferred"
    assert [p.id for p in result.probes] == list(range(len(result.probes)))


def test_no_vantage_or_no_host_is_said_not_hidden(tmp_path: Path) -> None:
    cat = catalog(tmp_path, [rec("192.0.2.32", "192.0.2.27", 40000, 8300)])
    (u,) = plan(cat, "dc1", HOSTS, {}).unprobed
    assert u.reason == "no vantage point for host dc2-srv" and u.tier == "required"
    (u,) = plan(cat, "dc1", {}, VANTAGE).unprobed
    assert u.reason == "no inventory host has 192.0.2.32"
    limited = plan(cat, "dc1", HOSTS, VANTAGE, max_flows=1)
    assert len(limited.probes) == 1 and not limited.unprobed


# --- verdicts ----------------------------------------------------------------------------


def probes_of(tmp_path: Path) -> tuple[FlowProbe, FlowProbe]:
    cat = catalog(
        tmp_path,
        [
            rec("192.0.2.32", "192.0.2.27", 40000, 8300),
            rec("198.51.100.10", "198.51.100.9", 40000, 179),
        ],
    )
    required, deferred = plan(cat, "dc1", HOSTS, VANTAGE).probes
    return required, deferred


def series(ok_before: int, fail_during: int, ok_during: int, ok_after: int) -> list[Attempt]:
    out = [Attempt(float(t), None) for t in range(ok_before)]
    out += [Attempt(10.0 + t, "timed out") for t in range(fail_during)]
    out += [Attempt(10.0 + fail_during + t, None) for t in range(ok_during)]
    out += [Attempt(30.0 + t, None) for t in range(ok_after)]
    return out


@pytest.mark.parametrize(
    ("attempts", "status", "fails"),
    [
        (series(3, 10, 0, 2), "broken", True),
        (series(3, 0, 10, 2), "ok", False),
        (series(3, 10, 0, 0), "not-recovered", True),
        (series(3, 1, 9, 2), "broken", True),  # one lost attempt is a finding too
        ([Attempt(0.0, "refused")] * 3 + series(0, 0, 10, 1), "down-before", True),
        (series(3, 0, 0, 3), "no-data", True),
    ],
)
def test_required_flow_verdicts(
    tmp_path: Path, attempts: list[Attempt], status: str, fails: bool
) -> None:
    required, _ = probes_of(tmp_path)
    (verdict,) = judge([required], {required.id: attempts}, cut_at=10.0, lifted_at=30.0)
    assert (verdict.status, verdict.fails_drill) == (status, fails)


def test_attempts_while_the_cut_goes_in_or_lifts_count_nowhere(tmp_path: Path) -> None:
    """Rules go in one namespace after another and timers expire the same way: an attempt
    that got through before the cut was complete is not a flow that survived it."""
    required, _ = probes_of(tmp_path)
    attempts = [Attempt(float(t), None) for t in range(3)]
    attempts += [Attempt(9.5, None)]  # the cut still going in: answered
    attempts += [Attempt(10.0 + t, "timed out") for t in range(15)]
    attempts += [Attempt(29.5, None)]  # the first timer has expired: answered
    attempts += [Attempt(31.0, None)]
    unsettled = [(9.0, 10.0), (29.2, 30.0)]
    (verdict,) = judge([required], {required.id: attempts}, 10.0, 30.0, unsettled)
    assert verdict.during.failed_pct == 100.0 and verdict.during.attempts == 15
    assert verdict.before.attempts == 3 and verdict.after.attempts == 1
    (blurred,) = judge([required], {required.id: [*attempts, Attempt(10.0, None)]}, 9.0, 30.0)
    assert blurred.during.failed_pct < 100.0  # what the unsettled intervals keep out


def test_the_headline_names_the_flow_and_the_share(tmp_path: Path) -> None:
    required, deferred = probes_of(tmp_path)
    verdicts = judge(
        [required, deferred],
        {required.id: series(3, 15, 0, 1), deferred.id: series(3, 5, 10, 0)},
        cut_at=10.0,
        lifted_at=30.0,
    )
    assert verdicts[0].headline() == (
        "auth@dc2 -> settlement@dc1 tcp/8300: 100% failed during isolation"
    )
    assert verdicts[0].recovered_s == 0.0 and verdicts[0].during.reasons == {"timed out": 15}
    assert verdicts[1].status == "expected" and not verdicts[1].fails_drill
    assert verdicts[1].headline().endswith("33% failed during isolation (dr: deferred: expected)")


# --- the agent, for real, on this host's loopback ------------------------------------------


def test_flow_agent_rounds_against_real_sockets() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    open_port = listener.getsockname()[1]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]  # bound, never listening: connect is refused
    resolver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    resolver.bind(("127.0.0.1", 0))
    dns_port = resolver.getsockname()[1]

    def answer() -> None:
        data, peer = resolver.recvfrom(512)
        resolver.sendto(data[:2] + b"\x81\x83" + data[4:], peer)  # NXDOMAIN is an answer

    threading.Thread(target=answer, daemon=True).start()
    targets = [
        FlowTarget.parse([0, "tcp", "127.0.0.1", "127.0.0.1", open_port]),
        FlowTarget.parse([1, "tcp", None, "127.0.0.1", closed_port]),
        FlowTarget.parse([2, "dns", None, "127.0.0.1", dns_port]),
        FlowTarget.parse([3, "tcp", "192.0.2.250", "127.0.0.1", open_port]),  # cannot bind
    ]
    try:
        result = FlowAgent(targets, interval=1.0, timeout=0.5).round()
    finally:
        listener.close()
        closed.close()
        resolver.close()
    assert isinstance(result, wire.FlowRound)
    assert result.ok == [0, 2]
    assert result.failed["1"] == "Connection refused"
    assert "assign" in result.failed["3"]  # EADDRNOTAVAIL: the address is not this host's


@pytest.mark.parametrize(
    "item",
    [
        [0, "udp", None, "192.0.2.1", 9],
        [0, "tcp", None, "not-an-ip", 80],
        [0, "tcp", None, "192.0.2.1", 70000],
        "x",
    ],
)
def test_bad_targets_are_refused(item: object) -> None:
    with pytest.raises(ValueError):
        FlowTarget.parse(item)


def test_thousands_of_flows_from_one_vantage_point() -> None:
    """Past one argument's size (the targets go on stdin) and past the default limit of
    1,024 open files (a round holds a socket per flow; the agent raises its soft limit)."""
    from drill.probes.flow_running import FlowProbes

    listener = socket.create_server(("127.0.0.1", 0), backlog=4096)
    port = listener.getsockname()[1]
    count = 4000
    items: list[list[object]] = [[i, "tcp", "127.0.0.1", "127.0.0.1", port] for i in range(count)]
    assert len(json.dumps(items)) > 131072  # MAX_ARG_STRLEN: one argv string could not hold it
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))  # what the agent inherits
    probes = FlowProbes({"local": items}, interval=2.0, timeout=1.5)
    try:
        probes.start()
        deadline = time.monotonic() + 20
        while len(probes.attempts()) < count and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        probes.stop()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        listener.close()
    attempts = probes.attempts()
    assert len(attempts) == count, probes.problems()
    errors = {a.error for tries in attempts.values() for a in tries[:1]}
    assert "Too many open files" not in errors, errors
    assert None in errors  # they answered
