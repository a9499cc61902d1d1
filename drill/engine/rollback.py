"""Rollback, scoped: per step, in reverse order, only steps that ran, only hosts they changed.

``auto`` (config steps) restores the running config captured just before that step with
load_replace_candidate + commit -- not NAPALM's in-session rollback, which only knows the
last commit of one session. A host left with an unconfirmed commit-confirm is rolled back
by the driver (``rollback()`` cancels the pending commit) instead. Explicit rollback steps
run on their own targets narrowed to the hosts the step changed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from nornir.core.task import Task

from drill.engine import deadman
from drill.engine.context import StepContext
from drill.engine.events import StepKey
from drill.engine.hosts import device, journaled_commit, run_per_host
from drill.engine.records import HostResult, StepRecord, StepStatus
from drill.runbook.model import CommandStep, ConfigStep, FaultStep, Step
from drill.secrets import mask_secrets
from drill.steps import fault
from drill.steps.base import StepOutcome

log = logging.getLogger(__name__)


@dataclass
class Executed:
    """A step that ran (or started to): what the rollback needs to know about it."""

    key: StepKey
    step: Step
    record: StepRecord


@dataclass
class RollbackAction:
    """One thing the rollback will do, for ``drill plan`` and the engine alike."""

    of: Executed
    name: str
    kind: str
    hosts: list[str]
    run: Callable[[StepContext], StepOutcome]


def restore_preconfig(
    ctx: StepContext, key: StepKey, hosts: list[str], name: str, revert_in: float | None = None
) -> StepOutcome:
    saved = ctx.changes.preconfig.get(key, {})
    pending = ctx.changes.pending_confirm.get(key, set())

    def restore(task: Task) -> HostResult:
        host = task.host.name
        if host in pending:
            # may be unreachable until its own revert timer fires: see drill.engine.deadman
            settled = deadman.settle(task, ctx, saved[host], revert_in)
            if settled is not None:
                return settled
        dev = device(task)
        dev.load_replace_candidate(config=saved[host].read_text(encoding="utf-8"))
        diff = dev.compare_config() or ""
        if diff.strip():
            with journaled_commit(ctx, host):
                dev.commit_config()
        else:
            dev.discard_config()
        return HostResult(changed=bool(diff.strip()), diff=mask_secrets(diff, ctx.secrets))

    missing = [h for h in hosts if h not in saved]
    results = run_per_host(ctx, [h for h in hosts if h in saved], restore, name)
    for host in missing:
        results[host] = HostResult(failed=True, error="no pre-step config was captured")
    return StepOutcome.from_hosts(results)


def actions_for(
    done: Executed,
    changed: list[str],
    hosts_for: Callable[[Step], list[str]],
    run_step: Callable[[Step, StepContext, list[str]], StepOutcome],
) -> list[RollbackAction]:
    step = done.step
    if isinstance(step, ConfigStep):
        if not changed or step.rollback == "none":
            return []
        if step.rollback == "auto":
            return [
                RollbackAction(
                    done,
                    f"restore config before {step.name!r}",
                    "config",
                    changed,
                    lambda ctx: restore_preconfig(
                        ctx,
                        done.key,
                        changed,
                        f"rollback {step.name}",
                        float(step.confirm.timeout) if step.confirm else None,
                    ),
                )
            ]
        return _explicit(done, step.rollback, changed, hosts_for, run_step)
    if isinstance(step, FaultStep) and step.action != "clear" and step.rollback == "auto":
        if done.record.status == StepStatus.SKIPPED:
            return []
        name = f"clear faults of {step.name!r}"
        return [RollbackAction(done, name, "fault", [], lambda ctx: fault.undo(step, ctx))]
    if isinstance(step, CommandStep) and isinstance(step.rollback, list):
        if done.record.status == StepStatus.SKIPPED:
            return []
        return _explicit(done, step.rollback, None, hosts_for, run_step)
    return []


def _explicit(
    done: Executed,
    steps: Sequence[Step],
    changed: list[str] | None,
    hosts_for: Callable[[Step], list[str]],
    run_step: Callable[[Step, StepContext, list[str]], StepOutcome],
) -> list[RollbackAction]:
    actions: list[RollbackAction] = []
    for rstep in steps:
        if rstep.on:
            hosts = hosts_for(rstep)
            if changed is not None:
                hosts = [h for h in hosts if h in changed]
        else:
            hosts = list(changed or [])

        def run(ctx: StepContext, rstep: Step = rstep, hosts: list[str] = hosts) -> StepOutcome:
            return run_step(rstep, ctx, hosts)

        actions.append(RollbackAction(done, rstep.name, rstep.kind, hosts, run))
    return actions


def skipped_note(done: Executed, changed: list[str]) -> str | None:
    step = done.step
    if isinstance(step, ConfigStep) and changed and step.rollback == "none":
        return f"step {step.name!r} has rollback: none; left changed on {', '.join(changed)}"
    ran = done.record.status != StepStatus.SKIPPED
    if isinstance(step, CommandStep) and step.rollback == "none" and not step.read_only and ran:
        return f"command step {step.name!r} has no rollback; its effects stay"
    return None
