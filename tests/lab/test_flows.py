"""Flows on the two-dc lab: the lab's own softflowd exporters, ``drill flows record`` with its
defaults, and ``flows check`` naming a dc1-only dependency before any drill.

The test plants the dependency itself: a TCP service on app1 (dc1, 192.0.2.11:5432) that
app2 (dc2) calls over the stretched VLAN, so only the bridge's exporter sees it.
Needs root; run serialized with the other lab users:
``flock /tmp/drill-lab.lock .venv/bin/pytest -m lab tests/lab/test_flows.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
SERVICES = """\
apiVersion: drill/v1
services:
  - {name: web, site: [dc1, dc2], dr: required, addresses: [192.0.2.10], ports: [80]}
  - {name: ledger-db, site: dc1, dr: required, addresses: [192.0.2.11], ports: [5432]}
  - {name: app, site: dc2, dr: required, addresses: [192.0.2.12]}
  - {name: gateway, site: [dc1, dc2], dr: required, addresses: [192.0.2.1]}
  - {name: gateway, site: dc1, dr: required, addresses: [192.0.2.2]}
  - {name: gateway, site: dc2, dr: required, addresses: [192.0.2.3]}
  - {name: users, site: wan, dr: deferred, addresses: [203.0.113.0/24]}
"""
RUNBOOK = """\
apiVersion: drill/v1
name: evacuate-dc1
inventory: {inventory}
evacuate: dc1
flows: {{catalog: catalog.json}}
probes:
  - {{name: client-http, kind: service, url: "http://192.0.2.10/", from: netns:two-dc-client}}
steps:
  - {{name: wait, kind: pause, duration: 10ms}}
"""


def drill(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "drill", *args], capture_output=True, text=True, timeout=timeout
    )


LEDGER_SERVER = """\
import socketserver
class Answer(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.sendall(b"ok\\n")
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("192.0.2.11", 5432), Answer).serve_forever()
"""


@pytest.fixture
def ledger(lab: Any) -> Iterator[None]:
    """A TCP service on app1's own address, started and stopped by this test; it must answer
    before the test goes on (a listener that failed to start would plant nothing)."""
    proc = subprocess.Popen(
        ["ip", "netns", "exec", lab.netns("app1"), sys.executable, "-c", LEDGER_SERVER],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(50):
            probe = lab.exec("app2", ["nc", "-z", "-w1", "192.0.2.11", "5432"], timeout=10)
            if probe.returncode == 0:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the planted ledger service on app1 never answered app2")
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def _traffic(lab: Any, stop: threading.Event) -> None:
    """What the lab carries all the time: users on the service, app2 on the ledger."""
    while not stop.is_set():
        lab.exec("client", ["curl", "-s", "-m", "2", "http://192.0.2.10/"], timeout=10)
        lab.exec("app2", ["nc", "-z", "-w1", "192.0.2.11", "5432"], timeout=10)
        stop.wait(0.5)


def test_record_catalog_and_check_name_the_dc1_only_dependency(
    lab: Any, ledger: None, tmp_path: Path
) -> None:
    exporters = json.loads(Path(f"/run/drill/lab/{lab.name}/flow-exporters/pids.json").read_text())
    assert {(e["node"], e["iface"]) for e in exporters} >= {
        ("dc1-edge", "eth1"), ("dc1-edge", "eth2"), ("dc2-edge", "eth1"), ("dc2-edge", "eth2"),
        ("br-dci", "dci-dc2e"), ("br-dci", "dci-app2"),
    }  # fmt: skip
    flows = tmp_path / "flows.jsonl"
    stop = threading.Event()
    worker = threading.Thread(target=_traffic, args=(lab, stop), daemon=True)
    worker.start()
    try:
        done = drill("flows", "record", "--for", "20s", "-o", str(flows))  # defaults: 0.0.0.0:2055
    finally:
        stop.set()
        worker.join(30)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in flows.read_text().splitlines()]
    exporters_seen = {r["exporter"] for r in records}
    # IPFIX from dc1-edge and the bridge's export port, NetFlow v9 from dc2-edge
    assert {"198.18.0.12", "198.18.0.13", "198.18.0.254"} <= exporters_seen, exporters_seen
    http = [r for r in records if r["dst_addr"] == "192.0.2.10" and r["dst_port"] == 80]
    assert http and http[0]["src_addr"] == "203.0.113.10"
    ledger_flows = [r for r in records if r["dst_addr"] == "192.0.2.11" and r["dst_port"] == 5432]
    assert ledger_flows and {r["src_addr"] for r in ledger_flows} == {"192.0.2.12"}
    assert {r["exporter"] for r in ledger_flows} == {"198.18.0.254"}  # only the DCI sees it

    services = tmp_path / "services.yml"
    services.write_text(SERVICES)
    catalog = tmp_path / "catalog.json"
    done = drill("flows", "catalog", str(flows), "--services", str(services), "-o", str(catalog))
    assert done.returncode == 0, done.stderr
    cat = json.loads(catalog.read_text())
    edges = {(f["client"]["service"], f["server"]["service"], f["port"]): f for f in cat["flows"]}
    assert edges[("app", "ledger-db", 5432)]["cross_site"] is True
    assert edges[("users", "web", 80)]["records"] >= 2

    runbook = tmp_path / "runbook.yml"
    runbook.write_text(RUNBOOK.format(inventory=REPO / "labs" / "two-dc" / "inventory"))
    done = drill("flows", "check", str(runbook), "--catalog", str(catalog), "--evacuate", "dc1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "[required] app@dc2 -> ledger-db@dc1 tcp/5432: ledger-db has no instance outside dc1"
        in done.stdout
    )
    assert "web@" not in done.stdout.split("\n", 1)[1].split("warning")[0]  # the VIP moves
    done = drill("plan", str(runbook))
    assert done.returncode == 0, done.stderr
    assert "app@dc2 -> ledger-db@dc1 tcp/5432" in done.stdout
