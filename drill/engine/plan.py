"""What a run will do, without touching anything: the resolved order, the hosts per step,
and the rollback plan (``drill plan``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from drill.engine.context import LoadedRunbookLike
from drill.engine.records import Phase
from drill.runbook.model import CheckSpec, CommandStep, ConfigStep, FaultStep, Step

log = logging.getLogger(__name__)


@dataclass
class PlannedStep:
    phase: Phase
    number: int
    name: str
    kind: str
    hosts: list[str]
    on_failure: str
    detail: str = ""


@dataclass
class Plan:
    runbook: str
    mode: str
    steps: list[PlannedStep] = field(default_factory=list)
    rollback: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook,
            "mode": self.mode,
            "steps": [
                {
                    "phase": s.phase.value,
                    "number": s.number,
                    "name": s.name,
                    "kind": s.kind,
                    "hosts": s.hosts,
                    "on_failure": s.on_failure,
                    "detail": s.detail,
                }
                for s in self.steps
            ],
            "rollback": self.rollback,
        }


def _detail(step: Step, runbook: LoadedRunbookLike) -> str:
    if isinstance(step, CheckSpec) and (step.http or step.traceroute):
        # Show what will really be fetched or traced, as validation rendered it.
        render = getattr(runbook, "render_check", None)
        spec = render(step, None) if render is not None else step
        return f"http {spec.http}" if spec.http else f"traceroute {spec.traceroute}"
    if isinstance(step, ConfigStep):
        parts: list[str] = [step.mode]
        if step.batch:
            parts.append(f"batches of {step.batch}")
        if step.confirm:
            parts.append(f"commit-confirm {step.confirm.timeout}")
        return ", ".join(parts)
    if isinstance(step, CommandStep):
        return " ".join(step.argv) + (" (read-only)" if step.read_only else "")
    if isinstance(step, FaultStep):
        what = [f"node {n}" for n in step.nodes] + [f"link {x}" for x in step.links]
        return f"lab {step.lab}: {step.action} {', '.join(what) or 'every fault'}".rstrip()
    getter = getattr(step, "getter", None)
    return str(getter or getattr(step, "http", None) or getattr(step, "traceroute", "") or "")


def build_plan(runbook: LoadedRunbookLike) -> Plan:
    model = runbook.model
    plan = Plan(model.name, model.mode)
    phases: list[tuple[Phase, Sequence[Step]]] = [
        (Phase.PRECHECK, model.prechecks),
        (Phase.STEP, model.steps),
        (Phase.POSTCHECK, model.postchecks),
    ]
    for phase, steps in phases:
        for number, step in enumerate(steps, start=1):
            vantage = getattr(step, "from_", None)
            hosts = runbook.hosts_for(step) if step.on else [vantage] if vantage else []
            plan.steps.append(
                PlannedStep(
                    phase,
                    number,
                    step.name,
                    step.kind,
                    hosts,
                    step.on_failure,
                    _detail(step, runbook),
                )
            )
    plan.rollback = rollback_plan(runbook)
    return plan


def rollback_plan(runbook: LoadedRunbookLike) -> list[str]:
    """One line per rollback action, in the order they would run (reverse of the steps)."""
    lines: list[str] = []
    for step in reversed(runbook.model.steps):
        if isinstance(step, ConfigStep):
            hosts = ", ".join(runbook.hosts_for(step)) or "-"
            if step.rollback == "auto":
                lines.append(
                    f"{step.name}: restore the running config captured before it "
                    f"(replace + commit) on the hosts it changed, of: {hosts}"
                )
            elif step.rollback == "none":
                lines.append(f"{step.name}: no rollback (changes on {hosts} stay)")
            else:
                names = ", ".join(s.name for s in step.rollback)
                lines.append(f"{step.name}: run {names} on the hosts it changed, of: {hosts}")
        elif isinstance(step, FaultStep) and step.action != "clear" and step.rollback == "auto":
            lines.append(f"{step.name}: clear the faults it injected (lab {step.lab})")
        elif isinstance(step, CommandStep) and isinstance(step.rollback, list):
            names = ", ".join(s.name for s in step.rollback)
            lines.append(f"{step.name}: run {names} if it ran")
    lines.append(
        "then: re-run the prechecks (verify) and compare every changed host's running "
        "config with its snapshot from before the first change"
    )
    return lines
