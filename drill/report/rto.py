"""The measured recovery time of a drill with an ``rto`` block, against its physical bound.

With ``rto.probe`` and/or ``rto.after`` the interruption is read from that probe (default:
the service probes) and only from outages inside the drill's failure window: those that end
after the ``after`` step started (the fault) and start before the ``before`` step started
(the failback, which has interruptions of its own). The measured RTO is the longest of their
gaps, whole (an interruption that began with the fault is not clipped to the window).
``ratio_to_bound`` is measured / bound: 1.0 means the design's timers are all the time
users lost; the derivation of the bound is in drill/runbook/rto.py and docs/probes.md.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from drill.engine.records import Phase, ProbeResult, RunRecord

log = logging.getLogger(__name__)

SERVICE = "service"


def _step_start(record: RunRecord, name: str | None) -> float | None:
    if name is None:
        return None
    for step in record.steps:
        if step.phase is Phase.STEP and step.name == name and step.started is not None:
            return step.started.timestamp()
    return None


def rto_probes(record: RunRecord) -> list[ProbeResult]:
    """The probes the RTO is read from."""
    wanted = record.rto.probe
    if wanted is not None:
        return [p for p in record.probes if p.name == wanted]
    return [p for p in record.probes if p.kind == SERVICE]


def window(record: RunRecord) -> tuple[float, float] | None:
    """The failure window in epoch seconds, or None when the ``after`` step never ran."""
    plan = record.rto
    start = _step_start(record, plan.after) if plan.after is not None else -math.inf
    if start is None:
        return None
    end = _step_start(record, plan.before)
    return start, end if end is not None else math.inf


def measured_s(record: RunRecord) -> float | None:
    """The longest interruption inside the failure window, in seconds; None when there is
    no such probe or the fault step never ran; 0.0 when nothing was lost in the window."""
    probes = rto_probes(record)
    bounds = window(record)
    if not probes or bounds is None:
        return None
    start, end = bounds
    longest = 0.0
    for probe in probes:
        interval = 1.0 / probe.rate if probe.rate > 0 else 0.0
        for outage in probe.outages:
            if outage.end - interval / 2 > start and outage.start + interval / 2 < end:
                longest = max(longest, outage.gap_ms(interval))
    return round(longest / 1000.0, 3)


def rto_fields(record: RunRecord, measured: float | None) -> dict[str, Any]:
    """``bound_s``, ``ratio_to_bound`` and how they were obtained, for report.json."""
    plan = record.rto
    ratio = None
    if measured is not None and plan.bound_s:
        ratio = round(measured / plan.bound_s, 3)
    return {
        "bound_s": plan.bound_s,
        "ratio_to_bound": ratio,
        "bound_terms": dict(plan.bound_terms),
        "probe": plan.probe,
        "after_step": plan.after,
        "before_step": plan.before,
    }


def uses_window(record: RunRecord) -> bool:
    return record.rto.probe is not None or record.rto.after is not None
