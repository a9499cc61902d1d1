"""Fail-safe behaviour against the real FRR lab (issue 5): the dead-man switch after a
management cut, devices unreachable in the middle of a run, SIGTERM/SIGINT, secrets in every
output, snapshot modes and SSH host-key checks.

Faults come from ``drill lab fault`` (management blackhole), injected at an exact point of a
run by the TEST-ONLY hook ``DRILL_TEST_EXEC_AT`` of tests/lab/faultdrill.py (the drill
command with fault hooks; the shipped ``drill`` ignores those variables).

    flock /tmp/drill-lab.lock .venv/bin/pytest -s tests/lab/test_reliability.py
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drill.drivers.frr.config import normalize_running_config

pytestmark = pytest.mark.lab

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "labs" / "two-dc"
EDGES = ("dc1-edge", "dc2-edge")
PASSWORD = "drill-lab"  # the lab's password (labs/two-dc/README.md), given via the env
BGP_SECRET = "Bgp-S3cret-71x"
REVERT_LOG = "/var/run/frr/drill/revert.log"


def running(lab: Any, node: str) -> str:
    done = lab.exec(node, ["vtysh", "-c", "show running-config"])
    assert done.returncode == 0, done.stderr
    return normalize_running_config(done.stdout)


def edges(lab: Any) -> dict[str, str]:
    return {node: running(lab, node) for node in EDGES}


def fault(*args: str) -> None:
    argv = [sys.executable, "-m", "drill", "lab", "fault", str(LAB), *args]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr


def fault_command(node: str) -> str:
    return f"{sys.executable} -m drill lab fault {LAB} mgmt {node} --mode blackhole"


@pytest.fixture
def inventory(lab: Any, tmp_path: Path) -> Path:
    """The lab inventory with the password from the environment and short timeouts."""
    target = tmp_path / "inventory"
    shutil.copytree(lab.inventory_dir, target)
    (target / "defaults.yaml").write_text(
        "---\n"
        "username: root\n"
        "password: ${env:DRILL_LAB_PASSWORD}\n"
        "port: 22\n"
        "connection_options:\n"
        "  napalm:\n"
        "    extras:\n"
        "      optional_args:\n"
        f"        known_hosts_file: {tmp_path / 'known_hosts'}\n"
        "        timeout: 5\n"
        "        command_timeout: 8\n"
    )
    shutil.copy(lab.known_hosts, tmp_path / "known_hosts")
    return target


@pytest.fixture
def clean(lab: Any) -> Iterator[dict[str, str]]:
    """Edge configs before the test; faults cleared and configs compared after it."""
    before = edges(lab)
    yield before
    fault("--clear")


class Drill:
    def __init__(self, tmp_path: Path, inventory: Path) -> None:
        self.state = tmp_path / "state"
        self.reports = tmp_path / "reports"
        self.inventory = inventory
        self.env = {
            **os.environ,
            "DRILL_STATE_DIR": str(self.state),
            "DRILL_LAB_PASSWORD": PASSWORD,
        }
        for name in ("DRILL_TEST_CRASH_AT", "DRILL_TEST_EXEC_AT", "DRILL_TEST_EXEC"):
            self.env.pop(name, None)

    def argv(self, *args: str, hooked: bool = False) -> list[str]:
        entry = [str(Path(__file__).parent / "faultdrill.py")] if hooked else ["-m", "drill"]
        return [sys.executable, *entry, *args]

    def run(self, book: str, *extra: str, env: dict[str, str] | None = None) -> Any:
        argv = self.argv(
            "run", str(DATA / book), "-i", str(self.inventory), "--yes",
            "--report-dir", str(self.reports), *extra, hooked=bool(env),
        )  # fmt: skip
        return subprocess.run(
            argv, capture_output=True, text=True, env={**self.env, **(env or {})},
            timeout=600, check=False,
        )  # fmt: skip

    def cli(self, *args: str) -> Any:
        return subprocess.run(
            self.argv(*args), capture_output=True, text=True, env=self.env, timeout=600,
            check=False,
        )  # fmt: skip

    def report(self) -> dict[str, Any]:
        return dict(json.loads((self.reports / "report.json").read_text()))

    def run_dir(self) -> Path:
        (path,) = list((self.state / "runs").iterdir())
        return path

    def journal(self) -> list[dict[str, Any]]:
        text = (self.run_dir() / "journal.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines()]


# --- 2. dead-man switch ---------------------------------------------------------------


def revert_lines(lab: Any, node: str) -> list[str]:
    done = lab.exec(node, ["sh", "-c", f"cat {REVERT_LOG} 2>/dev/null || true"])
    return [line for line in done.stdout.splitlines() if line.strip()]


def test_mgmt_cut_after_commit_confirm_device_reverts_itself(
    lab: Any, tmp_path: Path, inventory: Path, clean: dict[str, str]
) -> None:
    drill = Drill(tmp_path, inventory)
    seen = len(revert_lines(lab, "dc2-edge"))
    env = {
        **drill.env,
        # the driver names a device by its address
        "DRILL_TEST_EXEC_AT": f"fresh_session:{lab.mgmt_ip('dc2-edge')}",
        "DRILL_TEST_EXEC": fault_command("dc2-edge"),
    }
    argv = drill.argv(
        "run", str(DATA / "rel-deadman.yml"), "-i", str(inventory), "--yes",
        "--report-dir", str(drill.reports), hooked=True,
    )  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        committed = _wait_for(lambda: _commit_time(drill), 120, "the commit-confirm commit")
        # the device's own timer restores the config while management is still cut
        _wait_for(lambda: any("revert done" in x for x in revert_lines(lab, "dc2-edge")[seen:]),
                  120, "the device-side revert")  # fmt: skip
        revert_s = time.time() - committed
        assert running(lab, "dc2-edge") == clean["dc2-edge"]
        fault("--clear", "mgmt", "dc2-edge")
        _out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"\ndead-man: revert observed {revert_s:.1f} s after the commit (timer 10 s)")
    report = drill.report()
    assert proc.returncode == 1, err.decode()[-3000:]
    assert report["outcome"] == "rolled_back"
    assert report["restore"]["dc2-edge"]["exact"] is True
    notes = [e["text"] for e in drill.journal() if e["event"] == "note"]
    assert any("reverted the unconfirmed change by itself" in n for n in notes), notes
    events = drill.journal()
    assert any(e["event"] == "committed" and e["confirmed"] is False for e in events)
    assert edges(lab) == clean


def _commit_time(drill: Drill) -> float | None:
    try:
        events = drill.journal()
    except (ValueError, FileNotFoundError):
        return None
    for event in events:
        if event["event"] == "commit_started":
            from datetime import datetime

            return datetime.fromisoformat(event["ts"]).timestamp()
    return None


def _wait_for(probe: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


# --- 3. unreachable devices -----------------------------------------------------------


def test_unreachable_mid_step_rolls_back_what_changed(
    lab: Any, tmp_path: Path, inventory: Path, clean: dict[str, str]
) -> None:
    drill = Drill(tmp_path, inventory)
    done = drill.run(
        "rel-unreachable-batch.yml",
        env={
            "DRILL_TEST_EXEC_AT": "committed:second change",
            "DRILL_TEST_EXEC": fault_command("dc2-edge"),
        },
    )
    report = drill.report()
    assert done.returncode == 1, done.stderr[-3000:]
    assert report["outcome"] == "rolled_back"
    assert set(report["restore"]) == {"dc1-edge"}  # dc2-edge was never changed
    assert report["restore"]["dc1-edge"]["exact"] is True
    rollbacks = [s["name"] for s in report["steps"] if s["phase"] == "rollback"]
    assert rollbacks == [
        "restore config before 'second change'",
        "restore config before 'first change'",
    ]
    fault("--clear", "mgmt", "dc2-edge")
    assert edges(lab) == clean


def test_unreachable_changed_device_is_named_then_abort_restores(
    lab: Any, tmp_path: Path, inventory: Path, clean: dict[str, str]
) -> None:
    drill = Drill(tmp_path, inventory)
    done = drill.run(
        "rel-unreachable-changed.yml",
        env={
            "DRILL_TEST_EXEC_AT": "step_ended:change dc2-edge",
            "DRILL_TEST_EXEC": fault_command("dc2-edge"),
        },
    )
    report = drill.report()
    assert done.returncode == 3, done.stderr[-3000:]
    assert report["outcome"] == "rollback_failed"
    loud = [n for n in report["notes"] if n.startswith("OPERATOR: dc2-edge")]
    assert loud, report["notes"]
    assert "change dc2-edge" in loud[0] and "drill abort" in loud[0]
    assert "initial--dc2-edge.cfg" in loud[0]  # where the pre-drill config is
    assert "OPERATOR: dc2-edge" in done.stderr  # on the console too
    run_id = report["run_id"]
    # the devices stay locked by the failed run until someone deals with them
    again = drill.run("rel-unreachable-changed.yml")
    assert again.returncode == 5 and run_id in again.stderr
    fault("--clear", "mgmt", "dc2-edge")
    assert running(lab, "dc2-edge") != clean["dc2-edge"]  # still changed: nobody lied
    aborted = drill.cli("abort", run_id, "--json")
    assert aborted.returncode == 1, aborted.stderr[-3000:]
    summary = json.loads(aborted.stdout)
    assert summary["outcome"] == "rolled_back"
    assert edges(lab) == clean
    status = json.loads(drill.cli("status", run_id, "--json").stdout)
    assert status[0]["state"] == "rolled_back"


# --- 4. signals -----------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_during_pause_rolls_back_exactly(
    lab: Any, tmp_path: Path, inventory: Path, clean: dict[str, str], sig: signal.Signals
) -> None:
    drill = Drill(tmp_path, inventory)
    argv = drill.argv(
        "run", str(DATA / "rel-signal.yml"), "-i", str(inventory), "--yes",
        "--report-dir", str(drill.reports),
    )  # fmt: skip
    proc = subprocess.Popen(argv, env=drill.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(lambda: _step_running(drill, "soak"), 120, "the pause step")
        proc.send_signal(sig)
        _out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    report = drill.report()
    assert proc.returncode == 1, err.decode()[-3000:]
    assert report["outcome"] == "rolled_back"
    assert set(report["restore"]) == set(EDGES)
    assert all(entry["exact"] for entry in report["restore"].values())
    assert edges(lab) == clean


def _step_running(drill: Drill, name: str) -> bool:
    try:
        events = drill.journal()
    except (ValueError, FileNotFoundError):
        return False
    return any(e["event"] == "step_started" and e.get("name") == name for e in events)


# --- 7. secrets, snapshot modes, host keys --------------------------------------------


def test_secrets_reach_no_output(
    lab: Any, tmp_path: Path, inventory: Path, clean: dict[str, str]
) -> None:
    drill = Drill(tmp_path, inventory)
    junit = tmp_path / "junit.xml"
    argv = drill.argv(
        "-v", "run", str(DATA / "rel-secrets.yml"), "-i", str(inventory), "--yes",
        "--report-dir", str(drill.reports), "--junit", str(junit), "--json",
    )  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=drill.env, timeout=600)
    assert done.returncode == 1, done.stderr[-3000:]
    report = drill.report()
    assert report["outcome"] == "rolled_back"
    assert "DEBUG" in done.stderr  # -v really was on
    run_dir = drill.run_dir()
    snapshots = run_dir / "snapshots"
    searched = {"stdout": done.stdout, "stderr": done.stderr}
    for path in [*run_dir.rglob("*"), *drill.reports.rglob("*"), junit]:
        if path.is_file() and snapshots not in path.parents:
            searched[str(path)] = path.read_text(errors="replace")
    assert len(searched) >= 6, sorted(searched)
    for secret in (PASSWORD, BGP_SECRET):
        leaks = [where for where, text in searched.items() if secret in text]
        assert not leaks, f"{secret!r} found in {leaks}"
    # the masked diff still shows THAT a password was set
    assert "password <redacted>" in json.dumps(report)
    # snapshots keep the real configs for the restore: owner-only
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(snapshots.stat().st_mode) == 0o700
    files = list(snapshots.iterdir())
    assert files and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files)
    assert edges(lab) == clean


def _wrong_known_hosts(path: Path) -> None:
    """dc1-edge's entry replaced by dc2-edge's key."""
    lines = path.read_text().splitlines()
    key = next(x.split(" ", 1)[1] for x in lines if x.startswith("198.18.0.13 "))
    fixed = [f"198.18.0.12 {key}" if x.startswith("198.18.0.12 ") else x for x in lines]
    path.write_text("\n".join(fixed) + "\n")


def test_wrong_host_key_fails_before_any_change(
    lab: Any, tmp_path: Path, inventory: Path, clean: dict[str, str]
) -> None:
    _wrong_known_hosts(tmp_path / "known_hosts")
    drill = Drill(tmp_path, inventory)
    done = drill.run("rel-hostkeys.yml")
    report = drill.report()
    assert done.returncode == 4, done.stderr[-3000:]  # precheck_failed: nothing changed
    assert report["outcome"] == "precheck_failed"
    assert report["host_key_policy"] == "strict"
    assert "host key does not match" in done.stderr
    events = drill.journal()
    assert not [e for e in events if e["event"] == "commit_started"]
    assert edges(lab) == clean


def test_insecure_host_keys_is_explicit_and_recorded(
    lab: Any, tmp_path: Path, inventory: Path, clean: dict[str, str]
) -> None:
    _wrong_known_hosts(tmp_path / "known_hosts")
    drill = Drill(tmp_path, inventory)
    done = drill.run("rel-hostkeys.yml", "--insecure-host-keys")
    report = drill.report()
    assert done.returncode == 0, done.stderr[-3000:]
    assert report["host_key_policy"] == "ignore"
    assert edges(lab) == clean
