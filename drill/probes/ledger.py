"""Per-sequence bookkeeping shared by the agents: send times, answers, and the decision
"lost" once an answer is overdue. Decided outcomes flow, in sequence order, into a
GapTracker.

The sender appends, the receiver marks and the main thread decides from three threads, so
each takes a short lock. Decided entries are dropped, so memory holds only the undecided
window (about grace x rate entries), not an hour of send times.

>>> ledger = Ledger(interval=0.01, grace=1.0)
>>> for t in (0.0, 0.01, 0.02):
...     _ = ledger.record_send(t)
>>> ledger.answer(0, 0.0005); ledger.answer(2, 2.5)  # the second reply is late
True
False
>>> ledger.decide(now=5.0)
>>> ledger.tracker.lost, ledger.late
(2, 1)
"""

from __future__ import annotations

import logging
import math
import threading
from array import array
from collections.abc import Callable

from drill.probes.gaps import GapTracker

log = logging.getLogger(__name__)

_PENDING, _OK, _FAILED = 0, 1, 2
_TRIM_AT = 4096  # decided entries kept before the arrays are compacted

# Told every decided outcome in send order: (send_time, ok, round-trip seconds or None).
Sink = Callable[[float, bool, float | None], None]


class Ledger:
    def __init__(self, interval: float, grace: float) -> None:
        self.grace = grace
        self.tracker = GapTracker(interval)
        self.late = 0
        self._lock = threading.Lock()
        self._send_times = array("d")
        self._status = bytearray()
        self._rtts = array("d")  # round-trip time of answered entries, else NaN
        self.sink: Sink | None = None  # the report's per-bin timeline (drill.probes.bins)
        self._base = 0  # sequence number of index 0 of the arrays
        self._cursor = 0  # first sequence number not yet decided

    def __len__(self) -> int:
        """How many sequence numbers were handed out (the next one is ``len(ledger)``)."""
        return self._base + len(self._status)

    def record_send(self, send_time: float) -> int:
        """Register the next packet before it leaves; returns its sequence number."""
        with self._lock:
            self._status.append(_PENDING)
            self._send_times.append(send_time)
            self._rtts.append(float("nan"))
            return self._base + len(self._status) - 1

    def answer(self, seq: int, receive_time: float) -> bool:
        """Mark ``seq`` answered at ``receive_time``; a late, decided or unknown answer is
        ignored."""
        with self._lock:
            i = seq - self._base
            if seq < self._cursor or not 0 <= i < len(self._status) or self._status[i]:
                return False
            if receive_time - self._send_times[i] > self.grace:
                self.late += 1
                return False
            self._status[i] = _OK
            self._rtts[i] = receive_time - self._send_times[i]
            return True

    def fail(self, seq: int) -> None:
        """Mark ``seq`` failed now (a request that errored), without waiting for grace."""
        with self._lock:
            i = seq - self._base
            if seq >= self._cursor and 0 <= i < len(self._status) and not self._status[i]:
                self._status[i] = _FAILED

    def decide(self, now: float, margin: float = 0.0) -> None:
        """Feed every outcome known by ``now`` to the tracker, in sequence order.

        A pending packet counts as lost once ``grace + margin`` has passed since it was sent;
        the margin covers the receiver thread noticing a reply that arrived just in time.
        """
        with self._lock:
            while self._cursor - self._base < len(self._status):
                i = self._cursor - self._base
                status, sent = self._status[i], self._send_times[i]
                if status == _PENDING and now - sent <= self.grace + margin:
                    break
                self.tracker.feed(sent, status == _OK)
                if self.sink is not None:
                    rtt = self._rtts[i]
                    self.sink(sent, status == _OK, None if math.isnan(rtt) else rtt)
                self._cursor += 1
            decided = self._cursor - self._base
            if decided >= _TRIM_AT:
                del self._status[:decided]
                del self._send_times[:decided]
                del self._rtts[:decided]
                self._base = self._cursor

    @property
    def undecided(self) -> int:
        return len(self) - self._cursor
