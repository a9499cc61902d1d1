"""Step kinds, one module each; :data:`HANDLERS` maps a step's ``kind`` to its runner."""

from __future__ import annotations

from collections.abc import Callable

from drill.engine.context import StepContext
from drill.runbook.model import StepBase
from drill.steps import approval, check, command, config, fault, pause, validate, wait_until
from drill.steps.base import StepOutcome

Handler = Callable[[StepBase, StepContext, list[str]], StepOutcome]

HANDLERS: dict[str, Handler] = {
    "config": config.run,
    "check": check.run,
    "wait_until": wait_until.run,
    "validate": validate.run,
    "pause": pause.run,
    "approval": approval.run,
    "command": command.run,
    "fault": fault.run,
}

# Kinds that only read: in dry-run everything else inside `steps` is listed, not run.
READ_ONLY_KINDS = frozenset({"check", "wait_until", "validate"})
