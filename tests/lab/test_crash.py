"""The crash matrix: SIGKILL the orchestrator at every step boundary of the real switchover
runbook (runbooks/dc1-to-dc2.yml) and in the middle of each config commit (plus a
commit-confirm runbook, tests/lab/data/crash-confirm.yml, also killed during the confirm
check while the device's revert timer runs), then
``drill resume`` or ``drill abort`` the dead run. Every device must end with its pre-drill
or its post-drill running config (normalized), never a mix, and the journal must say which:
``succeeded`` = all post-drill, ``rolled_back`` = all pre-drill.

Then the second matrix: recovery survives its own crash. A dead run's ``drill resume`` or
``drill abort`` is itself killed at one of its own journal boundaries (the re-verification,
each rollback commit, inside a rollback commit on the device, the restore proof), and the
same command is run again; the same rule holds.

The kill point comes from the TEST-ONLY hook ``DRILL_TEST_CRASH_AT=<event>:<step>[@s]`` of
tests/lab/faultdrill.py (the drill command with fault hooks; the shipped ``drill`` ignores the
variable). The matrices (points tried / consistent) are printed at the end and written to
``$DRILL_CRASH_MATRIX`` (default: the pytest tmp dir) as JSON.

    flock /tmp/drill-lab.lock .venv/bin/pytest -s tests/lab/test_crash.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from drill.drivers.frr.config import normalize_running_config
from drill.runbook.loader import load_runbook

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]
FAULTDRILL = Path(__file__).resolve().parent / "faultdrill.py"
DATA = Path(__file__).parent / "data"
BOOKS = {
    "dc1-to-dc2": REPO / "runbooks" / "dc1-to-dc2.yml",
    # a commit-confirm step: the device-side revert timer is armed when the process dies
    "crash-confirm": DATA / "crash-confirm.yml",
}
INVENTORY = REPO / "labs" / "two-dc" / "inventory"
NODES = ("wan", "dc1-edge", "dc2-edge", "app1", "app2")
MID_APPLY_S = 0.01  # a merge commit's apply (vtysh -f on the device) takes 20-30 ms here


ADDRESS = {
    name: str(host["hostname"])
    for name, host in YAML(typ="safe").load((INVENTORY / "hosts.yaml").read_text()).items()
}


def _points(book: Path) -> list[str]:
    model = load_runbook(book, inventory_override=INVENTORY).model
    points: list[str] = []
    for step in model.steps:
        points += [f"step_started:{step.name}", f"step_ended:{step.name}"]
        if step.kind == "config":
            hosts = load_runbook(book, inventory_override=INVENTORY).hosts_for(step)
            # in the middle of the commit: the device is applying the candidate (the driver
            # names a device by its address)
            points += [f"device_apply:{ADDRESS[host]}@{MID_APPLY_S}" for host in hosts]
            points.append(f"committed:{step.name}")
            if getattr(step, "confirm", None) is not None:
                # committed with the device's revert timer armed, the confirm check starting
                points += [f"fresh_session:{ADDRESS[host]}" for host in hosts]
    if model.postchecks:
        points.append(f"step_started:{model.postchecks[0].name}")
    return points


CASES = [(name, point) for name, book in BOOKS.items() for point in _points(book)]
RESULTS: list[dict[str, Any]] = []
SECOND: list[dict[str, Any]] = []

# (first kill of `drill run`, action, kill of that action at one of its own boundaries)
GATEWAY, SERVICE, DRAIN = "move-gateway-to-dc2-edge", "move-service-to-app2", "drain-dc1-inbound"
IN_SECOND_COMMIT = f"device_apply:{ADDRESS['dc2-edge']}@{MID_APPLY_S}"
ALL_CHANGED = f"step_ended:{SERVICE}"
SECOND_CASES = [
    # the reproduced bug: killed in the 2nd commit, then resume killed while re-verifying
    (IN_SECOND_COMMIT, "resume", f"step_started:re-verify {GATEWAY!r}"),
    (IN_SECOND_COMMIT, "resume", f"step_ended:re-verify {GATEWAY!r}"),
    (IN_SECOND_COMMIT, "resume", f"step_started:{SERVICE}"),
    (IN_SECOND_COMMIT, "resume", f"device_apply:{ADDRESS['app2']}@{MID_APPLY_S}"),
    # abort killed at each rollback commit, inside one on the device, and in the proof
    (ALL_CHANGED, "abort", f"commit_started:restore config before {SERVICE!r}"),
    (ALL_CHANGED, "abort", f"device_apply:{ADDRESS['app2']}@{MID_APPLY_S}"),
    (ALL_CHANGED, "abort", f"committed:restore config before {GATEWAY!r}"),
    (ALL_CHANGED, "abort", f"commit_started:restore config before {DRAIN!r}"),
    (ALL_CHANGED, "abort", "step_started:bgp-sessions-established"),
    (ALL_CHANGED, "abort", "restore:app2"),
]


def drill(*args: str, state: Path, crash: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DRILL_STATE_DIR": str(state)}
    env.pop("DRILL_TEST_CRASH_AT", None)
    if crash:
        env["DRILL_TEST_CRASH_AT"] = crash
    entry = [str(FAULTDRILL)] if crash else ["-m", "drill"]
    argv = [sys.executable, *entry, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)


def running(lab: Any, node: str) -> str:
    done = lab.exec(node, ["vtysh", "-c", "show running-config"])
    assert done.returncode == 0, done.stderr
    return normalize_running_config(done.stdout)


def configs(lab: Any) -> dict[str, str]:
    return {node: running(lab, node) for node in NODES}


def put_back(lab: Any, wanted: dict[str, str]) -> None:
    """Restore running configs through the FRR driver (what the engine's rollback uses)."""
    import napalm

    for node, text in wanted.items():
        if running(lab, node) == text:
            continue
        driver = napalm.get_network_driver("frr")
        dev = driver(
            hostname=lab.mgmt_ip(node),
            username="root",
            password="drill-lab",
            optional_args={"known_hosts_file": str(lab.known_hosts)},
        )
        dev.open()
        try:
            if dev.has_pending_commit():
                dev.rollback()
            dev.load_replace_candidate(config=text)
            if dev.compare_config():
                dev.commit_config()
            else:
                dev.discard_config()
        finally:
            dev.close()
    assert configs(lab) == wanted


@pytest.fixture(scope="module")
def states(lab: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Per runbook: the pre-drill configs and, from one uninterrupted run, the post-drill
    configs."""
    before = configs(lab)
    found: dict[str, Any] = {}
    for name, book in BOOKS.items():
        state = tmp_path_factory.mktemp("reference")
        done = drill("run", str(book), "-i", str(INVENTORY), "--yes", state=state)
        after = configs(lab)
        put_back(lab, before)
        assert done.returncode == 0, done.stderr[-3000:]
        loaded = load_runbook(book, inventory_override=INVENTORY)
        touched = {
            h for st in loaded.model.steps if st.kind == "config" for h in loaded.hosts_for(st)
        }
        # every host a config step targets must change: a left-over baseline would not
        assert touched and all(after[h] != before[h] for h in touched), name
        found[name] = {"before": before, "after": after}
    yield found
    put_back(lab, before)
    _print_matrix(tmp_path_factory.getbasetemp())


def _print_matrix(base: Path) -> None:
    if not RESULTS and not SECOND:
        return
    tried = len(RESULTS)
    consistent = sum(1 for r in RESULTS if r["consistent"])
    lines = [f"crash matrix: {tried} points tried, {consistent} consistent"] if RESULTS else []
    for r in RESULTS:
        lines.append(
            f"  {r['runbook']:<13} {r['point']:<50} {r['action']:<6} exit {r['exit']}  "
            f"{r['outcome']:<12} "
            f"{r['devices']:<6} {'ok' if r['consistent'] else 'MIX/WRONG'}"
        )
    second_ok = sum(1 for r in SECOND if r["consistent"])
    if SECOND:
        lines.append(
            f"second crashes (recovery killed): {len(SECOND)} tried, {second_ok} consistent"
        )
    for r in SECOND:
        lines.append(
            f"  {r['point']:<34} {r['action']:<6} killed at {r['second_point']:<58} exit "
            f"{r['exit']}  {r['outcome']:<12} {r['devices']:<6} "
            f"{'ok' if r['consistent'] else 'MIX/WRONG'}"
        )
    print("\n" + "\n".join(lines))
    target = Path(os.environ.get("DRILL_CRASH_MATRIX", str(base / "crash-matrix.json")))
    summary = {
        "tried": tried,
        "consistent": consistent,
        "runs": RESULTS,
        "second": {"tried": len(SECOND), "consistent": second_ok, "runs": SECOND},
    }
    target.write_text(json.dumps(summary, indent=2))
    print(f"written to {target}")


def _which(now: dict[str, str], states: dict[str, Any]) -> str:
    if now == states["before"]:
        return "before"
    if now == states["after"]:
        return "after"
    return "mix"


def timers(lab: Any) -> dict[str, int]:
    """Device-side revert timers still running, per node (none may outlive a recovery)."""
    found = {}
    for node in NODES:
        done = lab.exec(node, ["sh", "-c", "ps -eo args | grep -c '[r]evert.sh' || true"])
        found[node] = int(done.stdout.strip() or 0)
    return {node: count for node, count in found.items() if count}


@pytest.mark.parametrize("action", ["resume", "abort"])
@pytest.mark.parametrize(("name", "point"), CASES)
def test_crash_then_recover(
    lab: Any, states: dict[str, Any], tmp_path: Path, name: str, point: str, action: str
) -> None:
    book, expected_states = BOOKS[name], states[name]
    state = tmp_path / "state"
    run = ("run", str(book), "-i", str(INVENTORY), "--yes")
    try:
        crashed = drill(*run, state=state, crash=point)
        assert crashed.returncode == -9, (
            f"the hook did not fire at {point}: {crashed.stderr[-2000:]}"
        )
        listed = json.loads(drill("status", "--json", state=state).stdout)
        assert len(listed) == 1 and not listed[0]["alive"], listed
        assert listed[0]["state"].startswith("dead in "), listed
        run_id = listed[0]["run_id"]
        # where the kill landed, as the journal of the dead run tells it
        died = [json.loads(x) for x in (state / "runs" / run_id / "journal.jsonl").open()]
        died_in = [e["event"] for e in died if e["event"] in ("commit_started", "committed")]
        # the dead run still holds its devices: another drill is refused, naming it
        refused = drill(*run, state=state)
        assert refused.returncode == 5, refused.stderr[-2000:]
        assert run_id in refused.stderr and "died" in refused.stderr

        recovered = drill(action, run_id, "--json", state=state)
        summary = json.loads(recovered.stdout) if recovered.stdout.strip() else {}
        outcome = summary.get("outcome", "none")
        journal = state / "runs" / run_id / "journal.jsonl"
        ended = [json.loads(x) for x in journal.read_text().splitlines() if '"run_ended"' in x]
        now = configs(lab)
        devices = _which(now, expected_states)
        left_timers = timers(lab)
        expected = {"succeeded": "after", "rolled_back": "before"}.get(outcome)
        consistent = devices != "mix" and devices == expected
        RESULTS.append(
            {
                "runbook": name,
                "point": point,
                "action": action,
                "commit_events_before_kill": died_in,
                "exit": recovered.returncode,
                "outcome": outcome,
                "devices": devices,
                "consistent": consistent,
            }
        )
        assert ended and ended[-1]["outcome"] == outcome, "the journal must say how it ended"
        assert recovered.returncode == {"succeeded": 0, "rolled_back": 1}.get(outcome), (
            recovered.stderr[-3000:]
        )
        if action == "abort":
            assert outcome == "rolled_back", recovered.stderr[-3000:]
        assert consistent, {n: now[n] == expected_states["before"][n] for n in NODES}
        assert not left_timers, f"revert timers still armed: {left_timers}"
        assert json.loads(drill("status", run_id, "--json", state=state).stdout)[0]["state"] == (
            outcome
        )
    finally:
        put_back(lab, expected_states["before"])


@pytest.mark.parametrize(("point", "action", "second"), SECOND_CASES)
def test_recovery_killed_then_recovered_again(
    lab: Any, states: dict[str, Any], tmp_path: Path, point: str, action: str, second: str
) -> None:
    expected_states = states["dc1-to-dc2"]
    state = tmp_path / "state"
    book = BOOKS["dc1-to-dc2"]
    try:
        crashed = drill("run", str(book), "-i", str(INVENTORY), "--yes", state=state, crash=point)
        assert crashed.returncode == -9, f"the hook did not fire at {point}"
        run_id = json.loads(drill("status", "--json", state=state).stdout)[0]["run_id"]
        killed = drill(action, run_id, state=state, crash=second)
        assert killed.returncode == -9, (
            f"the hook did not fire at {second}: {killed.stderr[-3000:]}"
        )
        listed = json.loads(drill("status", run_id, "--json", state=state).stdout)
        assert listed[0]["state"].startswith("dead in "), listed
        again = drill(action, run_id, "--json", state=state)
        summary = json.loads(again.stdout) if again.stdout.strip() else {}
        outcome = summary.get("outcome", "none")
        journal = state / "runs" / run_id / "journal.jsonl"
        last = json.loads(journal.read_text().splitlines()[-1])
        now = configs(lab)
        devices = _which(now, expected_states)
        expected = {"resume": "after", "abort": "before"}[action]
        consistent = devices == expected and last.get("outcome") == outcome
        SECOND.append(
            {
                "point": point,
                "action": action,
                "second_point": second,
                "exit": again.returncode,
                "outcome": outcome,
                "devices": devices,
                "consistent": consistent,
            }
        )
        assert "Traceback" not in again.stderr + killed.stderr, again.stderr[-3000:]
        assert last["event"] == "run_ended" and last["outcome"] == outcome
        assert outcome == {"resume": "succeeded", "abort": "rolled_back"}[action], again.stderr[
            -3000:
        ]
        assert consistent, {n: now[n] == expected_states["before"][n] for n in NODES}
        assert not timers(lab), "revert timers still armed"
    finally:
        put_back(lab, expected_states["before"])
