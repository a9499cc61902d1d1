"""Crash-safe recovery: read a run's journal, then ``resume`` it or ``abort`` it.

The journal is the only memory a dead run leaves. :class:`Trace` rebuilds from it what the
engine had in memory: snapshots, per-step pre-change configs, which hosts a commit may have
touched (``commit_started`` is fsynced BEFORE a device is changed), the lifecycle state and
the step in progress. :class:`RecoveryEngine` is the engine started from that point:

* ``resume`` re-verifies the step that was in progress instead of repeating it blindly (its
  ``check``; for a config step without one, whether the candidate still differs from the
  running config), then carries on: remaining steps, postchecks, and rollback on failure.
* ``abort`` rolls back everything the journal says was changed and proves the restore, as a
  failed run does (prechecks again as phase ``verify``, exact per-host comparison).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from nornir.core import Nornir
from nornir.core.task import Task

from drill.engine import probes as probe_glue
from drill.engine.context import LoadedRunbookLike, RunOptions
from drill.engine.events import Observer, RunEnded
from drill.engine.hosts import device, run_per_host
from drill.engine.journal import read_journal
from drill.engine.machine import OUTCOME_OF, State, Trigger
from drill.engine.owner import read_owner
from drill.engine.records import HostResult, Phase, StepRecord, StepStatus
from drill.engine.rollback import Executed
from drill.engine.rundir import RunDir
from drill.engine.runner import Engine as _Engine
from drill.engine.runner import EngineConfig
from drill.engine.signals import LeaveChanged, leave_changed
from drill.errors import RefusedError
from drill.runbook.model import ConfigStep, StepBase
from drill.steps import check
from drill.steps.base import StepOutcome

log = logging.getLogger(__name__)

Action = Literal["resume", "abort"]


@dataclass
class StepTrace:
    key: str
    phase: str
    index: int
    name: str
    hosts: list[str]
    status: str | None = None  # None: started, never ended (the process died in it)
    started: str | None = None
    ended: str | None = None


@dataclass
class Trace:
    """What the journal says happened; later events win (a resumed run appends)."""

    run_id: str = ""
    runbook: str = ""
    runbook_path: str = ""
    sha256: str = ""
    started: str | None = None
    state: str = State.PENDING.value
    outcome: str | None = None
    snapshots: dict[str, str] = field(default_factory=dict)
    preconfig: dict[str, dict[str, str]] = field(default_factory=dict)
    commits: dict[str, list[str]] = field(default_factory=dict)
    confirmed: dict[str, dict[str, bool | None]] = field(default_factory=dict)
    steps: dict[str, StepTrace] = field(default_factory=dict)  # insertion order = run order
    restored: dict[str, set[str]] = field(default_factory=dict)  # rollback key -> ok hosts
    exact: dict[str, bool] = field(default_factory=dict)

    @classmethod
    def read(cls, run_dir: Path) -> Trace:
        return cls.from_events(read_journal(run_dir / "journal.jsonl"))

    @classmethod
    def from_events(cls, events: list[dict[str, Any]]) -> Trace:
        trace = cls()
        for event in events:
            trace._apply(event)
        return trace

    def _apply(self, e: dict[str, Any]) -> None:
        kind = str(e.get("event"))
        if kind in ("run_started", "state", "run_ended", "snapshot", "restore"):
            self._apply_run(kind, e)
        elif kind in ("preconfig", "commit_started", "committed"):
            self._apply_change(kind, e)
        elif kind in ("step_started", "step_ended", "host_result"):
            self._apply_step(kind, e)

    def _apply_run(self, kind: str, e: dict[str, Any]) -> None:
        if kind == "run_started":
            self.run_id = str(e.get("run_id", ""))
            self.runbook = str(e.get("runbook", ""))
            self.runbook_path = str(e.get("runbook_path", ""))
            self.sha256 = str(e.get("sha256", ""))
            self.started = self.started or str(e.get("ts"))
        elif kind == "state":
            self.state = str(e.get("to"))
        elif kind == "run_ended":
            self.outcome = e.get("outcome")
        elif kind == "snapshot" and e.get("path"):
            self.snapshots[str(e["host"])] = str(e["path"])
        elif kind == "restore":
            self.exact[str(e["host"])] = bool(e.get("exact"))

    def _apply_change(self, kind: str, e: dict[str, Any]) -> None:
        key, host = str(e["step"]), str(e["host"])
        if kind == "preconfig":
            self.preconfig.setdefault(key, {})[host] = str(e["path"])
        elif kind == "commit_started":
            hosts = self.commits.setdefault(key, [])
            if host not in hosts:
                hosts.append(host)
            pending = None if e.get("revert_in") is None else False
            self.confirmed.setdefault(key, {})[host] = pending
        elif e.get("confirmed") is not None:
            self.confirmed.setdefault(key, {})[host] = bool(e["confirmed"])

    def _apply_step(self, kind: str, e: dict[str, Any]) -> None:
        key = str(e.get("step", ""))
        if kind == "step_started":
            phase, index = _phase_index(key)
            self.steps.pop(key, None)  # re-run on resume: keep run order
            hosts = list(e.get("hosts") or [])
            self.steps[key] = StepTrace(
                key, phase, index, str(e.get("name", "")), hosts, started=e.get("ts")
            )
        elif kind == "step_ended" and key in self.steps:
            self.steps[key].status = str(e.get("status"))
            self.steps[key].ended = e.get("ts")
        elif kind == "host_result" and key.startswith("rollback:"):
            ok = self.restored.setdefault(key, set())
            if e.get("failed"):
                ok.discard(str(e["host"]))
            else:
                ok.add(str(e["host"]))

    # --- questions --------------------------------------------------------------------

    @property
    def interrupted(self) -> StepTrace | None:
        """The step the process died in (started, never ended), if any."""
        open_steps = [s for s in self.steps.values() if s.status is None]
        return open_steps[-1] if open_steps else None

    def executed(self) -> list[StepTrace]:
        """Steps of phase ``step`` that ran or started, in run order."""
        return sorted(
            (s for s in self.steps.values() if s.phase == Phase.STEP.value),
            key=lambda s: s.index,
        )

    def touched(self) -> list[str]:
        return sorted({h for hosts in self.commits.values() for h in hosts})

    def left_changed(self) -> dict[str, list[str]]:
        """host -> names of steps whose change on it is not (provably) undone."""
        left: dict[str, list[str]] = {}
        for key, hosts in self.commits.items():
            prefix = f"rollback:{key}:"
            undone = set.union(
                set(), *(ok for rkey, ok in self.restored.items() if rkey.startswith(prefix))
            )
            for host in hosts:
                if self.exact.get(host) or host in undone:
                    continue
                left.setdefault(host, []).append(_name_of(key))
        return left


def _when(stamp: str | None) -> datetime | None:
    return datetime.fromisoformat(stamp) if stamp else None


def _phase_index(key: str) -> tuple[str, int]:
    """
    >>> _phase_index("step:3:raise prio"), _phase_index("rollback:step:1:x:0")
    (('step', 3), ('rollback', 0))
    """
    parts = key.split(":")
    if parts[0] == "rollback" or len(parts) < 3:
        return parts[0], 0
    try:
        return parts[0], int(parts[1])
    except ValueError:
        return parts[0], 0


def _name_of(key: str) -> str:
    parts = key.split(":")
    return ":".join(parts[2:]) if len(parts) >= 3 else key


# --- listing runs ---------------------------------------------------------------------


@dataclass
class RunInfo:
    run_id: str
    runbook: str
    state: str
    pid: int | None
    alive: bool
    started: str | None
    outcome: str | None
    path: Path

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "runbook": self.runbook,
            "state": self.state,
            "pid": self.pid,
            "alive": self.alive,
            "started": self.started,
        }


def run_info(run_dir: Path) -> RunInfo:
    trace = Trace.read(run_dir)
    owner = read_owner(run_dir)
    alive = owner.alive if owner is not None else False
    if trace.outcome is not None:
        state = trace.outcome
    elif alive:
        state = trace.state
    else:
        # No run_ended and no process: it died here. Say where, so nobody guesses.
        state = f"dead in {trace.state}"
    return RunInfo(
        run_id=trace.run_id or run_dir.name,
        runbook=trace.runbook,
        state=state,
        pid=owner.pid if owner is not None else None,
        alive=alive,
        started=trace.started,
        outcome=trace.outcome,
        path=run_dir,
    )


def run_dirs(base: Path) -> Iterator[Path]:
    """Run directories, newest first (run ids start with a UTC timestamp)."""
    root = base / "runs"
    if not root.is_dir():
        return iter(())
    dirs = [p for p in root.iterdir() if (p / "journal.jsonl").exists()]
    return iter(sorted(dirs, key=lambda p: p.name, reverse=True))


def find_run(base: Path, run_id: str) -> Path:
    path = base / "runs" / run_id
    if not (path / "journal.jsonl").exists():
        raise RefusedError(f"no run {run_id!r} in {base / 'runs'} (see 'drill status')")
    return path


def check_recoverable(info: RunInfo, action: Action) -> None:
    """A live run is its own business; a finished one has nothing to resume."""
    if info.alive:
        raise RefusedError(
            f"run {info.run_id} is still running (pid {info.pid}); "
            "Ctrl-C or SIGTERM it (it rolls back) instead"
        )
    if info.outcome is None:
        return
    if action == "abort" and info.outcome in ("rollback_failed", "stopped"):
        return  # devices may still be changed: retrying the rollback is the point
    raise RefusedError(f"run {info.run_id} already ended: {info.outcome}")


# --- the recovery engine --------------------------------------------------------------


class RecoveryEngine(_Engine):
    """The engine, restarted from a dead run's journal in the same run directory."""

    def __init__(
        self,
        runbook: LoadedRunbookLike,
        nr: Nornir,
        options: RunOptions,
        rundir: RunDir,
        action: Action,
        observers: list[Observer] | None = None,
        config: EngineConfig | None = None,
    ) -> None:
        super().__init__(runbook, nr, options, observers, config, rundir=rundir)
        self.action = action
        self.trace = Trace.read(rundir.path)
        # Probes measured the original run's traffic; a resumed run cannot continue them.
        self.probes = probe_glue.Probes([])
        self._restore_memory()

    def _restore_memory(self) -> None:
        trace, changes = self.trace, self.ctx.changes
        if trace.started:
            self.record.started = datetime.fromisoformat(trace.started)
        self.progress.snapshots = {h: Path(p) for h, p in trace.snapshots.items()}
        for key, saved in trace.preconfig.items():
            for host, path in saved.items():
                changes.save_preconfig(key, host, Path(path))
        for key, committed in trace.commits.items():
            for host in committed:
                changes.mark_commit(key, host)
                if trace.confirmed.get(key, {}).get(host) is False:
                    # unconfirmed commit-confirm: the rollback lets the driver cancel it
                    changes.mark_pending_confirm(key, host)
        steps = list(self.runbook.model.steps)
        for st in trace.executed():
            if not 1 <= st.index <= len(steps):
                continue
            status = StepStatus(st.status) if st.status else StepStatus.INTERRUPTED
            rec = StepRecord(st.name, steps[st.index - 1].kind, Phase.STEP, status=status)
            self.progress.executed.append(Executed(st.key, steps[st.index - 1], rec))
        for st in trace.steps.values():
            # the report shows the whole run, not only what ran after the crash
            status = StepStatus(st.status) if st.status else StepStatus.INTERRUPTED
            self.record.steps.append(
                StepRecord(
                    st.name,
                    "",
                    Phase(st.phase),
                    status=status,
                    started=_when(st.started),
                    ended=_when(st.ended),
                    message="before the crash",
                )
            )

    def run(self) -> Any:
        self._note(
            f"{self.action} by pid {os.getpid()}: the run's process died in state "
            f"{self.trace.state}"
            + (f", during step {self.trace.interrupted.key!r}" if self.trace.interrupted else "")
        )
        try:
            with self._signals():
                try:
                    self._set_state(State(self.trace.state))
                    if self.action == "abort":
                        self._abort()
                    else:
                        self._resume()
                except LeaveChanged:
                    leave_changed(self)
        finally:
            self.record.ended = datetime.now(UTC)
            if self.lifecycle.state in OUTCOME_OF:
                self.record.outcome = OUTCOME_OF[self.lifecycle.state]
            self.bus.emit(RunEnded(self.record, {"state": self.lifecycle.state.value}))
            self.bus.close()
            self.journal.close()
            self.nr.close_connections(on_good=True, on_failed=True)
        return self.record

    def _set_state(self, state: State) -> None:
        # The lifecycle restarts where the journal left it; no trigger fired, none journaled.
        self.lifecycle.state = state

    # --- abort ------------------------------------------------------------------------

    def _abort(self) -> None:
        state = self.lifecycle.state
        if state in (State.PENDING, State.PRECHECKING) and not self.trace.touched():
            self._set_state(State.PRECHECKING)
            self._note("aborted before any change: nothing to roll back")
            self.lifecycle.fire(Trigger.ABORT)
            return
        if state in (State.PENDING, State.PRECHECKING):
            self._set_state(State.EXECUTING)
        if self.lifecycle.state in (State.EXECUTING, State.POSTCHECKING):
            self.lifecycle.fire(Trigger.ABORT)
        elif self.lifecycle.state is not State.ROLLING_BACK:
            # a final state without run_ended (rollback_failed, stopped): roll back again
            self._set_state(State.ROLLING_BACK)
        self._rollback()

    # --- resume -----------------------------------------------------------------------

    def _resume(self) -> None:
        state = self.lifecycle.state
        if state in (State.PENDING, State.PRECHECKING):
            # Nothing was changed before the steps: start the drill over, from its prechecks.
            self._set_state(State.PENDING)
            self.record.steps.clear()
            self.progress.executed.clear()
            self.lifecycle.fire(Trigger.START)
            self._drive()
            return
        if state is State.ROLLING_BACK:
            self._rollback()
            return
        if state is State.EXECUTING:
            self._settle(lambda: self._execute_from(self._resume_index()))
        elif state is State.POSTCHECKING:
            self._settle(self._postchecks)
        else:
            self._note(f"nothing to resume in state {state.value}")

    def _resume_index(self) -> int:
        """0-based index of the first step to (re)consider."""
        current = self.trace.interrupted
        if current is not None and current.phase == Phase.STEP.value:
            return current.index - 1
        done = [s.index for s in self.trace.executed()]
        return max(done, default=0)

    def _execute_from(self, start: int) -> Trigger | None:
        steps = list(self.runbook.model.steps)
        current = self.trace.interrupted
        for index in range(start, len(steps)):
            step = steps[index]
            key = f"{Phase.STEP.value}:{index + 1}:{step.name}"
            rec = StepRecord(step.name, step.kind, Phase.STEP)
            self.progress.executed = [e for e in self.progress.executed if e.key != key]
            self.progress.executed.append(Executed(key, step, rec))
            if current is not None and current.key == key and self._already_done(step, key):
                rec.status, rec.message = StepStatus.OK, "resumed: effect verified, not repeated"
                with self._step_scope(key, rec, self.ctx.hosts_for(step)):
                    pass
                continue
            self._run_step(step, Phase.STEP, index, rec)
            verdict = self._verdict(step, rec)
            if verdict is not None:
                return verdict
        self.lifecycle.fire(Trigger.STEPS_DONE)
        return self._postchecks()

    def _postchecks(self) -> Trigger | None:
        if self._run_all(self.runbook.model.postchecks, Phase.POSTCHECK):
            self.lifecycle.fire(Trigger.POSTCHECKS_PASSED)
            return None
        self.lifecycle.fire(Trigger.POSTCHECKS_FAILED)
        return Trigger.POSTCHECKS_FAILED

    def _already_done(self, step: StepBase, key: str) -> bool:
        """Re-verify the effect of the step the process died in (never repeat it blindly)."""
        if not isinstance(step, ConfigStep):
            return False  # checks and waits are safe to run again; so is their verdict
        hosts = self.ctx.hosts_for(step)
        rec = StepRecord(f"re-verify {step.name!r}", "check", Phase.STEP)
        with self._step_scope(f"reverify:{key}", rec, hosts):
            if step.check is not None and step.confirm is None:
                outcome = check.run_spec(step.check, self.ctx, hosts, rec.name)
            else:
                outcome = StepOutcome.from_hosts(
                    run_per_host(self.ctx, hosts, lambda t: _in_place(t, step, self), rec.name)
                )
            self._apply(rec, outcome)
        done = outcome.ok
        self._note(
            f"step {step.name!r} was in progress when the run died: its effect is "
            + ("in place; not repeated" if done else "not (fully) in place; running it again")
        )
        return done


def _in_place(task: Task, step: ConfigStep, engine: RecoveryEngine) -> HostResult:
    """Fails when the step's candidate still differs from the running config."""
    from drill.steps.config import render_for

    dev = device(task)
    if dev.has_pending_commit():
        # The dead run's commit-confirm was never confirmed: cancel it now rather than let
        # the device revert in the middle of the resumed run.
        dev.rollback()
        return HostResult(failed=True, error="unconfirmed commit cancelled and reverted")
    candidate = render_for(task, step, engine.ctx)
    if step.mode == "replace":
        dev.load_replace_candidate(config=candidate)
    else:
        dev.load_merge_candidate(config=candidate)
    try:
        diff = dev.compare_config() or ""
    finally:
        dev.discard_config()
    if diff.strip():
        return HostResult(failed=True, error="the candidate differs from the running config")
    return HostResult()
