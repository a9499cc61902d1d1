"""``fault`` steps: inject or clear faults on a drill lab (drill.lab.faults), e.g. a whole
site blackholed at once for an unplanned site-loss drill. Never run in dry-run.

``rollback: auto`` (the default) clears what the step injected when the drill rolls back, so
a failed failback never leaves a site dark. On real networks the same drill cuts the site
with a config step (interfaces shut) under a commit-confirm timer instead.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from drill.engine.context import StepContext
from drill.engine.records import HostResult
from drill.errors import DrillError
from drill.runbook.model import FaultStep
from drill.steps.base import StepOutcome

if TYPE_CHECKING:
    from drill.lab.lab import Lab

log = logging.getLogger(__name__)


def targets(step: FaultStep) -> list[tuple[str, str]]:
    """``(kind, target)`` pairs for drill.lab.faults, nodes first.

    >>> targets(FaultStep(name="x", kind="fault", lab="l", action="blackhole",
    ...                   nodes=["dc1-edge"], links=["wan:dc2-edge"]))
    [('node', 'dc1-edge'), ('link', 'wan:dc2-edge')]
    """
    return [("node", n) for n in step.nodes] + [("link", link) for link in step.links]


def _where(step: FaultStep) -> str:
    return f"lab {step.lab}"


def run(step: FaultStep, ctx: StepContext, hosts: list[str]) -> StepOutcome:
    from drill.lab import faults
    from drill.lab.lab import Lab

    try:
        lab = Lab(ctx.runbook.path.parent / step.lab)
        if step.action == "clear":
            cleared = _clear(lab, step)
            text = "cleared: " + (", ".join(cleared) or "nothing was faulted")
        else:
            records = faults.apply_faults(lab, targets(step), step.action)
            text = f"{step.action}: " + ", ".join(r.key for r in records)
    except DrillError as exc:
        return StepOutcome.failed(f"{_where(step)}: {exc}")
    log.info("fault step %s: %s", step.name, text)
    return StepOutcome.from_hosts({_where(step): HostResult(changed=True, diff=text)})


def _clear(lab: Lab, step: FaultStep) -> list[str]:
    from drill.lab import faults

    if not targets(step):
        return faults.clear_faults(lab)
    cleared: list[str] = []
    for kind, target in targets(step):
        cleared += faults.clear_faults(lab, kind, target)
    return cleared


def undo(step: FaultStep, ctx: StepContext) -> StepOutcome:
    """The rollback of an injecting fault step: clear exactly its faults."""
    from drill.lab import faults
    from drill.lab.lab import Lab

    try:
        lab = Lab(ctx.runbook.path.parent / step.lab)
        cleared: list[str] = []
        for kind, target in targets(step):
            try:
                cleared += faults.clear_faults(lab, kind, target)
            except DrillError as exc:
                # already cleared (a later step brought the site back): nothing to undo
                log.debug("fault %s %s not active: %s", kind, target, exc)
    except DrillError as exc:
        return StepOutcome.failed(f"{_where(step)}: {exc}")
    text = "cleared: " + (", ".join(cleared) or "nothing left to clear")
    return StepOutcome.from_hosts({_where(step): HostResult(changed=bool(cleared), diff=text)})
