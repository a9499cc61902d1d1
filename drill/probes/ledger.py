"""Per-sequence bookkeeping shared by the agents: send times, answers, and the decision
"lost" once an answer is overdue. Decided outcomes flow, in sequence order, into a
GapTracker.

The sender appends and the receiver marks from different threads; both only append to or
index into arrays, which the GIL makes atomic, so no lock is needed on the hot path.

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
from array import array

from drill.probes.gaps import GapTracker

log = logging.getLogger(__name__)

_PENDING, _OK, _FAILED = 0, 1, 2


class Ledger:
    def __init__(self, interval: float, grace: float) -> None:
        self.grace = grace
        self.tracker = GapTracker(interval)
        self.late = 0
        self._send_times = array("d")
        self._status = bytearray()
        self._cursor = 0  # first sequence number not yet decided

    def __len__(self) -> int:
        return len(self._status)

    def record_send(self, send_time: float) -> int:
        """Register the next packet before it leaves; returns its sequence number."""
        # Status first: a reply can only be matched once its send time exists too.
        self._status.append(_PENDING)
        self._send_times.append(send_time)
        return len(self._send_times) - 1

    def send_time(self, seq: int) -> float:
        return self._send_times[seq]

    def answer(self, seq: int, receive_time: float) -> bool:
        """Mark ``seq`` answered at ``receive_time``; a late or unknown answer is ignored."""
        if not 0 <= seq < len(self._send_times) or self._status[seq] != _PENDING:
            return False
        if receive_time - self._send_times[seq] > self.grace:
            self.late += 1
            return False
        self._status[seq] = _OK
        return True

    def fail(self, seq: int) -> None:
        """Mark ``seq`` failed now (a request that errored), without waiting for grace."""
        if 0 <= seq < len(self._status) and self._status[seq] == _PENDING:
            self._status[seq] = _FAILED

    def decide(self, now: float, margin: float = 0.0) -> None:
        """Feed every outcome known by ``now`` to the tracker, in sequence order.

        A pending packet counts as lost once ``grace + margin`` has passed since it was sent;
        the margin covers the receiver thread noticing a reply that arrived just in time.
        """
        count = len(self._send_times)
        while self._cursor < count:
            seq = self._cursor
            status = self._status[seq]
            sent = self._send_times[seq]
            if status == _PENDING and now - sent <= self.grace + margin:
                break
            self.tracker.feed(sent, status == _OK)
            self._cursor += 1

    @property
    def undecided(self) -> int:
        return len(self._send_times) - self._cursor
