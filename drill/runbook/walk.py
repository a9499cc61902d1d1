"""Every step of a runbook with its place: phase steps and inline rollback steps alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from drill.runbook.model import CommandStep, ConfigStep, Runbook, Step
from drill.runbook.yamlpos import JsonPath

PHASES = ("prechecks", "steps", "postchecks")


@dataclass(frozen=True)
class StepRef:
    """A step, its JSON path in the runbook, and the step whose inline rollback holds it."""

    path: JsonPath
    step: Step
    parent: StepRef | None = None

    @property
    def phase(self) -> str:
        return str(self.path[0])


def iter_steps(model: Runbook) -> Iterator[StepRef]:
    """Depth first, in file order: each step, then its inline rollback steps."""
    for phase in PHASES:
        for index, step in enumerate(getattr(model, phase)):
            yield from _walk(StepRef((phase, index), step))
    if model.isolate is not None:
        for index, cut in enumerate(model.isolate.cut):
            yield StepRef(("isolate", "cut", index), cut)


def _walk(ref: StepRef) -> Iterator[StepRef]:
    yield ref
    step = ref.step
    if isinstance(step, ConfigStep | CommandStep) and isinstance(step.rollback, list):
        for index, child in enumerate(step.rollback):
            yield from _walk(StepRef((*ref.path, "rollback", index), child, ref))
