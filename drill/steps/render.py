"""Render a config step's text for one host (inline ``config`` or ``template`` file)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from nornir.core.inventory import Host

from drill.runbook.model import CheckSpec, ConfigStep
from drill.runbook.templates import Origin, build_context, render
from drill.steps.base import host_view

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


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def context_for(runbook: Any, host: Host | None) -> dict[str, Any]:
    """What templates see, from the loader when it is there (same view as validation)."""
    loader_context = getattr(runbook, "template_context", None)
    if loader_context is not None:
        return dict(loader_context(host.name if host is not None else None))
    model = runbook.model
    return build_context(
        vars_=runbook.vars,
        host=host_view(host) if host is not None else None,
        mode=model.mode,
        runbook={"name": model.name},
    )


def render_value(runbook: Any, text: str, host: Host | None) -> str:
    """Render one string argument (check args, commands, URLs, argv); plain text as is."""
    if not _is_template(text):
        return text
    return render(text, context_for(runbook, host), origin=Origin(str(runbook.path)))


def render_spec(spec: CheckSpec, runbook: Any, host: Host | None) -> CheckSpec:
    """A check's string arguments rendered (for one host, or none for local checks)."""
    texts = [v for v in spec.args.values() if isinstance(v, str)]
    texts += list(spec.commands or []) + [t for t in (spec.http, spec.traceroute) if t]
    if not any(_is_template(t) for t in texts):
        return spec
    update: dict[str, Any] = {
        "args": {
            k: render_value(runbook, v, host) if isinstance(v, str) else v
            for k, v in spec.args.items()
        }
    }
    if spec.commands is not None:
        update["commands"] = [render_value(runbook, c, host) for c in spec.commands]
    for key in ("http", "traceroute"):
        value = getattr(spec, key)
        if value:
            update[key] = render_value(runbook, value, host)
    return spec.model_copy(update=update)
