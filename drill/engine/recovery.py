"""Where ``drill resume``/``drill abort`` start: data computed from a dead run's journal.

:class:`Recovery` is what the engine had in memory when the process died (lifecycle state,
snapshots, per-step pre-change configs, hosts a commit may have touched, the step in
progress, the steps so far for the report). :class:`~drill.engine.runner.Engine` starts from
it instead of from the beginning; there is no second engine.

``resume`` re-verifies the step that was in progress instead of repeating it blindly
(:func:`reverify`); ``abort`` rolls back everything the journal says was changed and proves
the restore, as a failed run does.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from nornir.core.task import Task

from drill.engine.context import StepContext
from drill.engine.events import StepKey
from drill.engine.hosts import device, journaled_commit, run_per_host
from drill.engine.machine import State
from drill.engine.records import HostResult, Phase, StepRecord
from drill.engine.trace import IsolationTrace, Trace
from drill.runbook.model import ConfigStep
from drill.steps import check
from drill.steps.base import StepOutcome
from drill.steps.config import render_for

log = logging.getLogger(__name__)

Action = Literal["resume", "abort"]


@dataclass(frozen=True)
class Recovery:
    action: Action
    state: State  # where the dead run's lifecycle stopped
    started: datetime | None
    history: tuple[StepRecord, ...]  # every step journaled so far, for the report
    done: tuple[tuple[StepKey, StepRecord], ...]  # runbook steps that ran or started
    interrupted: StepKey | None  # the runbook step the process died in
    snapshots: dict[str, Path] = field(default_factory=dict)
    preconfig: dict[StepKey, dict[str, Path]] = field(default_factory=dict)
    commits: dict[StepKey, tuple[str, ...]] = field(default_factory=dict)
    pending_confirm: dict[StepKey, frozenset[str]] = field(default_factory=dict)
    died_in: str = ""  # for the note: "state executing, during step 'step:2:x'"
    isolation: IsolationTrace | None = None  # a cut the dead run never saw lifted

    @classmethod
    def of(cls, trace: Trace, action: Action) -> Recovery:
        pending = {
            key: frozenset(h for h, ok in hosts.items() if ok is False)
            for key, hosts in trace.confirmed.items()
        }
        open_steps = trace.open_steps()
        during = f", during step {str(open_steps[-1].key)!r}" if open_steps else ""
        interrupted = trace.interrupted
        return cls(
            action=action,
            state=trace.state,
            started=trace.started,
            history=tuple(s.record() for s in trace.steps.values()),
            done=tuple((s.key, s.record()) for s in trace.executed()),
            interrupted=interrupted.key if interrupted is not None else None,
            snapshots={h: Path(p) for h, p in trace.snapshots.items()},
            preconfig={
                k: {h: Path(p) for h, p in saved.items()} for k, saved in trace.preconfig.items()
            },
            commits={k: tuple(hosts) for k, hosts in trace.commits.items()},
            pending_confirm={k: hosts for k, hosts in pending.items() if hosts},
            died_in=f"state {trace.state.value}{during}",
            isolation=trace.isolation_open,
        )

    @property
    def touched(self) -> bool:
        return any(self.commits.values())

    def next_index(self) -> int:
        """0-based index of the first runbook step to (re)consider."""
        if self.interrupted is not None:
            return self.interrupted.index - 1
        return max((key.index for key, _ in self.done), default=0)


def reverify_key(key: StepKey) -> StepKey:
    return StepKey(phase=Phase.REVERIFY, index=key.index, name=f"re-verify {key.name!r}", of=key)


def reverify(step: ConfigStep, ctx: StepContext, hosts: list[str], name: str) -> StepOutcome:
    """Is the effect of the step a dead run was in already there? Its ``check`` if it has
    one (and no commit-confirm); otherwise whether the candidate still differs."""
    if step.check is not None and step.confirm is None:
        return check.run_spec(step.check, ctx, hosts, name)
    return StepOutcome.from_hosts(run_per_host(ctx, hosts, lambda t: _in_place(t, step, ctx), name))


def _in_place(task: Task, step: ConfigStep, ctx: StepContext) -> HostResult:
    """Fails when the step's candidate still differs from the running config."""
    dev = device(task)
    if dev.has_pending_commit():
        # The dead run's commit-confirm was never confirmed: cancel it now rather than let
        # the device revert in the middle of the resumed run.
        with journaled_commit(ctx, task.host.name):
            dev.rollback()
        return HostResult(failed=True, error="unconfirmed commit cancelled and reverted")
    candidate = render_for(task, step, ctx)
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
