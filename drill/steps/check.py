"""``check`` steps: read something and assert over it.

Sources: a NAPALM getter per host (``getter: get_bgp_neighbors``, ``args``), ``getter: cli``
with ``commands`` whose JSON output is parsed (one command: its parsed output is the data;
several: a mapping command -> parsed output), or, from a vantage point with no hosts, an
``http`` URL (data: ``status``, ``body``, ``json``) or a ``traceroute`` (data: ``hops`` as a
list of addresses, ``reached``; ``avoid_site`` fails when a hop belongs to an inventory host
whose data ``site`` equals it).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from nornir.core.task import Task

from drill.checks.assertions import evaluate
from drill.engine.context import StepContext
from drill.engine.hosts import device, run_per_host
from drill.engine.records import HostResult
from drill.runbook.model import CheckSpec, CheckStep
from drill.steps import vantage
from drill.steps.base import StepOutcome
from drill.steps.render import render_spec

log = logging.getLogger(__name__)


def read_getter(dev: Any, spec: CheckSpec) -> Any:
    if spec.getter == "cli":
        outputs = dev.cli(list(spec.commands or []))
        parsed = {cmd: _parse_json(cmd, text) for cmd, text in outputs.items()}
        if len(parsed) == 1:
            return next(iter(parsed.values()))
        return parsed
    if not spec.getter or not spec.getter.startswith("get_"):
        raise ValueError(f"unknown getter {spec.getter!r}")
    method = getattr(dev, spec.getter, None)
    if method is None:
        raise ValueError(f"the driver has no getter {spec.getter!r}")
    return method(**spec.args)


def _parse_json(command: str, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{command!r} did not return JSON: {exc}") from None


def assert_all(spec: CheckSpec, data: Any, host: str) -> list[str]:
    failures: list[str] = []
    for assertion in spec.assert_:
        failures.extend(evaluate(assertion, data, host))
    return failures


def check_on_host(task: Task, spec: CheckSpec, runbook: Any, dev: Any | None = None) -> HostResult:
    spec = render_spec(spec, runbook, task.host)
    data = read_getter(dev if dev is not None else device(task), spec)
    failures = assert_all(spec, data, task.host.name)
    return HostResult(failed=bool(failures), error="\n".join(failures) or None)


def check_hosts(ctx: StepContext, spec: CheckSpec, hosts: list[str], name: str) -> StepOutcome:
    results = run_per_host(ctx, hosts, lambda task: check_on_host(task, spec, ctx.runbook), name)
    return StepOutcome.from_hosts(results)


def run(step: CheckStep, ctx: StepContext, hosts: list[str]) -> StepOutcome:
    return run_spec(step, ctx, hosts, step.name)


def run_spec(spec: CheckSpec, ctx: StepContext, hosts: list[str], name: str) -> StepOutcome:
    if spec.http or spec.traceroute:
        return local_check(spec, ctx)
    if not hosts:
        return StepOutcome.failed("a getter check needs hosts ('on')")
    return check_hosts(ctx, spec, hosts, name)


def local_check(spec: CheckSpec, ctx: StepContext) -> StepOutcome:
    where = spec.from_ or "local"
    try:
        spec = render_spec(spec, ctx.runbook, None)
        data = _http(spec.http, where) if spec.http else _traceroute(spec, ctx, where)
    except Exception as exc:
        return StepOutcome.failed(f"{where}: {type(exc).__name__}: {exc}")
    failures = assert_all(spec, data, where)
    if spec.traceroute and spec.avoid_site:
        failures += _site_hops(ctx, data["hops"], spec.avoid_site, where)
    result = HostResult(failed=bool(failures), error="\n".join(failures) or None)
    return StepOutcome.from_hosts({where: result})


def _http(url: str, where: str) -> dict[str, Any]:
    marker = "\n__drill_status__:"
    proc = vantage.run(
        ["curl", "-sS", "-m", "10", "-w", marker + "%{http_code}", url], where, timeout=15
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip() or f"curl exited {proc.returncode}")
    body, _, status = proc.stdout.rpartition(marker)
    data: dict[str, Any] = {"status": int(status or 0), "body": body}
    try:
        data["json"] = json.loads(body)
    except json.JSONDecodeError:
        data["json"] = None
    return data


_HOP = re.compile(r"^\s*(\d+)\s+(\S+)")


def parse_traceroute(text: str) -> list[str]:
    """Hop addresses from ``traceroute -n`` output (``*`` for a silent hop).

    >>> parse_traceroute(" 1  198.18.1.1  0.1 ms\\n 2  *\\n 3  203.0.113.9  1 ms")
    ['198.18.1.1', '*', '203.0.113.9']
    """
    hops: list[str] = []
    for line in text.splitlines():
        match = _HOP.match(line)
        if match:
            hops.append(match.group(2))
    return hops


def _traceroute(spec: CheckSpec, ctx: StepContext, where: str) -> dict[str, Any]:
    assert spec.traceroute is not None
    proc = vantage.run(
        ["traceroute", "-n", "-q", "1", "-w", "1", "-m", "16", spec.traceroute], where, timeout=60
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip() or f"traceroute exited {proc.returncode}")
    hops = parse_traceroute(proc.stdout)
    return {"hops": hops, "reached": bool(hops) and hops[-1] == spec.traceroute}


def _site_hops(ctx: StepContext, hops: list[str], site: str, where: str) -> list[str]:
    owners = site_addresses(ctx, site)
    return [
        f"{where}: traceroute hop {i + 1} {hop} belongs to {owners[hop]} (site {site})"
        for i, hop in enumerate(hops)
        if hop in owners
    ]


def site_addresses(ctx: StepContext, site: str) -> dict[str, str]:
    """address -> host for every inventory host whose data ``site`` is ``site``: from the
    host's data ``addresses`` and, when it has none there, from get_interfaces_ip."""
    owners: dict[str, str] = {}
    need_device: list[str] = []
    for name, host in ctx.nr.inventory.hosts.items():
        if host.get("site") != site:
            continue
        listed = host.get("addresses") or []
        for address in listed:
            owners[str(address).split("/")[0]] = name
        if not listed:
            need_device.append(name)

    def ips(task: Task) -> HostResult:
        found = device(task).get_interfaces_ip()
        for families in found.values():
            for family in families.values():
                for address in family:
                    owners[address] = task.host.name
        return HostResult()

    run_per_host(ctx, need_device, ips, "interfaces for avoid_site")
    return owners
