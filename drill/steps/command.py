"""``command`` steps: a local process (argv list, explicit environment, timeout), optionally
from a vantage point. ``read_only: true`` commands also run in dry-run."""

from __future__ import annotations

import logging
import subprocess

from drill.engine.context import StepContext
from drill.engine.records import HostResult
from drill.runbook.model import CommandStep
from drill.secrets import mask_secrets
from drill.steps import vantage
from drill.steps.base import StepOutcome
from drill.steps.render import render_value

log = logging.getLogger(__name__)
MAX_OUTPUT = 4000


def run(step: CommandStep, ctx: StepContext, hosts: list[str]) -> StepOutcome:
    where = step.from_ or "local"
    cwd = str(ctx.runbook.path.parent / step.cwd) if step.cwd else str(ctx.runbook.path.parent)
    timeout = float(step.timeout) if step.timeout else None
    argv = [render_value(ctx.runbook, a, None) for a in step.argv]
    env = {k: render_value(ctx.runbook, v, None) for k, v in step.env.items()}
    try:
        proc = vantage.run(argv, step.from_, timeout=timeout, env=env, cwd=cwd)
    except subprocess.TimeoutExpired:
        return StepOutcome.failed(f"{where}: {step.argv[0]} timed out after {timeout:g}s")
    except OSError as exc:
        return StepOutcome.failed(f"{where}: cannot run {step.argv[0]}: {exc}")
    output = mask_secrets((proc.stdout + proc.stderr)[-MAX_OUTPUT:], ctx.secrets)
    result = HostResult(changed=not step.read_only, diff=output)
    if proc.returncode != 0:
        result.failed = True
        result.error = f"{where}: {step.argv[0]} exited {proc.returncode}: {output.strip()}"
    return StepOutcome.from_hosts({where: result})
