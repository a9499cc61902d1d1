"""Templates at run time: a config step's text for one host, and string arguments of checks
and commands. Everything goes through drill.runbook.templates.render_in, the function
validation renders with, with the same context."""

from __future__ import annotations

import logging
from typing import Any

from nornir.core.inventory import Host

from drill.engine.context import LoadedRunbookLike
from drill.runbook.model import CheckSpec, ConfigStep
from drill.runbook.templates import Origin, render_in
from drill.steps.base import host_view

log = logging.getLogger(__name__)


def render_config(step: ConfigStep, runbook: LoadedRunbookLike, host: Host) -> str:
    """The configuration a config step sends to ``host``."""
    text, origin = runbook.config_source(step)
    return render_in(text, origin, runbook.model, runbook.vars, host_view(host))


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def render_value(runbook: LoadedRunbookLike, text: str, host: Host | None) -> str:
    """Render one string argument (check args, commands, URLs, argv); plain text as is."""
    if not _is_template(text):
        return text
    view = host_view(host) if host is not None else None
    return render_in(text, Origin(str(runbook.path)), runbook.model, runbook.vars, view)


def render_spec(spec: CheckSpec, runbook: LoadedRunbookLike, host: Host | None) -> CheckSpec:
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
