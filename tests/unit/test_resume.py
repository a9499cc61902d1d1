"""Resume and abort from a journal, against the fake NAPALM driver.

A crash is simulated in-process: an observer raises at a chosen journal event (after the
journal wrote it), and the journal is then cut right after that line, as a SIGKILL would
leave it. The lab version with real SIGKILLs is tests/lab/test_crash.py.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from drill.engine.context import RunOptions
from drill.engine.events import Event
from drill.engine.records import Outcome
from drill.engine.recovery import Action, Recovery
from drill.engine.runner import Engine, EngineConfig
from drill.engine.runs import check_recoverable, run_info
from drill.engine.trace import Trace
from drill.errors import RefusedError


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The journal's lines as plain JSON objects (what a person or jq sees)."""
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


fake_napalm = importlib.import_module("engine_data.fake_napalm")  # see conftest.py
harness = importlib.import_module("engine_data.harness")

HOSTS = ["r1", "r2"]
BOOK = """
apiVersion: drill/v1
name: unit-resume
prechecks:
  - name: healthy
    kind: check
    on: [r1, r2]
    getter: get_state
    assert:
      - path: healthy
        equals: true
steps:
  - name: raise r1
    kind: config
    on: r1
    config: "priority 200"
  - name: tag r2
    kind: config
    on: r2
    config: "feature tagged"
  - name: r1 raised
    kind: check
    on: r1
    getter: get_state
    assert:
      - path: priority
        equals: 200
postchecks:
  - name: still healthy
    kind: check
    on: [r1, r2]
    getter: get_state
    assert:
      - path: healthy
        equals: true
"""
INITIAL = {name: [f"hostname {name}", "priority 100"] for name in HOSTS}
FINAL = {
    "r1": ["hostname r1", "priority 200"],
    "r2": ["hostname r2", "priority 100", "feature tagged"],
}


class Crash(BaseException):
    pass


class CrashAt:
    """Raise once, right after the journal wrote ``kind`` for the step named ``name``."""

    def __init__(self, kind: str, name: str) -> None:
        self.kind, self.name, self.fired = kind, name, False

    def notify(self, event: Event) -> None:
        entry = event.entry()
        name = getattr(entry, "name", None) or getattr(getattr(entry, "step", None), "name", None)
        if not self.fired and event.kind == self.kind and name == self.name:
            self.fired = True
            raise Crash


@pytest.fixture
def net() -> Any:
    network = fake_napalm.Network()
    for name in HOSTS:
        network.add(name, INITIAL[name])
    fake_napalm.CURRENT = network  # type: ignore[attr-defined]
    return network


def crash(tmp_path: Path, kind: str, name: str) -> tuple[Any, Engine]:
    loaded = harness.load(BOOK, tmp_path)
    engine = Engine(
        loaded,
        harness.nornir_for(HOSTS),
        RunOptions(assume_yes=True),
        observers=[CrashAt(kind, name)],
        config=EngineConfig(state_base=tmp_path / "state", handle_signals=False),
    )
    with pytest.raises(Crash):
        engine.run()
    _cut(engine.rundir.journal_path, kind, name)
    return loaded, engine


def _cut(path: Path, kind: str, name: str) -> None:
    """Keep the journal up to (and including) the crash event, like a SIGKILL would."""
    kept: list[str] = []
    for line in path.read_text().splitlines(keepends=True):
        kept.append(line)
        entry = json.loads(line)
        if entry["event"] == kind and entry.get("name") == name:
            break
    path.write_text("".join(kept))


def recovering(
    loaded: Any, engine: Engine, action: Action, observers: list[Any] | None = None
) -> Engine:
    return Engine(
        loaded,
        harness.nornir_for(HOSTS),
        RunOptions(assume_yes=True),
        observers=observers,
        config=EngineConfig(handle_signals=False),
        recovery=Recovery.of(Trace.read(engine.rundir.path), action),
        rundir=engine.rundir,
    )


def recover(loaded: Any, engine: Engine, action: Action) -> tuple[Any, Engine]:
    again = recovering(loaded, engine, action)
    return again.run(), again


def running(net: Any) -> dict[str, list[str]]:
    return {name: list(box.running) for name, box in net.boxes.items()}


def test_trace_reads_what_a_dead_run_did(tmp_path: Path, net: Any) -> None:
    _, engine = crash(tmp_path, "step_started", "r1 raised")
    trace = Trace.read(engine.rundir.path)
    assert trace.state == "executing" and trace.outcome is None
    assert trace.interrupted is not None and trace.interrupted.name == "r1 raised"
    assert trace.touched() == ["r1", "r2"]
    assert trace.left_changed() == {"r1": ["raise r1"], "r2": ["tag r2"]}
    assert set(trace.snapshots) == {"r1", "r2"}
    info = run_info(engine.rundir.path)
    assert info.state == "dead in executing" and not info.alive


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("step_started", "raise r1"),
        ("step_ended", "raise r1"),
        ("step_started", "tag r2"),
        ("step_ended", "tag r2"),
        ("step_started", "r1 raised"),
        ("step_started", "still healthy"),
    ],
)
def test_resume_finishes_the_drill(tmp_path: Path, net: Any, kind: str, name: str) -> None:
    loaded, engine = crash(tmp_path, kind, name)
    record, _ = recover(loaded, engine, "resume")
    assert record.outcome is Outcome.SUCCEEDED, record.notes
    assert running(net) == FINAL
    events = read_journal(engine.rundir.journal_path)
    assert events[-1]["event"] == "run_ended" and events[-1]["outcome"] == "succeeded"
    assert run_info(engine.rundir.path).state == "succeeded"


def test_resume_reverifies_instead_of_repeating(tmp_path: Path, net: Any) -> None:
    """Killed after the commit of 'tag r2' but before its end: the change is there, so the
    resumed run checks it and does not commit again."""
    loaded, engine = crash(tmp_path, "step_started", "r1 raised")
    # rewind the journal to just after r2's commit: the step is in progress, its effect done
    path = engine.rundir.journal_path
    lines = path.read_text().splitlines(keepends=True)
    end = next(i for i, x in enumerate(lines) if '"committed"' in x and '"r2"' in x)
    path.write_text("".join(lines[: end + 1]))
    commits = len(net.ops("commit"))
    record, _ = recover(loaded, engine, "resume")
    assert record.outcome is Outcome.SUCCEEDED
    assert len(net.ops("commit")) == commits  # nothing committed again
    assert any("in place; not repeated" in note for note in record.notes)
    assert running(net) == FINAL


def test_resume_repeats_a_step_whose_effect_is_missing(tmp_path: Path, net: Any) -> None:
    loaded, engine = crash(tmp_path, "step_started", "tag r2")
    # the process died at the step start: r2 is untouched, and its step must run
    record, _ = recover(loaded, engine, "resume")
    assert record.outcome is Outcome.SUCCEEDED
    assert net.ops("commit").count("r2") == 1
    assert running(net) == FINAL


@pytest.mark.parametrize(
    ("kind", "name", "touched"),
    [
        ("step_started", "raise r1", set()),
        ("step_ended", "tag r2", {"r1", "r2"}),
        ("step_started", "still healthy", {"r1", "r2"}),
    ],
)
def test_abort_restores_exactly(
    tmp_path: Path, net: Any, kind: str, name: str, touched: set[str]
) -> None:
    loaded, engine = crash(tmp_path, kind, name)
    record, _ = recover(loaded, engine, "abort")
    assert record.outcome is Outcome.ROLLED_BACK, record.notes
    assert running(net) == INITIAL
    assert set(record.restore) == touched  # proven per host the journal says was changed
    assert all(proof.exact for proof in record.restore.values())
    phases = {s.phase.value for s in record.steps}
    assert "verify" in phases  # prechecks ran again after the rollback


def test_abort_before_any_change(tmp_path: Path, net: Any) -> None:
    loaded, engine = crash(tmp_path, "step_started", "healthy")
    record, _ = recover(loaded, engine, "abort")
    assert record.outcome is Outcome.PRECHECK_FAILED
    assert running(net) == INITIAL
    assert not net.ops("commit")


def test_crash_during_rollback_then_resume_finishes_it(tmp_path: Path, net: Any) -> None:
    loaded, engine = crash(tmp_path, "step_ended", "tag r2")
    # first recovery dies in the middle of its rollback
    again = recovering(
        loaded, engine, "abort", [CrashAt("step_ended", "restore config before 'tag r2'")]
    )
    with pytest.raises(Crash):
        again.run()
    _cut(engine.rundir.journal_path, "step_ended", "restore config before 'tag r2'")
    assert Trace.read(engine.rundir.path).state == "rolling_back"
    assert Trace.read(engine.rundir.path).left_changed() == {"r1": ["raise r1"]}
    record, _ = recover(loaded, engine, "resume")
    assert record.outcome is Outcome.ROLLED_BACK
    assert running(net) == INITIAL


def test_finished_or_live_runs_are_refused(tmp_path: Path, net: Any) -> None:
    loaded, engine = crash(tmp_path, "step_ended", "raise r1")
    recover(loaded, engine, "resume")
    info = run_info(engine.rundir.path)
    with pytest.raises(RefusedError, match="already ended"):
        check_recoverable(info, "resume")
    info.alive, info.outcome = True, None
    with pytest.raises(RefusedError, match="still running"):
        check_recoverable(info, "abort")


def test_cli_status_lists_runs_newest_first(tmp_path: Path, net: Any) -> None:
    import json
    import os
    import subprocess

    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
    _, first = crash(tmp_path / "a", "step_ended", "raise r1")
    _, second = crash(tmp_path / "b", "step_started", "tag r2")
    state = tmp_path / "state"
    state.mkdir()
    (state / "runs").mkdir()
    for engine in (first, second):
        engine.rundir.path.rename(state / "runs" / engine.rundir.path.name)
    env = {**os.environ, "DRILL_STATE_DIR": str(state)}
    argv = [sys.executable, "-m", "drill", "status", "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)
    assert [r["run_id"] for r in listed] == sorted([first.run_id, second.run_id], reverse=True)
    assert all(set(r) == {"run_id", "runbook", "state", "pid", "alive", "started"} for r in listed)
    assert {r["state"] for r in listed} == {"dead in executing"}
    assert {r["runbook"] for r in listed} == {"unit-resume"}
    one = subprocess.run([*argv[:-1], first.run_id], capture_output=True, text=True, env=env)
    assert "dead in executing" in one.stdout and f"drill resume {first.run_id}" in one.stdout
    missing = subprocess.run([*argv[:-1], "nope"], capture_output=True, text=True, env=env)
    assert missing.returncode == 2  # an unknown run id is invalid input (issue 10)
