"""The dead-man switch's other half: rolling back a host whose commit-confirm was never
confirmed (the change may have cut management).

Such a host reverts by itself when its device-side timer fires. The rollback must not give
up because the host is unreachable right now: it retries until the timer's deadline (plus a
grace period) has passed, then either cancels a still-pending commit or proves the device
reverted by itself, and reports which.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from nornir.core.task import Task

from drill.engine.context import StepContext
from drill.engine.events import Note
from drill.engine.hosts import device, drop_connection, journaled_commit
from drill.engine.normalize import normalizer_for
from drill.engine.records import HostResult

log = logging.getLogger(__name__)

GRACE_S = 30.0  # frr-reload of a full config after the timer fires, plus management recovery
RETRY_S = 2.0


def reach(task: Task, deadline: float) -> Any:
    """The host's connection, retried until ``deadline`` (monotonic)."""
    while True:
        try:
            return device(task)
        except Exception as exc:
            drop_connection(task.host)
            if time.monotonic() >= deadline:
                raise
            log.warning(
                "%s unreachable (%s); retrying until its revert timer fired", task.host.name, exc
            )
            time.sleep(RETRY_S)


def settle(task: Task, ctx: StepContext, saved: Path, revert_in: float | None) -> HostResult | None:
    """A result when the unconfirmed commit is dealt with; None: restore from ``saved``."""
    host = task.host.name
    deadline = time.monotonic() + (revert_in or 0) + GRACE_S
    dev = reach(task, deadline)
    if dev.has_pending_commit():
        with journaled_commit(ctx, host):
            dev.rollback()
        return HostResult(changed=True, diff="pending commit-confirm cancelled and reverted")
    normalize = normalizer_for(task.host.platform)
    running = normalize(dev.get_config(retrieve="running")["running"])
    if running == normalize(saved.read_text(encoding="utf-8")):
        text = (
            f"{host}: the device reverted the unconfirmed change by itself (commit-confirm timer)"
        )
        ctx.bus.emit(Note(text))
        return HostResult(changed=True, diff=text)
    return None
