"""``validate`` steps: a NAPALM validation file through the driver's compliance_report.

nornir_napalm's napalm_validate does not fail on ``complies: false``; this step does.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from nornir.core.task import Task

from drill.engine.context import StepContext
from drill.engine.hosts import device, run_per_host
from drill.engine.records import HostResult
from drill.runbook.model import ValidateStep
from drill.steps.base import StepOutcome

log = logging.getLogger(__name__)


def run(step: ValidateStep, ctx: StepContext, hosts: list[str]) -> StepOutcome:
    if not hosts:
        return StepOutcome.failed("a validate step needs hosts ('on')")
    path = ctx.runbook.path.parent / step.file

    def validate(task: Task) -> HostResult:
        report = device(task).compliance_report(validation_file=str(path))
        if report.get("complies"):
            return HostResult()
        return HostResult(failed=True, error=f"{task.host.name}: {summarize(report)}")

    return StepOutcome.from_hosts(run_per_host(ctx, hosts, validate, step.name))


def summarize(report: dict[str, Any]) -> str:
    """The parts of a compliance report that do not comply.

    >>> summarize({"complies": False, "skipped": [], "get_facts": {"complies": False,
    ...     "present": {"os_version": {"complies": False, "actual_value": "8.4",
    ...     "expected_value": "9.0", "nested": False}}, "missing": [], "extra": []}})
    'get_facts: os_version expected 9.0, got 8.4'
    """
    parts: list[str] = []
    for getter, result in report.items():
        if not isinstance(result, dict) or result.get("complies", True):
            continue
        for key, detail in (result.get("present") or {}).items():
            if isinstance(detail, dict) and not detail.get("complies", True):
                if detail.get("nested"):
                    parts.append(f"{getter}: {key} differs: {json.dumps(detail.get('diff'))}")
                else:
                    parts.append(
                        f"{getter}: {key} expected {detail.get('expected_value')}, "
                        f"got {detail.get('actual_value')}"
                    )
        parts += [f"{getter}: {key} missing" for key in result.get("missing") or []]
        parts += [f"{getter}: {key} unexpected" for key in result.get("extra") or []]
    return "; ".join(parts) or "does not comply"
