"""labs/payment-dr: the session probe of the payment drills against the firewalls' state sync.

With conntrackd sync on (the lab as shipped) the 50 sessions the switchover and the failback
carry from one stateful firewall to the other all survive; with sync off every one is lost.
The report's count is checked against the session server's own sockets: a session the new
firewall drops never closes on the server (its FIN is dropped too), so after the drill the
server still holds exactly the lost sessions as ESTABLISHED (``ss -tn``), and none of the
ones that survived (they closed cleanly at the probe's end).

One switchover and one failback per sync setting, on the session's shared payment lab
(tests/conftest.py). Heavy: ``flock /tmp/drill-payment.lock .venv/bin/pytest -m lab
tests/lab/test_payment_sessions.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from drill.lab.lab import Lab

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
RUNBOOKS = REPO / "runbooks" / "payment"
CLIENT = "203.0.113.10"
# (runbook, session server node, its fixed session address) as the runbooks name them.
DRILLS = (
    ("dc1-to-dc2", "dc1-srv", "192.0.2.26"),
    ("dc2-to-dc1", "dc2-srv", "192.0.2.36"),
)


@pytest.fixture(scope="module")
def lab(payment_lab: Lab) -> Lab:
    payment_lab.up()  # an earlier module may have taken it down
    return payment_lab


def sh(lab: Lab, node: str, command: str) -> str:
    done = lab.exec(node, ["sh", "-c", command], timeout=60)
    assert done.returncode == 0, f"{node}: {command}: {done.stderr or done.stdout}"
    return done.stdout.strip()


def set_sync(lab: Lab, mode: str) -> None:
    for edge in ("dc1-edge", "dc2-edge"):
        sh(lab, edge, f"sh /etc/frr/fw/fwsync.sh {mode}")


def server_sessions(lab: Lab, node: str, address: str) -> set[str]:
    """The client's ESTABLISHED sessions on the echo server, by client address:port."""
    out = sh(lab, node, f"ss -Htn state established src {address}:7007 dst {CLIENT}")
    return {line.split()[-1] for line in out.splitlines() if line.strip()}


def unlimited_copy(stem: str) -> Path:
    """The runbook without ``max_lost_sessions``, next to it (its relative paths hold), so
    that with sync off the drill runs to the end instead of rolling back on the first loss."""
    text = (RUNBOOKS / f"{stem}.yml").read_text()
    assert "    max_lost_sessions: 0\n" in text
    copy = RUNBOOKS / f".test-unlimited-{os.getpid()}-{stem}.yml"
    copy.write_text(text.replace("    max_lost_sessions: 0\n", ""))
    return copy


def run_drill(runbook: Path, tmp_path: Path) -> dict[str, Any]:
    report_dir = tmp_path / runbook.stem
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "drill",
            "run",
            str(runbook),
            "--yes",
            "--report-dir",
            str(report_dir),
        ],
        cwd=REPO,
        env={**os.environ, "DRILL_STATE_DIR": str(tmp_path / "state")},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    report_file = report_dir / "report.json"
    assert report_file.exists(), done.stdout + done.stderr
    report: dict[str, Any] = json.loads(report_file.read_text())
    assert done.returncode == 0, json.dumps(report, indent=1)[:4000]
    assert report["outcome"] == "succeeded"
    return report


def session_probe(report: dict[str, Any]) -> dict[str, Any]:
    probes = [p for p in report["probes"] if p["kind"] == "session"]
    assert len(probes) == 1, [p["name"] for p in report["probes"]]
    probe: dict[str, Any] = probes[0]
    return probe


def lingering(lab: Lab, node: str, address: str, before: set[str], expected: int) -> int:
    """Sessions new since ``before`` still ESTABLISHED on the server, once closes settled."""
    deadline = time.monotonic() + 10
    while True:
        count = len(server_sessions(lab, node, address) - before)
        if count == expected or time.monotonic() > deadline:
            return count
        time.sleep(0.5)


@pytest.mark.parametrize("sync", ["on", "off"])
def test_sessions_survive_a_switchover_only_with_state_sync(
    lab: Lab, tmp_path: Path, sync: str
) -> None:
    set_sync(lab, sync)
    copies: list[Path] = []
    try:
        for stem, server, address in DRILLS:
            runbook = RUNBOOKS / f"{stem}.yml"
            if sync == "off":
                runbook = unlimited_copy(stem)
                copies.append(runbook)
            before = server_sessions(lab, server, address)
            probe = session_probe(run_drill(runbook, tmp_path))
            assert probe["sessions_opened"] == 50
            lost = probe["sessions_lost"]
            if sync == "on":
                assert lost == 0, probe["session_losses"][:3]
            else:
                assert lost == 50, f"{stem}: only {lost} of 50 lost without sync"
                assert len(probe["session_losses"]) == lost
            assert probe["sessions_survived"] == 50 - lost
            # The independent count: what the server still holds open.
            assert lingering(lab, server, address, before, lost) == lost, stem
    finally:
        for copy in copies:
            copy.unlink(missing_ok=True)
        set_sync(lab, "on")
