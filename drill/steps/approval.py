"""``approval`` steps: an operator confirms on the TTY; ``--yes`` answers for them; with no
TTY and no ``--yes`` the step fails (a drill never waits on a prompt nobody can see)."""

from __future__ import annotations

import logging

from drill.engine.context import StepContext
from drill.runbook.model import ApprovalStep
from drill.steps.base import StepOutcome

log = logging.getLogger(__name__)


def run(step: ApprovalStep, ctx: StepContext, hosts: list[str]) -> StepOutcome:
    if ctx.options.assume_yes:
        return StepOutcome(message="approved by --yes")
    ask = ctx.options.confirm
    if not ctx.options.interactive or ask is None:
        return StepOutcome.failed("approval needed but there is no TTY (use --yes to approve)")
    if ask(step.prompt):
        return StepOutcome(message=f"approved by {ctx.options.operator or 'operator'}")
    return StepOutcome.failed(f"not approved by {ctx.options.operator or 'operator'}")
