"""Which drill step lost which session.

A session is lost at one moment, ``at``: the send time of its first message that got no good
answer (the path broke before it). It belongs to the step whose ``[start, end)`` holds that
moment, or to no step (before the first step, between steps, after the last). Steps are
``(name, start, end)`` in epoch seconds; a name seen twice accumulates.

>>> from drill.engine.records import ProbeResult, SessionLoss, SessionStats
>>> losses = [SessionLoss(0, at=5.0, detected=5.2, reason="reset"),
...           SessionLoss(1, at=9.0, detected=12.0, reason="stalled")]
>>> r = ProbeResult("s", "session", 500.0, 100, 2, 0.0,
...                 sessions=SessionStats(requested=2, opened=2, losses=losses))
>>> attribute_sessions(r, [("drain", 4.0, 6.0), ("move", 6.0, 8.0)])
>>> r.by_step
{'drain': {'lost': 1, 'max_gap_ms': 0.0}, 'move': {'lost': 0, 'max_gap_ms': 0.0}}
>>> [x.step for x in r.sessions.losses]
['drain', None]
"""

from __future__ import annotations

import logging

from drill.engine.records import ProbeResult

log = logging.getLogger(__name__)

Steps = list[tuple[str, float, float]]


def step_at(moment: float, steps: Steps) -> str | None:
    """The step running at ``moment``; the last one when windows overlap."""
    found = None
    for name, start, end in steps:
        if start <= moment < end:
            found = name
    return found


def attribute_sessions(result: ProbeResult, steps: Steps) -> None:
    """Fill ``result.by_step`` (sessions lost per step) and each loss's ``step``."""
    assert result.sessions is not None
    by_step: dict[str, dict[str, float]] = {}
    for name, _start, _end in steps:
        by_step.setdefault(name, {"lost": 0, "max_gap_ms": 0.0})
    for loss in result.sessions.losses:
        loss.step = step_at(loss.at, steps)
        if loss.step is not None:
            by_step[loss.step]["lost"] += 1
    result.by_step = by_step
    log.debug("probe %s: %d session losses attributed", result.name, result.sessions.lost)
