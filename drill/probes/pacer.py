"""An absolute send schedule: slot ``i`` is due at ``start + i * interval``.

Sleeping one interval after each send drifts by the send and wake-up costs every time; an
absolute schedule keeps the long-run rate exact. A sender that falls far behind (a stalled
process) skips the missed slots instead of bursting them out, and counts them.

>>> s = Schedule(rate=100, start=0.0)
>>> s.due(now=0.0), s.take(), s.due(now=0.0)
(0.0, 0, 0.01)
>>> s.due(now=1.0)  # 99 slots late: skip to now
1.0
>>> s.skipped
99
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

# How far behind the sender may fall before it skips slots; up to this it catches up in a
# burst. Either way the packets sent in a stretch of time are not its length / interval.
MAX_LAG = 0.05


class Schedule:
    def __init__(self, rate: float, start: float, max_lag: float = MAX_LAG) -> None:
        self.interval = 1.0 / rate
        self.start = start
        self.max_lag = max_lag
        self.skipped = 0
        self._slot = 0

    def due(self, now: float) -> float:
        """When the next slot is due (monotonic seconds); skips slots lagging > max_lag."""
        due = self.start + self._slot * self.interval
        if now - due > self.max_lag:
            current = int((now - self.start) / self.interval)
            self.skipped += current - self._slot
            log.debug(
                "sender behind by %.1f ms: skipped %d slots",
                (now - due) * 1e3,
                current - self._slot,
            )
            self._slot = current
            due = self.start + self._slot * self.interval
        return due

    def take(self) -> int:
        """Consume the current slot; returns its index."""
        slot = self._slot
        self._slot += 1
        return slot
