"""``config`` steps: render per host, capture the running config, load, diff, commit.

Per host: the running config is saved just before the change (the step's ``auto``
rollback restores exactly that), the candidate is loaded (merge or replace), the diff is
taken (masked), then committed. ``confirm: {timeout}`` commits with ``revert_in``, runs
the step's ``check`` through a fresh connection, and confirms only if it passes; otherwise
the device reverts by itself. ``batch: N`` changes N hosts at a time and runs the step's
``check`` on them before the next batch. In dry-run the candidate is diffed and discarded.
"""

from __future__ import annotations

import logging
from typing import Any

from nornir.core.task import Task

from drill.engine.context import StepContext
from drill.engine.events import CommitDone, CommitStarted, PreConfigSaved
from drill.engine.hosts import device, fresh_device, run_per_host
from drill.engine.records import HostResult
from drill.runbook import replace_safety
from drill.runbook.model import ConfigStep
from drill.secrets import mask_secrets
from drill.steps import check
from drill.steps.base import StepOutcome
from drill.steps.render import render_config

log = logging.getLogger(__name__)


def run(step: ConfigStep, ctx: StepContext, hosts: list[str]) -> StepOutcome:
    if not hosts:
        return StepOutcome.failed("a config step needs hosts ('on')")
    size = step.batch or len(hosts)
    batches = [hosts[i : i + size] for i in range(0, len(hosts), size)]
    results: dict[str, HostResult] = {}
    for number, batch in enumerate(batches, start=1):
        results.update(run_per_host(ctx, batch, lambda task: apply(task, step, ctx), step.name))
        outcome = StepOutcome.from_hosts(results)
        if not outcome.ok:
            return outcome
        if ctx.dry_run or step.check is None or step.confirm is not None:
            continue
        gate = check.run_spec(step.check, ctx, batch, f"{step.name} check")
        for host, result in gate.hosts.items():
            if result.failed:
                results[host] = HostResult(
                    changed=results[host].changed,
                    diff=results[host].diff,
                    failed=True,
                    error=result.error,
                )
        if not gate.ok:
            left = sum(len(b) for b in batches[number:])
            gate.hosts = results
            gate.message = (
                f"batch {number}/{len(batches)} check failed"
                + (f", {left} host(s) not changed" if left else "")
                + f": {gate.message}"
            )
            return gate
    return StepOutcome.from_hosts(results)


def render_for(task: Task, step: ConfigStep, ctx: StepContext) -> str:
    return render_config(step, ctx.runbook, task.host)


def apply(task: Task, step: ConfigStep, ctx: StepContext) -> HostResult:
    host = task.host.name
    candidate = render_for(task, step, ctx)
    dev = device(task)
    running: str | None = None
    if not ctx.dry_run and not ctx.changes.has_preconfig(ctx.key, host):
        # A retry must keep the config from before the FIRST attempt: that is the rollback.
        running = dev.get_config(retrieve="running")["running"]
        path = ctx.rundir.save_config(f"{ctx.key}--{host}", running)
        ctx.changes.save_preconfig(ctx.key, host, path)
        ctx.bus.emit(PreConfigSaved(ctx.key, host, str(path)))
    if step.mode == "replace":
        # Before anything is loaded: a replace that would erase the device is refused.
        if running is None:
            running = dev.get_config(retrieve="running")["running"]
        replace_safety.check_replace(step, host, running, candidate)
    try:
        if step.mode == "replace":
            dev.load_replace_candidate(config=candidate)
        else:
            dev.load_merge_candidate(config=candidate)
        diff = dev.compare_config() or ""
    except Exception:
        _discard(dev)
        raise
    masked = mask_secrets(diff, ctx.secrets)
    if ctx.dry_run or not diff.strip():
        dev.discard_config()
        return HostResult(changed=False, diff=masked)
    return _commit(task, step, ctx, dev, masked)


def _commit(task: Task, step: ConfigStep, ctx: StepContext, dev: Any, diff: str) -> HostResult:
    host = task.host.name
    revert_in = int(step.confirm.timeout) if step.confirm else ctx.step.revert_after
    ctx.bus.emit(CommitStarted(ctx.key, host, revert_in))
    # From here on the host may be changed, whatever happens next: the rollback must visit it.
    ctx.changes.mark_commit(ctx.key, host)
    if revert_in is None:
        dev.commit_config()
        ctx.bus.emit(CommitDone(ctx.key, host))
        return HostResult(changed=True, diff=diff)
    dev.commit_config(revert_in=max(1, revert_in))
    if ctx.step.revert_after is not None:
        # the isolation rehearsal's cut: the device's own timer ends it, whatever happens here
        ctx.changes.mark_pending_confirm(ctx.key, host)
        ctx.bus.emit(CommitDone(ctx.key, host, confirmed=False))
        return HostResult(changed=True, diff=diff)
    problem = _confirm_check(task, step, ctx)
    if problem is None:
        dev.confirm_commit()
        ctx.bus.emit(CommitDone(ctx.key, host, confirmed=True))
        return HostResult(changed=True, diff=diff)
    ctx.changes.mark_pending_confirm(ctx.key, host)
    ctx.bus.emit(CommitDone(ctx.key, host, confirmed=False))
    return HostResult(
        changed=True,
        diff=diff,
        failed=True,
        error=f"{host}: not confirmed, the device reverts it within {revert_in}s: {problem}",
    )


def _confirm_check(task: Task, step: ConfigStep, ctx: StepContext) -> str | None:
    """Run the step's check through a NEW session: the change must not have cut us off."""
    try:
        fresh = fresh_device(task.host)
    except Exception as exc:
        return f"no new session after the change: {type(exc).__name__}: {exc}"
    try:
        if step.check is None:
            return None
        result = check.check_on_host(task, step.check, ctx.runbook, dev=fresh)
        return result.error if result.failed else None
    except Exception as exc:
        return f"check failed: {type(exc).__name__}: {exc}"
    finally:
        try:
            fresh.close()
        except Exception:
            log.debug("closing the confirm session of %s failed", task.host.name, exc_info=True)


def _discard(dev: Any) -> None:
    try:
        dev.discard_config()
    except Exception:
        log.debug("discard_config failed", exc_info=True)
