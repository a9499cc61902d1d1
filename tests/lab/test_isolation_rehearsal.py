"""The isolation rehearsal on labs/payment-dr (docs/flows.md, "Isolation rehearsal"): the
shipped switchover with isolation fails naming the planted dependency and rolls back exactly;
each dependency it names is re-checked with nc from the flow's own node during a manual
``drill lab fault`` isolation; the fixed variant passes and its failback returns the lab to
its first state; a SIGKILLed orchestrator during the cut leaves no site isolated after the
lab's timer, and ``drill status``/``abort`` say and do the right thing.

Uses the session's payment lab (tests/conftest.py). Serialized with the lab's other users:
``flock /tmp/drill-payment.lock .venv/bin/pytest -m lab tests/lab/test_isolation_rehearsal.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from drill.lab.lab import Lab

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = REPO / "labs" / "payment-dr"
RUNBOOKS = REPO / "runbooks" / "payment"
PLANTED = "auth@dc2 -> settlement@dc1 tcp/8300"
SMALL = "http://192.0.2.10/?amount=42"
LARGE = "http://192.0.2.10/?amount=5000"


@pytest.fixture(scope="module")
def lab(payment_lab: Lab) -> Lab:
    payment_lab.up()
    return payment_lab


def drill(*args: str, state: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRILL_STATE_DIR": str(state)}
    return subprocess.run(
        [sys.executable, "-m", "drill", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def report_of(directory: Path, done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    path = directory / "report.json"
    assert path.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def answers(lab: Lab, url: str) -> str:
    done = lab.exec("client", ["curl", "-s", "-m", "5", url], timeout=15)
    return done.stdout.strip()


def reaches(lab: Lab, node: str, source: str, address: str, port: int) -> bool:
    """An independent check of one flow: nc from the flow's own node and client address."""
    done = lab.exec(node, ["nc", "-z", "-w", "2", "-s", source, address, str(port)], timeout=15)
    return done.returncode == 0


def assert_initial_state(lab: Lab, within: float = 30.0) -> None:
    """DC1 serves the whole chain and settles. A cut that just lifted leaves VRRP and BGP a
    few seconds to settle back (a backup that lost its master's adverts took over), so this
    waits for the state, up to ``within``."""
    small = "web@dc1-srv auth@dc1-srv db@dc1-srv hsm@dc1-srv"
    deadline = time.monotonic() + within
    while True:
        got = (answers(lab, SMALL), answers(lab, LARGE))
        if got[0] == small and got[1].endswith("settlement@dc1-srv"):
            return
        assert time.monotonic() < deadline, f"not back to the initial state: {got}"
        time.sleep(0.5)


def test_the_isolated_switchover_names_the_planted_flow_and_rolls_back(
    lab: Lab, tmp_path: Path
) -> None:
    assert_initial_state(lab)
    out = tmp_path / "isolated"
    done = drill(
        "run", str(RUNBOOKS / "dc1-to-dc2-isolated.yml"), "--yes", "--report-dir", str(out),
        state=tmp_path / "state",
    )  # fmt: skip
    report = report_of(out, done)
    assert done.returncode == 1, done.stderr[-3000:]
    assert report["outcome"] == "rolled_back"
    assert all(r["exact"] for r in report["restore"].values()) and report["restore"]
    iso = report["isolation"]
    assert iso["site"] == "dc1" and iso["verdict"] == "fail"
    assert iso["lifted_by"] == "lab timer"
    assert iso["hidden_dependencies"] == [PLANTED]
    (flow,) = [f for f in iso["flows"] if f["flow"] == PLANTED]
    assert flow["status"] == "broken" and flow["during"]["failed_pct"] == 100.0
    assert flow["before"]["failed"] == 0 and flow["recovered_s"] is not None
    assert flow["evidence"]["records"] > 0
    # every other required flow kept working while dc1 was cut off
    others = [f for f in iso["flows"] if f["tier"] == "required" and f["flow"] != PLANTED]
    assert others and all(f["status"] == "ok" for f in others), others
    assert f"{PLANTED}: 100% failed during isolation" in done.stderr
    (step,) = [s for s in report["steps"] if s["phase"] == "isolate"]
    assert step["status"] == "failed"
    # The rollback came after the cut lifted, and left the lab as it was.
    assert_initial_state(lab)

    # Truth: every flow the report names breaks under a manual isolation, checked with nc
    # from the flow's own node and address, and works again once it is cleared.
    named = [f for f in iso["flows"] if f["flow"] in iso["hidden_dependencies"]]
    for f in named:
        probe = f["probe"]
        args = (probe["host"], probe["source"], probe["target"], probe["port"])
        assert reaches(lab, *args), f
    cut = drill("lab", "fault", str(LAB_DIR), "site", "dc1", "--for", "30s", state=tmp_path)
    assert cut.returncode == 0, cut.stderr
    try:
        for f in named:
            probe = f["probe"]
            args = (probe["host"], probe["source"], probe["target"], probe["port"])
            assert not reaches(lab, *args), f
        # and a flow the rehearsal found fine stays fine under the same cut
        fine = others[0]["probe"]
        if fine["method"] == "tcp":
            assert reaches(lab, fine["host"], fine["source"], fine["target"], fine["port"])
    finally:
        cleared = drill("lab", "fault", str(LAB_DIR), "--clear", state=tmp_path)
    assert cleared.returncode == 0, cleared.stderr
    for f in named:
        probe = f["probe"]
        assert reaches(lab, probe["host"], probe["source"], probe["target"], probe["port"])


def test_the_fixed_switchover_passes_and_its_failback_restores_the_lab(
    lab: Lab, tmp_path: Path
) -> None:
    assert_initial_state(lab)
    out = tmp_path / "fixed"
    done = drill(
        "run", str(RUNBOOKS / "dc1-to-dc2-fixed.yml"), "--yes", "--report-dir", str(out),
        state=tmp_path / "state",
    )  # fmt: skip
    report = report_of(out, done)
    assert done.returncode == 0, done.stderr[-4000:]
    assert report["outcome"] == "succeeded"
    iso = report["isolation"]
    assert iso["verdict"] == "ok" and iso["hidden_dependencies"] == []
    (flow,) = [f for f in iso["flows"] if f["flow"] == PLANTED]
    assert flow["status"] == "ok" and flow["during"]["attempts"] > 0
    assert answers(lab, LARGE).endswith("settlement@dc2-srv")
    back = tmp_path / "failback"
    done = drill(
        "run", str(RUNBOOKS / "dc2-to-dc1.yml"), "--yes", "--report-dir", str(back),
        state=tmp_path / "state",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    assert report_of(back, done)["outcome"] == "succeeded"
    assert_initial_state(lab)


def test_the_cut_on_devices_reverts_by_itself_and_finds_the_same_flow(
    lab: Lab, tmp_path: Path
) -> None:
    """The same rehearsal with the cut as config steps on the FRR devices, committed under
    the driver's revert timer and never confirmed: the devices end the cut themselves."""
    assert_initial_state(lab)
    out = tmp_path / "devices"
    done = drill(
        "run", str(RUNBOOKS / "dc1-to-dc2-isolated-devices.yml"), "--yes",
        "--report-dir", str(out), state=tmp_path / "state",
    )  # fmt: skip
    report = report_of(out, done)
    assert done.returncode == 1 and report["outcome"] == "rolled_back", done.stderr[-3000:]
    iso = report["isolation"]
    assert (iso["means"], iso["lab"], iso["lifted_by"]) == ("devices", None, "device revert timer")
    assert iso["hidden_dependencies"] == [PLANTED]
    cut_steps = [s for s in report["steps"] if s["phase"] == "isolate" and s["kind"] == "config"]
    assert {h for s in cut_steps for h in s["hosts"]} == {"dc1-edge", "dc1-srv"}
    (reverted,) = [
        s for s in report["steps"] if s["name"] == "devices revert the cut by themselves"
    ]
    assert reverted["status"] == "ok" and set(reverted["hosts"]) == {"dc1-edge", "dc1-srv"}
    assert all(r["exact"] for r in report["restore"].values())
    assert {"dc1-edge", "dc1-srv"} <= set(report["restore"])
    assert_initial_state(lab)


def _wait_for_cut(
    journal: Path, proc: subprocess.Popen[str], within: float, count: int = 1
) -> list[dict[str, Any]]:
    """The journal's isolation ``cut`` entries, once there are ``count`` of them."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        assert proc.poll() is None, "drill ended before its isolation"
        if journal.exists():
            cuts = [
                e
                for e in map(json.loads, journal.read_text().splitlines())
                if e.get("event") == "isolation" and e.get("action") == "cut"
            ]
            if len(cuts) >= count:
                return cuts
        time.sleep(0.2)
    raise AssertionError("no isolation cut journaled")


def test_sigkill_during_isolation_leaves_no_site_cut_off(lab: Lab, tmp_path: Path) -> None:
    assert_initial_state(lab)
    state = tmp_path / "state"
    env = {**os.environ, "DRILL_STATE_DIR": str(state)}
    catalog = tmp_path / "catalog.json"  # the run's --catalog; gone before the abort
    shutil.copyfile(RUNBOOKS / "catalog.json", catalog)
    proc = subprocess.Popen(
        [sys.executable, "-m", "drill", "run", str(RUNBOOKS / "dc1-to-dc2-isolated.yml"), "--yes",
         "--catalog", str(catalog)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        (run_dir,) = _wait_for_run_dir(state, proc)
        # the cut is journaled before it is made, then again once made with its bound
        cuts = _wait_for_cut(run_dir / "journal.jsonl", proc, within=180, count=2)
        time.sleep(1.0)  # inside the cut
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    until = datetime.fromisoformat(cuts[-1]["until"]).timestamp()
    assert time.time() < until, "killed after the cut was due to lift: no proof"
    # dead orchestrator, site still cut off: the dependency is unreachable right now
    assert not reaches(lab, "dc2-srv", "192.0.2.32", "192.0.2.27", 8300)
    status = drill("status", run_dir.name, state=state)
    assert "dead in postchecking" in status.stdout, status.stdout
    assert "the lab lifts it by itself" in status.stdout.replace("\n", " "), status.stdout
    # Nobody lifts it but the lab: within the timer (+2 s) the site is back.
    time.sleep(max(0.0, until - time.time()))
    deadline = time.monotonic() + 2.0
    while not reaches(lab, "dc2-srv", "192.0.2.32", "192.0.2.27", 8300):
        assert time.monotonic() < deadline, "dc1 still cut off 2 s after the lab's timer"
    status = drill("status", run_dir.name, state=state)
    assert "lab's own timer has" in status.stdout.replace("\n", " "), status.stdout
    # abort: lifts nothing (the lab did), says so, and rolls the switchover back exactly;
    # it runs no rehearsal, so the catalog it was run with is not needed
    catalog.unlink()
    out = tmp_path / "abort"
    done = drill("abort", run_dir.name, "--report-dir", str(out), state=state)
    report = report_of(out, done)
    assert done.returncode == 1 and report["outcome"] == "rolled_back", done.stderr[-3000:]
    assert all(r["exact"] for r in report["restore"].values())
    assert any("lab's own timer lifted it" in n for n in report["notes"]), report["notes"]
    assert_initial_state(lab)


def _wait_for_run_dir(state: Path, proc: subprocess.Popen[str]) -> list[Path]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = sorted((state / "runs").glob("*")) if (state / "runs").exists() else []
        if runs:
            return runs
        assert proc.poll() is None, "drill ended at once"
        time.sleep(0.2)
    raise AssertionError("no run directory")
