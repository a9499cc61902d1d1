"""``pause`` steps: wait a fixed time (only where no condition can be polled)."""

from __future__ import annotations

import logging

from drill.engine.context import StepContext
from drill.runbook.model import PauseStep
from drill.steps.base import StepOutcome

log = logging.getLogger(__name__)


def run(step: PauseStep, ctx: StepContext, hosts: list[str]) -> StepOutcome:
    if ctx.abort.wait(float(step.duration)):
        return StepOutcome.failed("aborted during pause")
    return StepOutcome(message=f"paused {step.duration}")
