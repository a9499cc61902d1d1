"""The isolation rehearsal phase (docs/flows.md, "Isolation rehearsal"): after the
postchecks, cut the evacuated site off silently while every probe runs, plus one generated
probe per cataloged flow that must survive without it; then name every flow that broke.

The cut is the lab's (drill.lab.isolation): its timer runs inside the lab's namespaces, so
the site comes back whatever happens to this process. This module only waits, watches and
tidies; the journal records the cut (with when it lifts) before it is made.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from nornir.core import Nornir

from drill.engine import isolation_devices
from drill.engine.context import StepContext
from drill.engine.events import EventBus, IsolationChanged
from drill.engine.isolation_devices import DeviceCut
from drill.engine.records import FlowOutcome, FlowWindow, HostResult, IsolationResult, StepStatus
from drill.engine.trace import IsolationTrace
from drill.errors import DrillError, InputError
from drill.flows.catalog import read_catalog
from drill.flows.isolation import Attempt, FlowVerdict, IsolationPlan, Window, judge, plan
from drill.probes.flow_running import FlowProbes
from drill.probes.flows import files_needed, open_files_limit
from drill.runbook.model import IsolateSpec, Runbook
from drill.steps.base import StepOutcome

if TYPE_CHECKING:
    from drill.lab.lab import Lab

log = logging.getLogger(__name__)

POLL_S = 0.1
LIFT_GRACE_S = 5.0  # the lab's timer is the kernel's: it is late by milliseconds, not seconds
DEVICE_GRACE_S = 30.0  # a device's revert: frr-reload of its whole config (engine.deadman)


@dataclass(frozen=True)
class IsolationSetup:
    spec: IsolateSpec
    site: str
    lab_dir: Path | None  # None: the runbook's cut steps, on devices
    catalog: Path

    @property
    def means(self) -> str:
        return "lab" if self.lab_dir is not None else "devices"


def setup(
    spec: IsolateSpec, evacuate: str | None, runbook_dir: Path, catalog: Path | None
) -> IsolationSetup:
    """Where the pieces are; DrillError when the runbook names no site or no catalog."""
    site = spec.site or evacuate
    if site is None:
        raise DrillError("isolate: no site (set isolate.site or the runbook's evacuate)")
    if catalog is None:
        raise DrillError("isolate: no flow catalog (set flows.catalog or pass --catalog)")
    lab_dir = (runbook_dir / spec.lab).resolve() if spec.lab is not None else None
    return IsolationSetup(spec, site, lab_dir, catalog.resolve())


def preflight(
    model: Runbook, runbook_path: Path, catalog: Path | None, nr: Nornir
) -> IsolationPlan | None:
    """Before any device is touched: the site, the catalog and the flow plan, which the
    run then uses as is (the catalog is read once). InputError (exit 2) on a missing or bad
    catalog, or a plan no agent could run, so a drill never stops at its isolation for it."""
    spec = model.isolate
    if spec is None:
        return None
    if catalog is None and model.flows is not None:
        catalog = runbook_path.parent / model.flows.catalog
    try:
        where = setup(spec, model.evacuate, runbook_path.parent, catalog)
    except DrillError as exc:
        raise InputError(f"{runbook_path}: error: {exc}") from None
    flows = flow_plan(where, nr)
    per_vantage: dict[str, int] = {}
    for probe in flows.probes:
        per_vantage[probe.vantage] = per_vantage.get(probe.vantage, 0) + 1
    limit = open_files_limit()
    for vantage, count in sorted(per_vantage.items()):
        if files_needed(count) > limit:
            raise InputError(
                f"{runbook_path}: error: isolate: {count} flow probes from {vantage} need "
                f"{files_needed(count)} open files, over this host's hard limit of {limit}: "
                "lower isolate.max_flows or raise the limit (ulimit -Hn)"
            )
    for u in flows.unprobed:
        if u.tier == "required":
            log.warning("isolation: required flow not probed: %s: %s", u.label, u.reason)
    log.info(
        "isolation of %s: %d flow probe(s), %d flow(s) not probed",
        where.site,
        len(flows.probes),
        len(flows.unprobed),
    )
    return flows


def plan_lines(
    model: Runbook, runbook_path: Path, catalog: Path | None, addresses: dict[str, list[str]]
) -> list[str]:
    """``drill plan``: the rehearsal and every probe it would generate (no device touched)."""
    spec = model.isolate
    if spec is None:
        return []
    if catalog is None and model.flows is not None:
        catalog = runbook_path.parent / model.flows.catalog
    where = setup(spec, model.evacuate, runbook_path.parent, catalog)
    flows = flow_plan(where, addresses)
    how = (
        f"lab {spec.lab}, its own timer"
        if spec.lab is not None
        else f"{len(spec.cut)} cut step(s) under the devices' revert timers"
    )
    lines = [
        f"cut {where.site} off for {spec.for_} ({how}), after the postchecks; "
        f"{len(flows.probes)} flow probe(s) from {where.catalog.name}:"
    ]
    for p in flows.probes:
        lines.append(
            f"  [{p.tier}] {p.label}: {p.method} {p.target}"
            + (f":{p.port}" if p.port else "")
            + f" from {p.host} ({p.source})"
        )
    lines += [f"  not probed: [{u.tier}] {u.label}: {u.reason}" for u in flows.unprobed]
    if flows.gone_with_site:
        lines.append(f"  {flows.gone_with_site} flow(s) go with {where.site} (clients there)")
    return lines


def host_addresses(nr: Nornir) -> dict[str, list[str]]:
    """Inventory host -> its own addresses (``data.addresses``, as the traceroute checks)."""
    out: dict[str, list[str]] = {}
    for name, host in nr.inventory.hosts.items():
        addresses = host.get("addresses") or []
        if isinstance(addresses, list):
            out[name] = [str(a) for a in addresses]
    return out


def flow_plan(where: IsolationSetup, nr: Nornir | dict[str, list[str]]) -> IsolationPlan:
    """The generated probes; ``nr`` or, without one (``drill plan``), host -> addresses.
    With a lab, a host's flows are probed from its lab node: hosts that are no node of the
    lab have no vantage point unless ``isolate.vantage`` gives one."""
    catalog, digest = read_catalog(where.catalog)
    addresses = host_addresses(nr) if isinstance(nr, Nornir) else nr
    vantage: dict[str, str] = {}
    if where.lab_dir is not None:
        from drill.lab.lab import Lab

        nodes = Lab(where.lab_dir).plan.nodes
        vantage = {h: f"lab:{where.lab_dir}:{h}" for h in addresses if h in nodes}
    vantage.update(where.spec.vantage)
    flows = plan(catalog, where.site, addresses, vantage, where.spec.max_flows)
    return replace(flows, catalog_sha256=digest)


class Rehearsal:
    """One isolation: ``run()`` returns its result; an exception (the operator's Ctrl-C)
    still lifts the cut before it propagates."""

    def __init__(
        self,
        where: IsolationSetup,
        ctx: StepContext,
        note: Callable[[str], None],
        devices: DeviceCut | None = None,
        flows: IsolationPlan | None = None,
    ) -> None:
        if (where.lab_dir is None) != (devices is not None):
            raise ValueError("a device cut needs the engine's DeviceCut, a lab cut none")
        self.where = where
        self.ctx = ctx
        self.nr = ctx.nr
        self.bus = ctx.bus
        self.note = note
        self.devices = devices
        self.flows = flows  # None: generated here (a run without the CLI's preflight)
        self._cutting_from = self._lifting_from = 0.0  # epoch; see _cut
        self.lab_name = str(where.lab_dir) if where.lab_dir is not None else ""
        self.result = IsolationResult(
            site=where.site,
            lab=self.lab_name,
            catalog=str(where.catalog),
            for_s=float(where.spec.for_),
            means=where.means,
        )

    def run(self) -> IsolationResult:
        from drill.lab.lab import Lab

        spec, result = self.where.spec, self.result
        flows = self.flows or flow_plan(self.where, self.nr)
        result.catalog_sha256 = flows.catalog_sha256
        result.gone_with_site = flows.gone_with_site
        result.unprobed = [
            {"flow": u.label, "tier": u.tier, "reason": u.reason} for u in flows.unprobed
        ]
        lab = Lab(self.where.lab_dir) if self.where.lab_dir is not None else None
        by_vantage: dict[str, list[list[object]]] = {}
        for probe in flows.probes:
            by_vantage.setdefault(probe.vantage, []).append(probe.agent_item())
        probes = FlowProbes(by_vantage, float(spec.interval), float(spec.timeout))
        cut_at = lifted_at = 0.0
        cutting = lifted = False
        try:
            probes.start()
            time.sleep(float(spec.baseline))
            cutting = True
            self._cutting_from = time.time()
            cut_at = self._cut(lab)
            time.sleep(max(0.0, cut_at + result.for_s - time.time()))
            lifted_at = self._await_lift(lab, cut_at + result.for_s)
            lifted = True
            self._await_recovery(flows, probes, cut_at, lifted_at)
        finally:
            if cutting and not lifted:
                self._lift_now(lab)
                lifted_at = time.time()
                cut_at = cut_at or lifted_at
            result.probe_cpu_s = probes.stop()
        result.problems += probes.problems()
        attempts = {k: [Attempt(a.t, a.error) for a in v] for k, v in probes.attempts().items()}
        # partly cut while the rules go in, partly lifted once the first timer expires
        unsettled = [(self._cutting_from, cut_at)]
        if self._lifting_from:
            unsettled.append((max(self._lifting_from, cut_at), lifted_at))
        verdicts = judge(flows.probes, attempts, cut_at, lifted_at, unsettled)
        result.flows = [_outcome(v) for v in verdicts]
        return result

    def _cut(self, lab: Lab | None) -> float:
        """Make the cut; when it was in place everywhere (epoch). The first part of it, and
        so the first timer, began earlier (``_lifting_from``: when that timer expires)."""
        site, for_s = self.where.site, self.result.for_s
        # Journaled (fsynced) before the cut: a dead run still tells who cut what, until when;
        # journaled again once made, with the bound every timer ends by.
        self._journal_cut()
        if lab is not None:
            from drill.lab.isolation import isolate_site

            record = isolate_site(lab, site, for_s)
            self._journal_cut()
            first = (record.expires_at or time.time() + for_s) - for_s  # not the lock's wait
            log.info("site %s cut off for %gs by the lab's own timer", site, for_s)
        else:
            assert self.devices is not None
            first = time.time()
            self.devices.cut(self.ctx, self._journal_cut)
            log.info("site %s cut off for %gs under the devices' revert timers", site, for_s)
        in_place = time.time()
        self._lifting_from = first + for_s
        self.result.cut_at = datetime.fromtimestamp(in_place, UTC)
        return in_place

    def _journal_cut(self) -> None:
        until = datetime.fromtimestamp(time.time() + self.result.for_s, UTC)
        self.bus.emit(IsolationChanged(self.where.site, self.lab_name, "cut", until=until))

    def _await_lift(self, lab: Lab | None, due: float) -> float:
        """When the cut lifted by itself; drill lifts it itself after a grace period."""
        if lab is None:
            assert self.devices is not None
            by = self.devices.await_revert()
            if by == "drill":
                self.note(
                    f"a device's revert timer had not ended the cut of {self.where.site} "
                    f"{isolation_devices.GRACE_S:g}s after it was due: drill reverted it"
                )
            at = time.time()
            self._lifted(by, at)
            return at
        from drill.lab.isolation import isolation_remaining, lift_isolation

        site = self.where.site
        while True:
            remaining = isolation_remaining(lab, site)
            if remaining is None or remaining <= 0:
                at = min(time.time(), due) if remaining is not None else time.time()
                lift_isolation(lab, site)  # the empty tables
                self._lifted("lab timer", at)
                return at
            if time.time() > due + LIFT_GRACE_S:
                self.note(
                    f"the lab's timer had not lifted the cut of {site} {LIFT_GRACE_S:g}s after "
                    "it was due: drill lifted it"
                )
                lift_isolation(lab, site)
                at = time.time()
                self._lifted("drill", at)
                return at
            time.sleep(POLL_S)

    def _lift_now(self, lab: Lab | None) -> None:
        """Interrupted, or the cut failed half-way: lift what there is at once. The journal
        says "lifted" only when it is proven; otherwise the operator is told loudly, and the
        journal keeps the cut open until its timers end it (``drill status``)."""
        proven = False
        try:
            if lab is not None:
                from drill.lab.isolation import lift_isolation

                lift_isolation(lab, self.where.site)
                proven = True
            elif self.devices is not None:
                proven = self.devices.lift_now()
        finally:
            if proven:
                self._lifted("drill", time.time())
            else:
                timers = "lab's timer ends" if lab is not None else "devices' revert timers end"
                self.note(
                    f"THE CUT OF {self.where.site} IS NOT PROVEN LIFTED: drill could not lift "
                    f"it; the {timers} it by itself {self.result.for_s:g}s after the cut - "
                    "check before anything else"
                )

    def _lifted(self, by: str, at: float) -> None:
        self.result.lifted_by = by
        self.result.lifted_at = datetime.fromtimestamp(at, UTC)
        self.bus.emit(IsolationChanged(self.where.site, self.lab_name, "lifted", by=by))

    def _await_recovery(
        self, flows: IsolationPlan, probes: FlowProbes, cut_at: float, since: float
    ) -> None:
        """Until every flow that failed during the cut answers again (or ``recover`` is
        over): the verdict says which never did."""
        broke = {
            a.flow
            for attempts in probes.attempts().values()
            for a in attempts
            if a.error is not None and cut_at <= a.t < since
        }
        wanted = {p.id for p in flows.probes if p.id in broke}
        deadline = time.monotonic() + float(self.where.spec.recover)
        # one round after the lift at least, so every flow has an attempt in the open
        time.sleep(float(self.where.spec.interval) + float(self.where.spec.timeout))
        while wanted - probes.answered_since(since) and time.monotonic() < deadline:
            time.sleep(POLL_S * 2)


def _window(w: Window) -> FlowWindow:
    return FlowWindow(attempts=w.attempts, failed=w.failed, reasons=dict(w.reasons))


def _outcome(v: FlowVerdict) -> FlowOutcome:
    p, f = v.probe, v.probe.flow
    return FlowOutcome(
        flow=p.label,
        tier=p.tier,
        status=v.status,
        fails_drill=v.fails_drill,
        headline=v.headline(),
        method=p.method,
        host=p.host,
        vantage=p.vantage,
        source=p.source,
        target=p.target,
        port=p.port,
        target_note=p.target_note,
        before=_window(v.before),
        during=_window(v.during),
        after=_window(v.after),
        recovered_s=None if v.recovered_s is None else round(v.recovered_s, 3),
        evidence={
            "records": f.records,
            "packets": f.packets,
            "bytes": f.bytes,
            "first_seen": f.first_seen,
            "last_seen": f.last_seen,
            "exporters": list(f.exporters),
            "server_addresses": list(f.server.addresses),
        },
    )


def outcome(result: IsolationResult, note: Callable[[str], None]) -> StepOutcome:
    """The isolation as a step's outcome: a host line per flow that did not simply work
    (keyed by the flow's name), a loud note per hidden dependency."""
    hosts: dict[str, HostResult] = {}
    for flow in result.flows:
        if flow.status == "ok":
            continue
        evidence = _evidence(flow)
        if flow.fails_drill:
            note(f"hidden dependency: {flow.headline}; catalog: {evidence}")
        hosts[flow.flow] = HostResult(
            changed=False,
            diff=f"{flow.headline}\ncatalog: {evidence}",
            failed=flow.fails_drill,
            error=flow.headline if flow.fails_drill else None,
        )
    for problem in result.problems:
        note(f"isolation: {problem}")
    broken = sum(1 for f in result.flows if f.fails_drill)
    expected = sum(1 for f in result.flows if f.status == "expected")
    message = (
        f"{result.site} cut off for {result.for_s:g}s, lifted by the {result.lifted_by or '?'}; "
        f"{len(result.flows)} flow(s) probed: {broken} required broken, {expected} deferred "
        f"broke as expected; {len(result.unprobed)} not probed, {result.gone_with_site} gone "
        "with the site"
    )
    if result.failed:
        return StepOutcome(StepStatus.FAILED, hosts, message)
    return StepOutcome(StepStatus.OK, hosts, message)


def _evidence(flow: FlowOutcome) -> str:
    e = flow.evidence
    return (
        f"{e['records']} records, {e['packets']} packets, first seen {e['first_seen']}, "
        f"last seen {e['last_seen']}"
    )


def settle_dead(cut: IsolationTrace, bus: EventBus, note: Callable[[str], None]) -> None:
    """``drill resume``/``abort`` of a run that died during its isolation: nothing else may
    run while the site is still cut off. A lab's timer has usually lifted it; if not, the
    operator is back, so it is lifted now. Devices: their revert timers cannot be reached
    from the journal alone, so drill waits until they have fired (plus the driver's grace)."""
    until = cut.until.strftime("%H:%M:%SZ") if cut.until else "?"
    if not cut.lab:
        wait = (cut.until.timestamp() if cut.until else time.time()) + DEVICE_GRACE_S
        left = wait - time.time()
        if left > 0:
            note(
                f"the dead run cut site {cut.site} off on devices until {until}: waiting "
                f"{left:.0f}s for their revert timers before anything else"
            )
            time.sleep(left)
        else:
            note(f"the dead run cut site {cut.site} off until {until}: the devices' revert "
                 "timers have fired")  # fmt: skip
        bus.emit(IsolationChanged(cut.site, cut.lab, "lifted", by="device revert timer"))
        return
    from drill.lab.isolation import isolation_remaining, lift_isolation
    from drill.lab.lab import Lab

    lab = Lab(Path(cut.lab))
    remaining = isolation_remaining(lab, cut.site)
    if remaining is None or remaining <= 0:
        note(
            f"the dead run had cut site {cut.site} off until {until}: the lab's own timer lifted it"
        )
        by = "lab timer"
    else:
        note(
            f"site {cut.site} was still cut off ({remaining:.1f}s left on the lab's timer): "
            "lifted now"
        )
        by = "drill"
    lift_isolation(lab, cut.site)
    bus.emit(IsolationChanged(cut.site, cut.lab, "lifted", by=by))
