"""Interruption measurement: runs of lost packets/requests become outages and gaps.

Definitions (docs/probes.md has the long version):

* An *outage* is a run of consecutive lost sequence numbers. ``start`` is the send time of the
  last packet that got through before the run, ``end`` the send time of the first one that got
  through after it.
* Its *gap* is ``end - start - interval``: one lost packet at a steady rate is a gap of one
  interval; no loss is a gap of 0.
* A run at the very start of the probe is measured from the probe's start, as if a packet sent
  one interval before the first had got through (gap = first good send - first send). A run at
  the very end is measured to the probe's stop, as if a packet sent one interval after the last
  had got through (gap = last send - last good send). A probe that lost everything has a gap of
  its whole duration.

>>> t = GapTracker(interval=0.01)
>>> for i, ok in enumerate([True, True, False, False, True]):
...     t.feed(i * 0.01, ok)
>>> t.finish()
>>> t.lost, round(t.max_gap_ms, 3)
(2, 20.0)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from drill.engine.records import Outage

log = logging.getLogger(__name__)


class GapTracker:
    """Consumes per-sequence outcomes in sequence order and keeps outages as they close.

    Incremental so the agent can report loss while a drill is still running (the engine's
    ``check_limits``) without keeping every send time of an hour-long probe in a list.
    """

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.sent = 0
        self.lost = 0
        self.outages: list[Outage] = []
        self.first_send: float | None = None
        self.last_send: float | None = None
        self._last_ok: float | None = None
        self._run_lost = 0
        self._run_last_lost: float | None = None
        self._finished = False

    def feed(self, send_time: float, ok: bool) -> None:
        """Record the outcome of the next sequence number (sent at ``send_time``)."""
        if self._finished:
            raise RuntimeError("feed() after finish()")
        if self.first_send is None:
            self.first_send = send_time
        self.last_send = send_time
        self.sent += 1
        if ok:
            if self._run_lost:
                self._close_run(end=send_time)
            self._last_ok = send_time
        else:
            self.lost += 1
            self._run_lost += 1
            self._run_last_lost = send_time

    def finish(self) -> None:
        """Close a run of losses that lasts until the probe stopped."""
        if self._run_lost and self.last_send is not None:
            self._close_run(end=self.last_send + self.interval)
        self._finished = True

    def _close_run(self, end: float) -> None:
        assert self.first_send is not None
        start = self._last_ok if self._last_ok is not None else self.first_send - self.interval
        self.outages.append(Outage(start=start, end=end, lost=self._run_lost))
        self._run_lost = 0
        self._run_last_lost = None

    @property
    def max_gap_ms(self) -> float:
        """Longest closed interruption so far, in milliseconds (0 without loss)."""
        return max((o.gap_ms(self.interval) for o in self.outages), default=0.0)

    @property
    def ongoing_gap_ms(self) -> float:
        """A lower bound of the interruption still in progress (0 when none is).

        The run has not ended, so its first good packet is sent at least one interval after
        the last lost one: the gap is at least ``last lost send - last good send``.
        """
        if not self._run_lost or self._run_last_lost is None or self.first_send is None:
            return 0.0
        start = self._last_ok if self._last_ok is not None else self.first_send - self.interval
        return max(0.0, (self._run_last_lost - start) * 1000.0)


def track(outcomes: Iterable[tuple[float, bool]], interval: float) -> GapTracker:
    """Run a whole probe's ``(send_time, ok)`` outcomes through a finished tracker.

    >>> track([(0.0, False), (0.01, True)], 0.01).outages
    [Outage(start=-0.01, end=0.01, lost=1)]
    """
    tracker = GapTracker(interval)
    for send_time, ok in outcomes:
        tracker.feed(send_time, ok)
    tracker.finish()
    return tracker
