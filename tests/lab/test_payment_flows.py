"""Flows on labs/payment-dr: the lab's own softflowd exporters (edges' WAN uplinks and routed
DCI, the stretched VLAN's DCI port on br-dc2), ``drill flows record`` with its defaults,
``flows catalog`` with labs/payment-dr/services.yml, and ``flows check`` of the real
switchover runbook naming the planted dependency (auth in dc2 clearing large payments with
settlement, which runs in dc1 only), before and after a switchover.

The lab's background load pays small amounts only, and auth calls settlement for 1,000 or
more: with dc1 serving, that call stays inside dc1-srv and no exporter can see it. So, as an
engineer would, the recording window carries a DR-site canary: large payments sent to
dc2's own web instance (192.0.2.31), which makes dc2's auth clear them with dc1's
settlement across the DCI. After the switchover the same call is what customers' large
payments do. The lab is this module's (up once, down at the end). Needs root; serialized
with the other user of the lab:
``flock /tmp/drill-payment.lock .venv/bin/pytest -m lab tests/lab/test_payment_flows.py``.
"""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from drill.lab.lab import Lab

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = REPO / "labs" / "payment-dr"
SERVICES = LAB_DIR / "services.yml"
RUNBOOKS = REPO / "runbooks" / "payment"
MGMT = ipaddress.ip_network("198.18.2.0/24")
EDGES = {"198.18.2.12", "198.18.2.13"}  # dc1-edge, dc2-edge (management addresses)
CANARY = "http://192.0.2.31/?amount=5000"  # dc2's own web instance, a large payment
LARGE = "http://192.0.2.10/?amount=5000"  # the service address: dc2 after the switchover
TRAP = "[required] auth@dc2 -> settlement@dc1 tcp/8300: settlement has no instance outside dc1"


@pytest.fixture(scope="module")
def lab(payment_lab: Lab) -> Lab:
    """The session's payment lab (tests/conftest.py), brought up again if a module took it
    down."""
    payment_lab.up()
    return payment_lab


def drill(*args: str, state: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRILL_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "drill", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def pay(lab: Lab, url: str, stop: threading.Event, answers: list[str]) -> None:
    while not stop.is_set():
        done = lab.exec("client", ["curl", "-s", "-m", "3", url], timeout=10)
        answers.append(done.stdout.strip())
        stop.wait(0.5)


def record(lab: Lab, url: str, seconds: int, tmp_path: Path) -> tuple[Path, list[str]]:
    """Record with the defaults (0.0.0.0:2055) while ``url`` is paid twice a second; keep
    this lab's exporters only (two-dc may be up and exporting to the same port)."""
    raw, mine = tmp_path / "all.jsonl", tmp_path / "flows.jsonl"
    answers: list[str] = []
    stop = threading.Event()
    worker = threading.Thread(target=pay, args=(lab, url, stop, answers), daemon=True)
    worker.start()
    try:
        done = drill("flows", "record", "--for", f"{seconds}s", "-o", str(raw), state=tmp_path)
    finally:
        stop.set()
        worker.join(30)
    assert done.returncode == 0, done.stderr
    lines = [
        line
        for line in raw.read_text().splitlines()
        if ipaddress.ip_address(json.loads(line)["exporter"]) in MGMT
    ]
    mine.write_text("".join(f"{line}\n" for line in lines))
    return mine, answers


def catalog_and_check(flows: Path, tmp_path: Path) -> tuple[dict[str, Any], str]:
    catalog = tmp_path / "catalog.json"
    done = drill(
        "flows", "catalog", str(flows), "--services", str(SERVICES), "-o", str(catalog),
        state=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    check = drill(
        "flows", "check", str(RUNBOOKS / "dc1-to-dc2.yml"), "--catalog", str(catalog),
        "--evacuate", "dc1", state=tmp_path,
    )  # fmt: skip
    assert check.returncode == 1, check.stdout + check.stderr
    return json.loads(catalog.read_text()), check.stdout


def settlement_records(flows: Path) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in flows.read_text().splitlines()]
    return [r for r in records if r["dst_addr"] == "192.0.2.27" and r["dst_port"] == 8300]


def test_before_switchover_a_dr_canary_shows_the_dependency(lab: Lab, tmp_path: Path) -> None:
    exporters = json.loads((lab.plan.run_dir / "flow-exporters" / "pids.json").read_text())
    assert {(e["node"], e["iface"]) for e in exporters} >= {
        ("dc1-edge", "eth1"), ("dc1-edge", "eth2"), ("dc2-edge", "eth1"), ("dc2-edge", "eth2"),
        ("br-dc2", "dci-l2"),
    }  # fmt: skip
    flows, answers = record(lab, CANARY, 30, tmp_path)
    assert answers and all(a.endswith("auth@dc2-srv db@dc1-srv hsm@dc2-srv settlement@dc1-srv")
                           for a in answers), answers  # fmt: skip

    trap = settlement_records(flows)
    # auth calls from its own service address: the record names auth, not its host.
    assert trap and {r["src_addr"] for r in trap} == {"192.0.2.32"}, trap
    assert not {r["exporter"] for r in trap} & EDGES  # no router sees it: only the DCI port

    catalog, report = catalog_and_check(flows, tmp_path)
    edges = {(f["client"]["service"], f["server"]["service"], f["port"]) for f in catalog["flows"]}
    # The lab's own service traffic: customers on the web address (the load generator),
    # dc2's auth writing to the primary in dc1, and the standby's replication (PostgreSQL
    # connects from its host's address).
    assert ("customers", "web", 80) in edges, edges
    assert ("auth", "db", 5432) in edges, edges
    assert ("dc2-srv", "db", 5432) in edges, edges
    assert catalog["unknown_endpoints"] == [], catalog["unknown_endpoints"]
    assert report.startswith("FAIL: "), report
    assert TRAP in report, report
    assert "web@" not in report.split("warning")[0].split("\n", 1)[1]  # the web address moves


def test_after_switchover_customers_large_payments_show_it(lab: Lab, tmp_path: Path) -> None:
    report_dir = tmp_path / "switchover"
    done = drill(
        "run", str(RUNBOOKS / "dc1-to-dc2.yml"), "--yes", "--report-dir", str(report_dir),
        state=tmp_path / "state",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    try:
        flows, answers = record(lab, LARGE, 15, tmp_path)
        assert answers and all(a.startswith("web@dc2-srv auth@dc2-srv") for a in answers)
        assert all(a.endswith("settlement@dc1-srv") for a in answers), answers
        assert settlement_records(flows)
        _, report = catalog_and_check(flows, tmp_path)
        assert TRAP in report, report
    finally:
        done = drill(
            "run", str(RUNBOOKS / "dc2-to-dc1.yml"), "--yes", "--report-dir",
            str(tmp_path / "failback"), state=tmp_path / "state",
        )  # fmt: skip
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
