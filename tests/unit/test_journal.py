"""The journal: one typed definition written and read back, version 1 still readable, and a
reader that never raises on what the file holds (issue 10's journal cases)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drill.engine.context import RunOptions
from drill.engine.events import ENTRY, SCHEMA_VERSION, StepKey
from drill.engine.journal_reader import MAX_BYTES, read_journal
from drill.engine.machine import State
from drill.engine.records import Outcome, Phase
from drill.engine.recovery import Recovery
from drill.engine.runner import Engine, EngineConfig
from drill.engine.runs import CORRUPT, check_recoverable, run_dirs, run_info
from drill.engine.trace import Trace
from drill.errors import DrillError, InputError

fake_napalm = importlib.import_module("engine_data.fake_napalm")  # see conftest.py
harness = importlib.import_module("engine_data.harness")

HOSTS = ["r1", "r2"]
BOOK = """
apiVersion: drill/v1
name: unit-journal
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
postchecks:
  - name: broken
    kind: check
    on: [r1]
    getter: get_state
    assert:
      - path: priority
        equals: 1
"""


def fresh_net() -> Any:
    network = fake_napalm.Network()
    for name in HOSTS:
        network.add(name, [f"hostname {name}", "priority 100"])
    fake_napalm.CURRENT = network  # type: ignore[attr-defined]
    return network


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A whole run (changes, failed postcheck, rollback with restore commits, proof)."""
    fresh_net()
    base = tmp_path_factory.mktemp("run")
    loaded = harness.load(BOOK, base)
    engine = Engine(
        loaded,
        harness.nornir_for(HOSTS),
        RunOptions(assume_yes=True),
        config=EngineConfig(state_base=base / "state", handle_signals=False),
    )
    record = engine.run()
    assert record.outcome is Outcome.ROLLED_BACK
    return loaded, engine.rundir.path


def lines_of(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (run_dir / "journal.jsonl").read_text().splitlines()]


def test_every_line_reads_back_as_the_entry_that_was_written(real_run: tuple[Any, Path]) -> None:
    _, run_dir = real_run
    read = read_journal(run_dir / "journal.jsonl")
    raw = lines_of(run_dir)
    assert not read.problems and not read.torn and read.version == SCHEMA_VERSION
    assert len(read.entries) == len(raw)
    for entry, line in zip(read.entries, raw, strict=True):
        assert entry.event == line["event"]
        assert json.loads(entry.model_dump_json(by_alias=True)) == line
    kinds = {e.event for e in read.entries}
    assert {"journal", "run_started", "state", "snapshot", "step_started", "preconfig"} <= kinds
    assert {"commit_started", "committed", "host_result", "step_ended", "restore"} <= kinds
    assert "run_ended" in kinds


def test_every_commit_is_bracketed_rollback_commits_included(real_run: tuple[Any, Path]) -> None:
    _, run_dir = real_run
    raw = lines_of(run_dir)
    started = [(e["step"]["phase"], e["host"]) for e in raw if e["event"] == "commit_started"]
    done = [(e["step"]["phase"], e["host"]) for e in raw if e["event"] == "committed"]
    assert started == done
    assert ("step", "r1") in started and ("rollback", "r1") in started
    assert ("rollback", "r2") in started


def test_step_keys_are_values(real_run: tuple[Any, Path]) -> None:
    _, run_dir = real_run
    trace = Trace.read(run_dir)
    raised = StepKey(phase=Phase.STEP, index=1, name="raise r1")
    assert trace.commits[raised] == ["r1"]
    undo = [k for k in trace.restored if k.undoes(raised)]
    assert undo and trace.restored[undo[0]] == {"r1"}
    assert trace.left_changed() == {}


def test_resumed_report_keeps_kinds_host_results_and_times(tmp_path: Path) -> None:
    net = fresh_net()
    loaded = harness.load(BOOK.replace("equals: 1", "equals: 200"), tmp_path)

    class Die(BaseException):
        pass

    class DieAt:
        def notify(self, event: Any) -> None:
            if event.kind == "step_ended" and event.record.name == "tag r2":
                raise Die

    engine = Engine(
        loaded,
        harness.nornir_for(HOSTS),
        RunOptions(assume_yes=True),
        observers=[DieAt()],
        config=EngineConfig(state_base=tmp_path / "state", handle_signals=False),
    )
    with pytest.raises(Die):
        engine.run()
    again = Engine(
        loaded,
        harness.nornir_for(HOSTS),
        RunOptions(assume_yes=True),
        config=EngineConfig(handle_signals=False),
        recovery=Recovery.of(Trace.read(engine.rundir.path), "resume"),
        rundir=engine.rundir,
    )
    record = again.run()
    assert record.outcome is Outcome.SUCCEEDED, record.notes
    before = {s.name: s for s in record.steps if s.phase is Phase.STEP}
    assert before["raise r1"].kind == "config" and before["tag r2"].kind == "config"
    assert before["raise r1"].hosts["r1"].changed and "priority 200" in (
        before["raise r1"].hosts["r1"].diff
    )
    assert all(s.started and s.ended for s in record.steps)
    assert net.boxes["r2"].running[-1] == "feature tagged"


# --- version 1 ------------------------------------------------------------------------

V1 = [
    {"event": "run_started", "run_id": "20260101T000000Z-v1-abcd", "runbook": "v1",
     "runbook_path": "/x/v1.yml", "sha256": "00", "mode": "planned", "dry_run": False,
     "operator": "op", "change_id": None, "run_dir": "/x", "hosts": ["r1"]},
    {"event": "state", "from": "pending", "to": "prechecking", "trigger": "start"},
    {"event": "snapshot", "host": "r1", "path": "/x/initial--r1.cfg", "error": None},
    {"event": "state", "from": "prechecking", "to": "executing", "trigger": "prechecks_passed"},
    {"event": "step_started", "step": "step:1:raise: r1", "name": "raise: r1",
     "step_kind": "config", "phase": "step", "hosts": ["r1"], "dry_run": False},
    {"event": "preconfig", "step": "step:1:raise: r1", "host": "r1", "path": "/x/p.cfg"},
    {"event": "commit_started", "step": "step:1:raise: r1", "host": "r1", "revert_in": None},
    {"event": "committed", "step": "step:1:raise: r1", "host": "r1", "confirmed": None},
    {"event": "host_result", "step": "step:1:raise: r1", "host": "r1", "changed": True,
     "failed": False, "error": None},
    {"event": "step_ended", "step": "step:1:raise: r1", "name": "raise: r1", "phase": "step",
     "status": "ok", "message": None, "changed": ["r1"], "failed": []},
    {"event": "step_started", "step": "reverify:step:1:raise: r1", "name": "re-verify",
     "step_kind": "check", "phase": "step", "hosts": ["r1"], "dry_run": False},
]  # fmt: skip


def write_v1(path: Path) -> None:
    stamp = "2026-01-01T00:00:00.000000+00:00"
    path.write_text("".join(json.dumps({"ts": stamp, **e}) + "\n" for e in V1))


def test_a_version_1_journal_stays_readable(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    write_v1(path)
    read = read_journal(path)
    assert not read.problems and read.version == 1
    trace = Trace.of(read)
    assert trace.state is State.EXECUTING and trace.run_id.endswith("v1-abcd")
    key = StepKey(phase=Phase.STEP, index=1, name="raise: r1")
    assert trace.commits == {key: ["r1"]} and trace.preconfig[key] == {"r1": "/x/p.cfg"}
    assert trace.left_changed() == {"r1": ["raise: r1"]}
    # the v1 re-verify key (the 'reverify' phase that crashed resume) reads as a value
    (open_step,) = trace.open_steps()
    assert open_step.key.phase is Phase.REVERIFY and open_step.key.of == key


def test_a_resumed_version_1_journal_mixes_versions_behind_a_header(tmp_path: Path) -> None:
    from drill.engine.events import NoteEntry
    from drill.engine.journal import Journal

    path = tmp_path / "journal.jsonl"
    write_v1(path)
    with path.open("a") as handle:
        handle.write('{"ts": "2026-01-01T00:00:0')  # torn by the crash
    with Journal(path) as journal:
        journal.write(NoteEntry(text="resumed"))
    read = read_journal(path)
    assert not read.problems and len(read.torn) == 1 and read.torn[0].line == len(V1) + 1
    assert read.version == SCHEMA_VERSION and read.entries[-1] == NoteEntry(
        ts=read.entries[-1].ts, text="resumed"
    )


# --- hostile journals ---------------------------------------------------------------------

GOOD = (
    '{"ts": "2026-01-01T00:00:00+00:00", "event": "journal", "version": 2}\n'
    '{"ts": "2026-01-01T00:00:00+00:00", "event": "note", "text": "x"}\n'
)
BAD_LINES = {
    "invalid-utf8": b'{"ts": "2026-01-01T00:00:00+00:00", "event": "note", "text": "\xff"}',
    "binary": bytes(b for b in range(256) if b != ord("\n")),
    "array": b"[1, 2, 3]",
    "string": b'"just a string"',
    "deep": b"[" * 100000,
    "missing-fields": b'{"ts": "2026-01-01T00:00:00+00:00", "event": "commit_started"}',
    "unknown-event": b'{"ts": "2026-01-01T00:00:00+00:00", "event": "teleport"}',
    "unknown-state": b'{"ts": "2026-01-01T00:00:00+00:00", "event": "state", "from": "pending",'
    b' "to": "on-fire", "trigger": "start"}',
    "unknown-status": b'{"ts": "2026-01-01T00:00:00+00:00", "event": "step_ended", "step": '
    b'{"phase": "step", "index": 1, "name": "x"}, "name": "x", "phase": "step", '
    b'"status": "meh"}',
    "bad-ts": b'{"ts": "yesterday-ish", "event": "note", "text": "x"}',
    "no-ts": b'{"event": "note", "text": "x"}',
    "bad-key": b'{"ts": "2026-01-01T00:00:00+00:00", "event": "preconfig", "step": "step:1:x",'
    b' "host": "r1", "path": "/p"}',
    "future": b'{"ts": "2026-01-01T00:00:00+00:00", "event": "journal", "version": 99}',
    "bad-version": b'{"ts": "2026-01-01T00:00:00+00:00", "event": "journal", "version": "2"}',
    "nan": b'{"ts": "2026-01-01T00:00:00+00:00", "event": "note", "text": NaN}',
}


def run_dir_with(state: Path, name: str) -> Path:
    run_dir = state / "runs" / f"20260101T00000{len(name) % 10}Z-{name}"
    run_dir.mkdir(parents=True)
    return run_dir


@pytest.mark.parametrize("case", sorted(BAD_LINES))
def test_a_bad_line_in_the_middle_makes_the_run_corrupt(tmp_path: Path, case: str) -> None:
    run_dir = run_dir_with(tmp_path, case)
    data = GOOD.encode() + BAD_LINES[case] + b"\n" + GOOD.encode()[GOOD.index("\n") + 1 :]
    (run_dir / "journal.jsonl").write_bytes(data)
    read = read_journal(run_dir / "journal.jsonl")
    assert read.corrupt and read.problems[0].line == 3, read.problems
    assert "journal.jsonl:3: " in read.describe()
    assert "\xff" not in read.describe() and len(read.describe()) < 400
    info = run_info(run_dir)
    assert info.state == CORRUPT
    with pytest.raises(InputError, match=r"corrupt.*by hand"):
        check_recoverable(info, "abort")


@pytest.mark.parametrize("case", sorted(set(BAD_LINES) - {"future"}))
def test_a_bad_last_line_is_tolerated_as_torn(tmp_path: Path, case: str) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(GOOD.encode() + BAD_LINES[case])
    read = read_journal(path)
    assert not read.corrupt and [p.line for p in read.torn] == [3]
    assert len(read.entries) == 2


def test_a_future_schema_is_refused_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    path.write_bytes(BAD_LINES["future"] + b"\n" + GOOD.encode())
    read = read_journal(path)
    assert read.corrupt
    assert "written by a newer drill (journal schema 99; this drill reads 1 to 2)" in (
        read.describe()
    )


def _fifo(path: Path) -> None:
    os.mkfifo(path)


FILES = {
    "directory": lambda p: p.mkdir(),
    "symlink-to-dev-zero": lambda p: p.symlink_to("/dev/zero"),
    "symlink-to-file": lambda p: (p.parent / "real").write_text(GOOD) or p.symlink_to("real"),
    "fifo": _fifo,
    "too-big": lambda p: p.write_bytes(b"\n" * (MAX_BYTES + 1)),
}


@pytest.mark.parametrize("case", sorted(FILES))
def test_a_journal_that_is_not_a_regular_file(tmp_path: Path, case: str) -> None:
    run_dir = run_dir_with(tmp_path, case)
    FILES[case](run_dir / "journal.jsonl")
    read = read_journal(run_dir / "journal.jsonl")
    assert read.corrupt and read.problems[0].line == 0
    assert run_info(run_dir).state == CORRUPT


def test_status_of_other_runs_is_unaffected_and_recovery_refuses(tmp_path: Path) -> None:
    state = tmp_path / "state"
    for case in ("array", "binary", "future"):
        run_dir = run_dir_with(state, case)
        (run_dir / "journal.jsonl").write_bytes(GOOD.encode() + BAD_LINES[case] + b"\n" + b"{}")
    FILES["symlink-to-dev-zero"](run_dir_with(state, "zero") / "journal.jsonl")
    healthy = run_dir_with(state, "healthy-one")
    write_v1(healthy / "journal.jsonl")
    env = {**os.environ, "DRILL_STATE_DIR": str(state)}
    argv = [sys.executable, "-m", "drill"]
    done = subprocess.run([*argv, "status", "--json"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    listed = {r["run_id"]: r for r in json.loads(done.stdout)}
    assert len(listed) == len(list(run_dirs(state))) == 5
    assert listed["20260101T000000Z-v1-abcd"]["state"] == "dead in executing"
    corrupt = [r for r in listed.values() if r["state"] == CORRUPT]
    assert len(corrupt) == 4 and all("journal.jsonl" in r["problem"] for r in corrupt)
    text = subprocess.run([*argv, "status"], capture_output=True, text=True, env=env)
    assert text.returncode == 0 and "Traceback" not in text.stderr
    for action in ("resume", "abort"):
        for run_dir in (state / "runs").iterdir():
            if run_dir == healthy:
                continue
            done = subprocess.run(
                [*argv, action, run_dir.name], capture_output=True, text=True, env=env
            )
            assert done.returncode == 2, done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and "corrupt" in lines[0] and "by hand" in lines[0], lines


# --- property: any prefix of a real journal -------------------------------------------------


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cut=st.floats(min_value=0.0, max_value=1.0))
def test_any_truncation_of_a_real_journal_never_raises(
    real_run: tuple[Any, Path], tmp_path_factory: pytest.TempPathFactory, cut: float
) -> None:
    loaded, source = real_run
    data = (source / "journal.jsonl").read_bytes()
    run_dir = tmp_path_factory.mktemp("cut") / "runs" / source.name
    run_dir.mkdir(parents=True)
    (run_dir / "journal.jsonl").write_bytes(data[: int(len(data) * cut)])
    (run_dir / "snapshots").mkdir()
    for snap in (source / "snapshots").iterdir():
        (run_dir / "snapshots" / snap.name).write_bytes(snap.read_bytes())
    read = read_journal(run_dir / "journal.jsonl")
    assert not read.corrupt  # a prefix is at worst torn at its end
    info = run_info(run_dir)
    try:
        check_recoverable(info, "abort")
    except DrillError:
        return  # refused with a message: also fine
    fresh_net()
    from drill.engine.rundir import RunDir

    engine = Engine(
        loaded,
        harness.nornir_for(HOSTS),
        RunOptions(assume_yes=True),
        config=EngineConfig(handle_signals=False),
        recovery=Recovery.of(Trace.of(read), "abort"),
        rundir=RunDir(run_dir),
    )
    record = engine.run()
    assert record.outcome is not None
    assert run_info(run_dir).state == record.outcome.value


def test_entry_union_rejects_what_it_does_not_define() -> None:
    with pytest.raises(ValueError):
        ENTRY.validate_python({"ts": "2026-01-01T00:00:00+00:00", "event": "nope"})
