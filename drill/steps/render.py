"""Render a config step's text for one host (inline ``config`` or ``template`` file)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from drill.runbook.model import ConfigStep
from drill.runbook.templates import Origin, build_context, render

log = logging.getLogger(__name__)


def source_of(step: ConfigStep, runbook_path: Path) -> tuple[str, Origin]:
    """(template text, where it lives for error messages)."""
    if step.template is not None:
        path = runbook_path.parent / step.template
        return path.read_text(encoding="utf-8"), Origin(str(path))
    assert step.config is not None
    return step.config, Origin(str(runbook_path))


def render_for_host(
    step: ConfigStep,
    runbook_path: Path,
    host: dict[str, Any],
    variables: dict[str, Any],
    mode: str,
    runbook_name: str,
) -> str:
    text, origin = source_of(step, runbook_path)
    context = build_context(vars_=variables, host=host, mode=mode, runbook={"name": runbook_name})
    return render(text, context, origin=origin)
