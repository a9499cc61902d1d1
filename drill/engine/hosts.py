"""Fan a per-host function out over nornir's runner and turn results into HostResults.

Failures are recorded, never raised: a host whose function raises gets a failed
HostResult with the (masked) error, its cached connection is dropped (nornir never checks
liveness, so a broken session would fail every later step), and nornir's shared
``failed_hosts`` is reset so later steps and the rollback still reach it.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import napalm
from nornir.core.inventory import Host
from nornir.core.task import Result, Task

from drill.engine.context import StepContext
from drill.engine.events import CommitDone, CommitStarted, HostDone
from drill.engine.records import HostResult
from drill.secrets import mask_secrets

log = logging.getLogger(__name__)

HostFn = Callable[[Task], HostResult]
CONNECTION = "napalm"


def device(task: Task) -> Any:
    """The host's cached NAPALM connection (opened on first use)."""
    return task.host.get_connection(CONNECTION, task.nornir.config)


def fresh_device(host: Host) -> Any:
    """A NEW NAPALM connection, outside nornir's cache (commit-confirm checks must prove
    the device is still reachable, not reuse a session opened before the change)."""
    params = host.get_connection_parameters(CONNECTION)
    extras = dict(params.extras or {})
    optional = dict(extras.pop("optional_args", {}) or {})
    if params.port and "port" not in optional:
        optional["port"] = params.port
    driver = napalm.get_network_driver(params.platform)
    dev = driver(
        hostname=params.hostname,
        username=params.username,
        password=params.password,
        optional_args=optional,
        **extras,
    )
    dev.open()
    return dev


def describe(exc: BaseException | None, fallback: str = "") -> str:
    if exc is None:
        return fallback.strip().splitlines()[-1] if fallback.strip() else "failed"
    # NornirSubTaskError wraps the real error; show the device's own words.
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def run_per_host(
    ctx: StepContext, hosts: list[str], fn: HostFn, name: str, *, undo: bool = False
) -> dict[str, HostResult]:
    """``fn`` on every host in parallel. ``undo``: fn takes a change back (lifting an
    isolation cut), so it runs also when the run is being interrupted."""
    if not hosts:
        return {}
    wanted = set(hosts)
    deadline = ctx.scope.deadline if ctx.scope is not None else None
    subset = ctx.nr.filter(filter_func=lambda h: h.name in wanted)
    missing = wanted - set(subset.inventory.hosts)
    results: dict[str, HostResult] = {
        h: HostResult(failed=True, error="not in the inventory") for h in sorted(missing)
    }

    def task(task: Task) -> Result:
        # Failures are caught here, in the worker, so nornir never marks the host failed and
        # the result is reported while the other hosts are still busy.
        try:
            if ctx.abort.is_set() and not undo:
                # Queued hosts of an interrupted step must not start a change.
                result = HostResult(failed=True, error="not run: the run was interrupted")
            elif deadline is not None and time.monotonic() > deadline:
                result = HostResult(failed=True, error="not run: the step's timeout passed")
            else:
                result = fn(task)
        except Exception as exc:
            result = HostResult(failed=True, error=mask_secrets(describe(exc), ctx.secrets))
            drop_connection(task.host)
        report(ctx, task.host.name, result)
        return Result(host=task.host, result=result)

    try:
        aggregated = subset.run(task=task, name=name)
    finally:
        ctx.nr.data.reset_failed_hosts()
    for host_name, multi in aggregated.items():
        first = multi[0]
        if isinstance(first.result, HostResult) and not first.exception:
            results[host_name] = first.result
        else:  # a BaseException escaped (or nornir itself failed)
            error = mask_secrets(describe(first.exception, str(first.result)), ctx.secrets)
            results[host_name] = HostResult(failed=True, error=error)
    return {h: results[h] for h in hosts if h in results}


def report(ctx: StepContext, host: str, result: HostResult) -> None:
    scope = ctx.scope
    if scope is not None and not scope.quiet:
        scope.reported.add(host)
        ctx.bus.post(HostDone(scope.key, scope.record, host, result))


@contextlib.contextmanager
def journaled_commit(ctx: StepContext, host: str, revert_in: int | None = None) -> Iterator[None]:
    """``commit_started`` (fsynced) before a device changes, ``committed`` after: after a
    crash the journal names every host that may have changed, rollbacks included."""
    ctx.bus.emit(CommitStarted(ctx.key, host, revert_in))
    yield
    ctx.bus.emit(CommitDone(ctx.key, host))


def drop_connection(host: Host) -> None:
    try:
        host.close_connection(CONNECTION)
    except Exception:
        log.debug("closing %s's connection failed", host.name, exc_info=True)
        host.connections.pop(CONNECTION, None)
