"""The RTO a runbook declares, and the physical bound of its failover, in seconds.

Failure detectors run in parallel, so the bound is the slowest of them plus what must follow
detection (``plus``: route computation and FIB install, gratuitous ARP, ...):

* BFD: ``interval x multiplier`` (RFC 5880 detection time);
* VRRPv3 (RFC 5798): Master_Down_Interval = ``3 x advert + skew``, Skew_Time =
  ``(256 - priority) x advert / 256``, with the priority of the backup that takes over;
* without BFD, BGP notices at the hold time (``bgp_hold``).

>>> from drill.runbook.model import RtoBound
>>> b = RtoBound.model_validate({"bfd": {"interval": "100ms", "multiplier": 3},
...     "vrrp": {"advert": "100ms", "priority": 100}, "plus": "200ms"})
>>> plan = bound_terms(b)
>>> plan["bfd_detect_s"], plan["vrrp_master_down_s"], plan["plus_s"]
(0.3, 0.360938, 0.2)
>>> bound_s(plan)
0.560938
"""

from __future__ import annotations

import logging

from drill.engine.records import RtoPlan
from drill.runbook.durations import Duration
from drill.runbook.model import RtoBound, RtoSpec, Runbook

log = logging.getLogger(__name__)


def vrrp_master_down_s(advert: float, priority: int) -> float:
    """RFC 5798 section 6.1: 3 x advert + (256 - priority) x advert / 256.

    >>> vrrp_master_down_s(1.0, 100)
    3.609375
    """
    return 3 * advert + (256 - priority) * advert / 256


def bound_terms(bound: RtoBound) -> dict[str, float]:
    """Each detection time and ``plus``, in seconds (rounded to the microsecond)."""
    terms: dict[str, float] = {}
    if bound.bfd is not None:
        terms["bfd_detect_s"] = float(bound.bfd.interval) * bound.bfd.multiplier
    if bound.vrrp is not None:
        terms["vrrp_master_down_s"] = vrrp_master_down_s(
            float(bound.vrrp.advert), bound.vrrp.priority
        )
    if bound.bgp_hold is not None:
        terms["bgp_hold_s"] = float(bound.bgp_hold)
    terms["plus_s"] = float(bound.plus)
    return {k: round(v, 6) for k, v in terms.items()}


def bound_s(terms: dict[str, float]) -> float:
    """The slowest detection plus ``plus_s``."""
    detections = [v for k, v in terms.items() if k != "plus_s"]
    return round(max(detections, default=0.0) + terms.get("plus_s", 0.0), 6)


def rto_plan(model: Runbook) -> RtoPlan:
    """What the engine records about the runbook's ``rto`` (target, bound, how to measure)."""
    rto = model.rto
    if rto is None:
        return RtoPlan()
    if isinstance(rto, Duration):
        return RtoPlan(target_s=float(rto))
    assert isinstance(rto, RtoSpec)
    plan = RtoPlan(
        target_s=float(rto.target) if rto.target is not None else None,
        probe=rto.probe,
        after=rto.after,
        before=rto.before,
    )
    if isinstance(rto.bound, RtoBound):
        plan.bound_terms = bound_terms(rto.bound)
        plan.bound_s = bound_s(plan.bound_terms)
    elif rto.bound is not None:
        plan.bound_s = float(rto.bound)
    return plan
