"""Step kinds, one module each; :func:`run_step` hands a step to the handler of its kind.

The dispatch is a ``match`` over the step union, so each handler is typed with its own step
class and mypy checks that every kind has one.
"""

from __future__ import annotations

from typing import assert_never

from drill.engine.context import StepContext
from drill.runbook.model import (
    ApprovalStep,
    CheckStep,
    CommandStep,
    ConfigStep,
    FaultStep,
    PauseStep,
    Step,
    ValidateStep,
    WaitUntilStep,
)
from drill.steps import approval, check, command, config, fault, pause, validate, wait_until
from drill.steps.base import StepOutcome


def run_step(step: Step, ctx: StepContext, hosts: list[str]) -> StepOutcome:
    match step:
        case ConfigStep():
            return config.run(step, ctx, hosts)
        case CheckStep():
            return check.run(step, ctx, hosts)
        case WaitUntilStep():
            return wait_until.run(step, ctx, hosts)
        case ValidateStep():
            return validate.run(step, ctx, hosts)
        case PauseStep():
            return pause.run(step, ctx, hosts)
        case ApprovalStep():
            return approval.run(step, ctx, hosts)
        case CommandStep():
            return command.run(step, ctx, hosts)
        case FaultStep():
            return fault.run(step, ctx, hosts)
        case _:
            assert_never(step)
