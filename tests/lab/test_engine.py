"""The engine against the real FRR lab: a switchover that succeeds (and a second runbook
that restores it), one rolled back with every restore exact, and a dry-run that leaves
every running config byte-identical.

Serialize lab use: ``flock /tmp/drill-lab.lock .venv/bin/pytest tests/lab/test_engine.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.lab

DATA = Path(__file__).parent / "data"
EDGES = ("dc1-edge", "dc2-edge")


def running(lab: Any, node: str) -> str:
    done = lab.exec(node, ["vtysh", "-c", "show running-config"])
    assert done.returncode == 0, done.stderr
    return str(done.stdout)


def vrrp_state(lab: Any, node: str) -> str:
    done = lab.exec(node, ["vtysh", "-c", "show vrrp 1 json"])
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)[0]["v4"]["status"])


def drill_run(lab: Any, tmp_path: Path, runbook: str, *extra: str) -> tuple[int, dict[str, Any]]:
    report_dir = tmp_path / runbook.removesuffix(".yml")
    argv = [
        sys.executable, "-m", "drill", "run", str(DATA / runbook),
        "-i", str(lab.inventory_dir), "--yes", "--report-dir", str(report_dir), *extra,
    ]  # fmt: skip
    env = {**os.environ, "DRILL_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300, check=False)
    report_file = report_dir / "report.json"
    assert report_file.exists(), done.stderr + done.stdout
    return done.returncode, json.loads(report_file.read_text())


def test_switchover_succeeds_then_restored(lab: Any, tmp_path: Path) -> None:
    before = {node: running(lab, node) for node in EDGES}
    code, report = drill_run(lab, tmp_path, "vrrp-to-dc2.yml")
    try:
        assert code == 0, report
        assert report["outcome"] == "succeeded"
        assert vrrp_state(lab, "dc2-edge") == "Master"
        assert vrrp_state(lab, "dc1-edge") == "Backup"
        assert "vrrp 1 priority 250" in running(lab, "dc2-edge")
        change = next(s for s in report["steps"] if s["name"] == "raise dc2-edge priority")
        assert change["hosts"]["dc2-edge"]["changed"]  # committed and confirmed
        trace = next(s for s in report["steps"] if s["name"].startswith("client reaches"))
        assert trace["status"] == "ok", trace
    finally:
        code, report = drill_run(lab, tmp_path, "vrrp-back.yml")
    assert code == 0, report
    assert vrrp_state(lab, "dc1-edge") == "Master"
    assert {node: running(lab, node) for node in EDGES} == before


def test_failed_postcheck_rolls_back_exactly(lab: Any, tmp_path: Path) -> None:
    before = {node: running(lab, node) for node in EDGES}
    code, report = drill_run(lab, tmp_path, "vrrp-broken.yml")
    assert code == 1, report
    assert report["outcome"] == "rolled_back"
    restore = report["restore"]
    assert set(restore) == {"dc2-edge"}  # only the host that was changed
    assert all(entry["exact"] for entry in restore.values()), restore
    assert {node: running(lab, node) for node in EDGES} == before
    assert vrrp_state(lab, "dc1-edge") == "Master"


def test_dry_run_changes_nothing(lab: Any, tmp_path: Path) -> None:
    before = {node: running(lab, node) for node in EDGES}
    code, report = drill_run(lab, tmp_path, "dry-run.yml", "--dry-run")
    assert code == 0, report
    assert report["outcome"] == "dry_run"
    after = {node: running(lab, node) for node in EDGES}
    assert after == before  # byte-identical
    diffs = [
        host["diff"]
        for step in report["steps"]
        if step["name"] == "drain via graceful shutdown"
        for host in step["hosts"].values()
    ]
    assert diffs and all("graceful-shutdown" in d for d in diffs)
