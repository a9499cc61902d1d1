"""``wait_until`` steps: poll a check every ``interval`` until it holds or ``timeout``."""

from __future__ import annotations

import logging
import time

from drill.engine.context import StepContext
from drill.runbook.model import WaitUntilStep
from drill.steps import check
from drill.steps.base import StepOutcome

log = logging.getLogger(__name__)


def run(step: WaitUntilStep, ctx: StepContext, hosts: list[str]) -> StepOutcome:
    # A poll that fails is not news; only the final state per host is reported.
    scope = ctx.step
    scope.quiet = True
    try:
        return _poll(step, ctx, hosts)
    finally:
        scope.quiet = False


def _poll(step: WaitUntilStep, ctx: StepContext, hosts: list[str]) -> StepOutcome:
    deadline = time.monotonic() + float(step.timeout)
    attempts = 0
    pending = list(hosts)
    done: StepOutcome | None = None
    while True:
        attempts += 1
        # Only hosts still failing are polled again; those that passed stay passed.
        outcome = check.run_spec(step, ctx, pending, step.name)
        if done is None:
            done = outcome
        else:
            done.hosts.update(outcome.hosts)
        if outcome.ok:
            done.status, done.message = outcome.status, None
            done.message = f"held after {attempts} attempt(s)"
            return done
        pending = [h for h in pending if outcome.hosts.get(h) is None or outcome.hosts[h].failed]
        if time.monotonic() + float(step.interval) > deadline or ctx.abort.is_set():
            outcome.hosts = done.hosts
            outcome.message = f"still failing after {float(step.timeout):g}s: {outcome.message}"
            return outcome
        ctx.abort.wait(float(step.interval))
