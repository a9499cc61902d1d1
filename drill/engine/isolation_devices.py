"""The isolation rehearsal's cut on devices: the runbook's ``isolate.cut`` config steps, each
committed with the driver's revert timer set to the isolation's length and never confirmed
(docs/driver.md, "The revert timer"). The timer runs on the device: a dead or disconnected
orchestrator cannot leave a site cut off. drill only waits for the devices to revert, proves
each one is back to its config from before the cut, and reverts at once what is late.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from nornir.core.task import Task

from drill.engine.context import StepContext
from drill.engine.deadman import reach
from drill.engine.events import StepKey
from drill.engine.hosts import journaled_commit, run_per_host
from drill.engine.normalize import normalizer_for
from drill.engine.records import HostResult, Phase, StepRecord, StepStatus
from drill.errors import DrillError
from drill.runbook.model import ConfigStep, IsolateSpec

log = logging.getLogger(__name__)

GRACE_S = 30.0  # frr-reload of a whole config after the timer fires, as drill.engine.deadman
POLL_S = 0.5

# (step, position, revert timer in s) -> its record: a journaled isolate-phase step
RunCut = Callable[[ConfigStep, int, int], tuple[StepKey, StepRecord]]
# a journaled isolate-phase step around what follows: its name -> the context inside it
OpenScope = Callable[[str], AbstractContextManager[StepContext]]


class DeviceCut:
    def __init__(self, spec: IsolateSpec, run: RunCut, scope: OpenScope) -> None:
        self.spec = spec
        self.run = run
        self.scope = scope
        self.cut_hosts: dict[str, tuple[StepKey, Path]] = {}  # host -> its cut step, pre-cut config
        self.due: float = 0.0  # monotonic time the last timer fires

    def cut(self, ctx: StepContext, cutting: Callable[[], None] = lambda: None) -> None:
        """Commit every cut step under a revert timer of ``for``; DrillError when one fails
        or changes nothing on a host it targets (the site would not be cut: the rehearsal
        would prove nothing). What was committed reverts by itself all the same, and is known
        here even when a step is interrupted half-way. ``cutting``: called after each step
        (drill journals the new bound of the cut)."""
        timer = max(1, round(float(self.spec.for_)))
        for number, step in enumerate(self.spec.cut, start=1):
            key: StepKey | None = None
            try:
                key, rec = self.run(step, number, timer)
            finally:
                # the latest commit's timer bounds them all
                self.due = time.monotonic() + float(self.spec.for_)
                self._collect(ctx, key, step)
                cutting()
            if rec.status is StepStatus.FAILED:
                raise DrillError(f"cut step {step.name!r} failed: {rec.message or 'see its hosts'}")
            unchanged = sorted(h for h, r in rec.hosts.items() if not r.changed)
            if unchanged:
                raise DrillError(
                    f"cut step {step.name!r} changed nothing on {', '.join(unchanged)} "
                    "(its config is already there?): the site would not be cut off"
                )

    def _collect(self, ctx: StepContext, key: StepKey | None, step: ConfigStep) -> None:
        """Every host a cut step may have changed, mid-commit ones included; an interrupted
        step's run never returned its key: it is found by phase and name."""

        def which(k: StepKey) -> bool:
            if key is not None:
                return k == key
            return k.phase is Phase.ISOLATE and k.name == step.name

        for k, host, saved in ctx.changes.changed_with_preconfig(which):
            self.cut_hosts[host] = (k, saved)

    def await_revert(self) -> str:
        """Wait for every cut device's own timer; who lifted the cut (``device revert
        timer``, or ``drill`` when a device was late and drill reverted it)."""
        late: list[str] = []
        with self.scope("devices revert the cut by themselves") as ctx:
            results = run_per_host(
                ctx, sorted(self.cut_hosts), lambda task: self._await(task, ctx, late), "revert"
            )
            _record(ctx, results)
        failed = {h: r.error for h, r in results.items() if r.failed}
        if failed:
            raise DrillError(
                "cut not proven reverted on "
                + "; ".join(f"{h}: {e}" for h, e in sorted(failed.items()))
            )
        return "drill" if late else "device revert timer"

    def lift_now(self) -> bool:
        """Interrupted: revert every pending cut at once (``rollback()`` disarms the timer),
        also while the run is being interrupted. True when every cut device is proven back to
        its config from before the cut."""
        if not self.cut_hosts:
            return True
        with self.scope("lift the cut now") as ctx:
            results = run_per_host(
                ctx,
                sorted(self.cut_hosts),
                lambda task: self._revert(task, ctx),
                "lift",
                undo=True,
            )
            _record(ctx, results)
        return len(results) == len(self.cut_hosts) and not any(r.failed for r in results.values())

    def _await(self, task: Task, ctx: StepContext, late: list[str]) -> HostResult:
        host = task.host.name
        deadline = self.due + GRACE_S
        dev = reach(task, deadline)
        while dev.has_pending_commit():
            if time.monotonic() > deadline:
                late.append(host)
                return self._revert(task, ctx)
            time.sleep(POLL_S)
        return self._prove(task, dev, "reverted by its own timer")

    def _revert(self, task: Task, ctx: StepContext) -> HostResult:
        dev = reach(task, time.monotonic() + GRACE_S)
        if dev.has_pending_commit():
            with journaled_commit(ctx, task.host.name):
                dev.rollback()
        return self._prove(task, dev, "reverted by drill")

    def _prove(self, task: Task, dev: Any, how: str) -> HostResult:
        host = task.host.name
        key, saved = self.cut_hosts[host]
        normalize = normalizer_for(task.host.platform)
        running = normalize(dev.get_config(retrieve="running")["running"])
        if running != normalize(saved.read_text(encoding="utf-8")):
            return HostResult(failed=True, error=f"{host}: not back to its config before the cut")
        log.info("%s: the cut (%s) %s", host, key.name, how)
        return HostResult(changed=True, diff=f"the cut {how}; config as before it")


def _record(ctx: StepContext, results: dict[str, HostResult]) -> None:
    rec = ctx.step.record
    rec.hosts.update(results)
    if any(r.failed for r in results.values()):
        rec.status, rec.message = StepStatus.FAILED, "not every device is back as before the cut"


def hosts_of(spec: IsolateSpec, hosts_for: Callable[[ConfigStep], list[str]]) -> Iterator[str]:
    for step in spec.cut:
        yield from hosts_for(step)
