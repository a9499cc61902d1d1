"""labs/payment-dr: services answer through their real paths, the firewalls share session
state, both payment drills succeed, the planted hidden dependency is real, and `down` leaves
nothing behind.

One lab for the whole session (tests/conftest.py `payment_lab`, shared with the other payment
modules; brought up here if needed, taken down by the last test and again at session end).
The tests run in file order: the state each one leaves is the next one's start.
The lab has its own namespaces and management subnet (198.18.2.0/24), so it does not need
two-dc's lock, but its own; it is heavy (PostgreSQL, services), so run it alone on a small
machine: ``flock /tmp/drill-payment.lock .venv/bin/pytest -m lab tests/lab/test_payment_lab.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from ruamel.yaml import YAML

from drill.lab.lab import Lab

pytestmark = pytest.mark.lab

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[2]
LAB_DIR = REPO / "labs" / "payment-dr"
RUNBOOKS = REPO / "runbooks" / "payment"
LAB_RUN = Path("/run/drill/lab/payment-dr")
DC1_NODES = ("dc1-edge", "dc1-srv", "br-dc1")
SMALL = "http://192.0.2.10/?amount=42"
LARGE = "http://192.0.2.10/?amount=5000"
CHAIN_DC1 = "web@dc1-srv auth@dc1-srv db@dc1-srv hsm@dc1-srv"
CHAIN_DC2 = "web@dc2-srv auth@dc2-srv db@dc2-srv hsm@dc2-srv"
# Postchecks of dc1-to-dc2.yml that look at routing, VRRP, paths and the service from the
# surviving side; the ones run on dc1 nodes cannot answer with dc1 cut off (an isolated
# dc1-edge makes itself VRRP master, as any router that hears no peer would).
BLIND_CHECKS = (
    "wan-reaches-servers-through-dc2",
    "gateway-still-on-dc2-edge",
    "web-still-on-dc2-srv",
    "payments-served-by-dc2",
    "client-to-web-avoids-dc1",
    "web-to-client-avoids-dc1",
)
# A client that keeps one TCP session open to the echo service and reports every 100 ms
# whether its last line came back: "ok N" lines, "broken ..." once it fails.
SESSION_CLIENT = r"""
import socket, sys, time
sock = socket.create_connection((sys.argv[1], 7007), timeout=2)
n = 0
while True:
    n += 1
    try:
        sock.sendall(f"ping {n}\n".encode())
        got = b""
        while not got.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                raise OSError("closed")
            got += chunk
        assert got == f"ping {n}\n".encode(), got
        print(f"ok {n}", flush=True)
    except Exception as exc:
        print(f"broken {n} {type(exc).__name__} {exc}", flush=True)
        break
    time.sleep(0.1)
"""


def poll(what: str, probe: Callable[[], T | None], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def lab(payment_lab: Lab) -> Lab:
    """The session's payment lab (tests/conftest.py), up: an earlier module may have taken
    it down, and the last test here does."""
    payment_lab.up()
    return payment_lab


def get(lab: Lab, node: str, url: str) -> tuple[int, str]:
    """HTTP status and stripped body of ``url`` fetched from ``node``."""
    done = lab.exec(node, ["curl", "-sS", "-m", "5", "-w", "\n%{http_code}", url], timeout=15)
    body, _, status = done.stdout.rpartition("\n")
    return int(status or 0), body.strip()


def ok_body(lab: Lab, node: str, url: str) -> str:
    status, body = get(lab, node, url)
    assert status == 200, f"{node} -> {url}: {status} {body}"
    return body


def sh(lab: Lab, node: str, command: str) -> str:
    done = lab.exec(node, ["sh", "-c", command], timeout=60)
    assert done.returncode == 0, f"{node}: {command}: {done.stderr or done.stdout}"
    return done.stdout.strip()


def drill(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRILL_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "drill", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def run_drill(runbook: Path, tmp_path: Path) -> dict[str, Any]:
    report_dir = tmp_path / runbook.stem
    done = drill(
        "run", str(runbook), "--yes", "--report-dir", str(report_dir), state=tmp_path / "state"
    )
    report_file = report_dir / "report.json"
    assert report_file.exists(), done.stdout + done.stderr
    report: dict[str, Any] = json.loads(report_file.read_text())
    assert done.returncode == 0, json.dumps(report, indent=1)[:4000]
    assert report["outcome"] == "succeeded"
    return report


def assert_paths(lab: Lab, serving: str) -> None:
    """Every service answers, naming who served each hop, with ``serving`` the active site."""
    other = "dc2" if serving == "dc1" else "dc1"
    db = f"db@{serving}-srv"
    assert ok_body(lab, "client", SMALL) == (CHAIN_DC1 if serving == "dc1" else CHAIN_DC2)
    large = ok_body(lab, "client", LARGE)
    assert large.endswith("settlement@dc1-srv"), large
    # Each site's own web, auth and hsm, both writing to the current primary.
    for site in ("dc1", "dc2"):
        web = "192.0.2.21" if site == "dc1" else "192.0.2.31"
        assert ok_body(lab, "client", f"http://{web}/") == (
            f"web@{site}-srv auth@{site}-srv {db} hsm@{site}-srv"
        )
        # Each site's resolver gives the site's own HSM and the current primary.
        node = f"{site}-srv"
        hsm = "192.0.2.24" if site == "dc1" else "192.0.2.34"
        primary = "192.0.2.23" if serving == "dc1" else "192.0.2.33"
        assert sh(lab, node, "getent hosts hsm.pay.example").split()[0] == hsm
        assert sh(lab, node, "getent hosts db.pay.example").split()[0] == primary
    assert sh(lab, f"{serving}-srv", f"sh /etc/frr/svc/dbctl.sh role {serving}-srv") == (
        f"{db} primary"
    )
    auth = "192.0.2.22" if serving == "dc1" else "192.0.2.32"
    replication = ok_body(lab, "dc1-srv", f"http://{auth}:8080/replication")
    assert replication == f"{db} -> db@{other}-srv streaming", replication
    for address in ("192.0.2.26", "192.0.2.36"):
        echoed = sh(lab, "client", f"printf 'card 4111\\n' | nc -q1 -w3 {address} 7007")
        assert echoed == "card 4111"


def web_vrrp(lab: Lab, node: str, iface: str, vrid: int) -> str:
    out = lab.exec(node, ["vtysh", "-c", f"show vrrp {vrid} json"]).stdout
    states = [str(v["v4"]["status"]) for v in json.loads(out) if v["interface"] == iface]
    return states[0] if states else "absent"


class Session:
    """A long TCP session from the client to an echo service; its report lines in a file."""

    def __init__(self, lab: Lab, address: str, log: Path) -> None:
        self.log = log
        with log.open("w") as out:
            self.proc = subprocess.Popen(
                lab.exec_argv("client", ["python3", "-u", "-c", SESSION_CLIENT, address]),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.wait_ok(3)

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def wait_ok(self, count: int, timeout: float = 10.0) -> None:
        """``count`` more echoes come back, and none ever failed."""
        start = len(self.lines())

        def enough() -> bool:
            lines = self.lines()
            broken = [ln for ln in lines if not ln.startswith("ok")]
            assert not broken, f"session broke: {broken}"
            return len(lines) >= start + count

        poll(f"{count} echoes on the session", enough, timeout)

    def broken(self, timeout: float) -> bool:
        """True if the session fails (a line is not echoed back) within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(ln.startswith("broken") for ln in self.lines()):
                return True
            time.sleep(0.2)
        return False

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()


def postgres_shm_ids() -> set[str]:
    """SysV shared memory ids of the lab's running PostgreSQL clusters (postmaster.pid)."""
    ids = set()
    for pidfile in LAB_RUN.glob("*/pg/data/postmaster.pid"):
        lines = pidfile.read_text().splitlines()
        if len(lines) >= 7 and len(lines[6].split()) == 2:
            ids.add(lines[6].split()[1])
    return ids


def test_lab_converges_with_every_service_on_its_path(lab: Lab) -> None:
    assert_paths(lab, serving="dc1")
    # The background load runs and succeeds.
    stats = poll(
        "the load generator's statistics",
        lambda: sh(lab, "client", "cat /run/frr/loadgen.stats 2>/dev/null || true"),
    )
    assert re.match(r"ok [1-9]\d* failed \d+ last web@dc1-srv", stats), stats
    # The server VLAN learns MACs (exec: lines of the bridge nodes ran in their namespaces).
    for bridge in ("br-dc1", "br-dc2"):
        ports = lab.exec(bridge, ["bridge", "-d", "link", "show"]).stdout
        assert ports.count("learning on") == 3, ports
    # Nodes carry the labels tooling selects on.
    for node in lab.topology.nodes.values():
        assert {"drill.site", "drill.role", "drill.service"} <= set(node.labels), node.name


def test_firewalls_are_strict_and_share_state(lab: Lab) -> None:
    for edge in ("dc1-edge", "dc2-edge"):
        assert sh(lab, edge, "sysctl -n net.netfilter.nf_conntrack_tcp_loose") == "0"
        assert sh(lab, edge, "sh /etc/frr/fw/fwsync.sh status").startswith("on")
    # dc2-edge forwards nothing for the client while DC1 is primary: every client flow in its
    # table was learnt from dc1-edge's conntrackd.
    ok_body(lab, "client", SMALL)
    poll(
        "client flows synchronized into dc2-edge",
        lambda: "src=203.0.113.10" in sh(lab, "dc2-edge", "conntrack -L -p tcp 2>/dev/null"),
    )
    # From outside, only the published services open.
    assert sh(lab, "client", "nc -z -w2 192.0.2.22 8080 && echo open || echo closed") == "closed"


def test_session_breaks_on_a_move_without_sync(lab: Lab, tmp_path: Path) -> None:
    """Sync off: a session through dc1-edge dies once wan sends it to dc2-edge."""
    for edge in ("dc1-edge", "dc2-edge"):
        sh(lab, edge, "sh /etc/frr/fw/fwsync.sh off")
    session = Session(lab, "192.0.2.26", tmp_path / "session.log")
    try:
        sh(lab, "dc1-edge", "vtysh -c 'conf t' -c 'router bgp 64500' -c 'bgp graceful-shutdown'")
        poll(
            "wan preferring dc2-edge",
            lambda: "198.51.100.6" in sh(lab, "wan", "ip route show 192.0.2.0/24"),
        )
        assert session.broken(timeout=5), f"session survived without sync: {session.lines()[-3:]}"
    finally:
        session.close()
        sh(lab, "dc1-edge", "vtysh -c 'conf t' -c 'router bgp 64500' -c 'no bgp graceful-shutdown'")
        for edge in ("dc1-edge", "dc2-edge"):
            sh(lab, edge, "sh /etc/frr/fw/fwsync.sh on")
    poll(
        "wan preferring dc1-edge again",
        lambda: "198.51.100.2" in sh(lab, "wan", "ip route show 192.0.2.0/24"),
    )


def test_switchover_succeeds_and_sessions_survive(lab: Lab, tmp_path: Path) -> None:
    sessions = [Session(lab, a, tmp_path / f"{a}.log") for a in ("192.0.2.26", "192.0.2.36")]
    try:
        report = run_drill(RUNBOOKS / "dc1-to-dc2.yml", tmp_path)
        for session in sessions:
            session.wait_ok(5)  # established through dc1-edge, now through dc2-edge
    finally:
        for session in sessions:
            session.close()
    assert {p["name"] for p in report["probes"]} == {
        "client-to-web-icmp",
        "client-payments",
        "client-sessions",
    }
    assert web_vrrp(lab, "dc2-edge", "eth3", 1) == "Master"
    assert web_vrrp(lab, "dc2-srv", "eth1", 10) == "Master"
    assert sh(lab, "dc1-srv", "sh /etc/frr/svc/dbctl.sh role dc1-srv") == "db@dc1-srv down"
    status, body = get(lab, "client", SMALL)
    assert (status, body) == (200, CHAIN_DC2)
    large = ok_body(lab, "client", LARGE)
    assert large == CHAIN_DC2 + " settlement@dc1-srv"  # the trap: DR still calls DC1


def blind_runbook(tmp_path: Path) -> Path:
    """The switchover's own routing/VRRP/traceroute/service postchecks, as a runbook of
    checks only (no step changes anything)."""
    yaml = YAML()
    source = yaml.load((RUNBOOKS / "dc1-to-dc2.yml").read_text())
    checks = [c for c in source["postchecks"] if c["name"] in BLIND_CHECKS]
    assert [c["name"] for c in checks] == list(BLIND_CHECKS)
    source["name"] = "payment-dr-blind-checks"
    source["inventory"] = str(LAB_DIR / "inventory")
    source["probes"] = []
    source["prechecks"] = []
    source["steps"] = checks
    source["postchecks"] = []
    path = tmp_path / "blind-checks.yml"
    with path.open("w") as out:
        yaml.dump(source, out)
    return path


def test_hidden_dependency_is_real(lab: Lab, tmp_path: Path) -> None:
    state = tmp_path / "state"
    try:
        for node in DC1_NODES:
            done = drill(
                "lab", "fault", str(LAB_DIR), "node", node, "--mode", "blackhole", state=state
            )
            assert done.returncode == 0, done.stderr
        # DR serves small payments on its own...
        poll("dc2 serving with dc1 cut off", lambda: get(lab, "client", SMALL) == (200, CHAIN_DC2))
        # ...but a large one waits for settlement, in dc1, and fails.
        status, body = get(lab, "client", LARGE)
        assert status == 502, body
        assert "settlement failed" in body, body
        # Meanwhile every routing, VRRP, traceroute and service check of the runbook passes.
        run_drill(blind_runbook(tmp_path), tmp_path)
    finally:
        done = drill("lab", "fault", str(LAB_DIR), "--clear", state=state)
        assert done.returncode == 0, done.stderr
    poll("dc1 back", lambda: get(lab, "client", LARGE)[0] == 200, timeout=30)
    # dc1's isolated routers made themselves VRRP masters; back in touch they yield to dc2.
    for node, iface, vrid in (("dc1-edge", "eth3", 1), ("dc1-srv", "eth1", 10)):
        poll(
            f"{node} VRRP {vrid} backup",
            lambda n=node, i=iface, v=vrid: web_vrrp(lab, n, i, v) == "Backup",  # type: ignore[misc]
        )
    for address in ("192.0.2.26", "192.0.2.36"):
        poll(
            f"the session service at {address}",
            lambda a=address: lab.exec("client", ["nc", "-z", "-w2", a, "7007"]).returncode == 0,  # type: ignore[misc]
        )
    poll(
        "BGP with dc1-edge back",
        lambda: "Established" in sh(lab, "wan", "vtysh -c 'show bgp neighbors 198.51.100.2 json'"),
        timeout=30,
    )


def test_failback_restores_the_initial_state(lab: Lab, tmp_path: Path) -> None:
    session = Session(lab, "192.0.2.36", tmp_path / "session.log")
    try:
        run_drill(RUNBOOKS / "dc2-to-dc1.yml", tmp_path)
        session.wait_ok(5)
    finally:
        session.close()
    assert web_vrrp(lab, "dc1-edge", "eth3", 1) == "Master"
    assert web_vrrp(lab, "dc1-srv", "eth1", 10) == "Master"
    assert_paths(lab, serving="dc1")


def test_down_leaves_nothing(lab: Lab) -> None:
    shm_ids = postgres_shm_ids()
    assert len(shm_ids) == 2  # both clusters run: the check below means something
    lab.down()
    assert not [ns for ns in os.listdir("/run/netns") if ns.startswith("payment-dr-")]
    assert not LAB_RUN.exists()
    mounts = Path("/proc/self/mountinfo").read_text()
    assert "/run/drill/lab/payment-dr" not in mounts
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    leftovers = [
        line
        for line in ps.splitlines()
        if "payment-dr" in line or "/etc/frr/svc/" in line or "conntrackd -C /etc/frr" in line
    ]
    assert not leftovers, leftovers
    ipcs = subprocess.run(["ipcs", "-m"], capture_output=True, text=True, check=True).stdout
    live = {ln.split()[1] for ln in ipcs.splitlines() if ln.startswith("0x")}
    assert not shm_ids & live, "PostgreSQL shared memory left behind"
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert lab.plan.mgmt_bridge not in links
