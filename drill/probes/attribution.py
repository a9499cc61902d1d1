"""Which drill step an interruption belongs to.

An outage can span two steps (loss starts during one config push and ends in the next), so
it is split rather than given to one step:

* ``lost``: each lost packet counts for the step whose ``[start, end)`` holds its send time.
  A result keeps outages, not per-packet send times, so the lost packets' send times are
  taken as evenly spread between the outage's start and end, which is exact for a paced
  sender that kept its schedule.
* ``max_gap_ms``: the interruption of an outage is the window
  ``[start + interval/2, end - interval/2]`` (its length is the outage's gap); a step gets the
  longest part of any such window that falls inside the step.

Loss sent outside every step (before the first, between steps) is attributed to no step; the
probe's totals still count it. Steps are ``(name, start, end)`` in epoch seconds; a name seen
twice (a step retried) accumulates.
"""

from __future__ import annotations

import logging

from drill.engine.records import Outage, ProbeResult

log = logging.getLogger(__name__)

Steps = list[tuple[str, float, float]]


def lost_send_times(outage: Outage) -> list[float]:
    """The estimated send times of an outage's lost packets.

    >>> lost_send_times(Outage(start=1.0, end=1.04, lost=3))
    [1.01, 1.02, 1.03]
    """
    step = (outage.end - outage.start) / (outage.lost + 1)
    return [round(outage.start + step * (k + 1), 9) for k in range(outage.lost)]


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def attribute(result: ProbeResult, steps: Steps) -> None:
    """Fill ``result.by_step`` from ``result.outages`` for every step in ``steps``."""
    if result.sessions is not None:
        from drill.probes.session_attribution import attribute_sessions

        attribute_sessions(result, steps)
        return
    interval = 1.0 / result.rate if result.rate > 0 else 0.0
    by_step: dict[str, dict[str, float]] = {}
    for name, start, end in steps:
        entry = by_step.setdefault(name, {"lost": 0, "max_gap_ms": 0.0})
        for outage in result.outages:
            entry["lost"] += sum(1 for t in lost_send_times(outage) if start <= t < end)
            w0, w1 = outage.start + interval / 2, outage.end - interval / 2
            gap_ms = _overlap(w0, w1, start, end) * 1000.0
            entry["max_gap_ms"] = max(entry["max_gap_ms"], round(gap_ms, 3))
    result.by_step = by_step
    log.debug("probe %s attributed to %d steps", result.name, len(by_step))
