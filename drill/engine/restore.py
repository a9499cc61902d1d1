"""Snapshots before the first change, and the proof after a rollback: each touched host's
running config compared with its snapshot (normalized, the difference masked)."""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

from nornir.core.task import Task

from drill.engine.context import StepContext
from drill.engine.events import SnapshotTaken
from drill.engine.hosts import device, run_per_host
from drill.engine.normalize import normalizer_for
from drill.engine.records import HostResult, RestoreResult
from drill.secrets import mask_secrets

log = logging.getLogger(__name__)


def snapshot(ctx: StepContext, hosts: list[str]) -> tuple[dict[str, Path], dict[str, HostResult]]:
    """Save every host's running config; returns (paths, per-host results)."""
    paths: dict[str, Path] = {}

    def take(task: Task) -> HostResult:
        running = device(task).get_config(retrieve="running")["running"]
        path = ctx.rundir.save_config(f"initial--{task.host.name}", running)
        paths[task.host.name] = path
        ctx.bus.emit(SnapshotTaken(task.host.name, str(path)))
        return HostResult()

    results = run_per_host(ctx, hosts, take, "snapshot running configs")
    for host, result in results.items():
        if result.failed:
            ctx.bus.emit(SnapshotTaken(host, "", error=result.error))
    return paths, results


def compare(
    ctx: StepContext, snapshots: dict[str, Path], hosts: list[str]
) -> dict[str, RestoreResult]:
    proofs: dict[str, RestoreResult] = {}

    def check(task: Task) -> HostResult:
        name = task.host.name
        normalize = normalizer_for(task.host.platform)
        before = normalize(snapshots[name].read_text(encoding="utf-8"))
        after = normalize(device(task).get_config(retrieve="running")["running"])
        diff = "".join(
            difflib.unified_diff(
                before.splitlines(keepends=True),
                after.splitlines(keepends=True),
                f"{name} snapshot",
                f"{name} after rollback",
            )
        )
        proofs[name] = RestoreResult(exact=not diff, diff=mask_secrets(diff, ctx.secrets))
        return HostResult(failed=bool(diff))

    missing = [h for h in hosts if h not in snapshots]
    results = run_per_host(ctx, [h for h in hosts if h in snapshots], check, "verify restore")
    for host, result in results.items():
        if host not in proofs:
            proofs[host] = RestoreResult(exact=False, diff=f"cannot read config: {result.error}")
    for host in missing:
        proofs[host] = RestoreResult(exact=False, diff="no snapshot was taken of this host")
    return {h: proofs[h] for h in hosts}
