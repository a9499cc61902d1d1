"""Per-bin probe data for the report's timeline: ``runs/RUN_ID/probes/NAME.bins.jsonl``.

The orchestrator writes the file's first line (a header naming the probe) before it starts
the agent; the agent appends one row per bin as outcomes are decided, so the file survives
the orchestrator's death and a report can be drawn afterwards (docs/report.md, "Probe bins").

Header: ``{"probe": NAME, "kind": KIND, "rate": R, "bin_s": W, "version": 1}``.
Row: ``[t, sent, lost, rtt_min_ms, rtt_avg_ms, rtt_max_ms]``: ``t`` is the bin's start
(epoch seconds, a multiple of ``bin_s``), counts are of packets/requests *sent* in the bin,
the round-trip times are of those answered (null when none was). Bins in which nothing was
sent are absent.

>>> import io
>>> out = io.StringIO()
>>> acc = BinAccumulator(0.01, out.write)
>>> for t, ok, rtt in [(0.001, True, 0.002), (0.004, False, None), (0.012, True, 0.001)]:
...     acc.add(t, ok, rtt)
>>> acc.close()
>>> out.getvalue().splitlines()
['[0.0,2,1,2.0,2.0,2.0]', '[0.01,1,0,1.0,1.0,1.0]']
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

VERSION = 1
SUFFIX = ".bins.jsonl"
MIN_BIN_S = 0.01
PACKETS_PER_BIN = 10
FLUSH_EVERY_S = 0.5  # at most this much of the timeline is lost when the agent is killed


def bin_width(rate: float) -> float:
    """Ten packets per bin, never under 10 ms: 10 ms at 1,000/s, 0.5 s at 20/s.

    >>> bin_width(1000), bin_width(20), bin_width(20000)
    (0.01, 0.5, 0.01)
    """
    return round(max(MIN_BIN_S, PACKETS_PER_BIN / rate), 6) if rate > 0 else 1.0


def bins_path(directory: Path, probe: str) -> Path:
    """Where ``probe``'s bins go; the name is made safe for a file name.

    >>> bins_path(Path("probes"), "../vip icmp").as_posix()
    'probes/.._vip_icmp.bins.jsonl'
    """
    return directory / (re.sub(r"[^A-Za-z0-9._-]", "_", probe) + SUFFIX)


@dataclass(frozen=True)
class BinsHeader:
    probe: str
    kind: str
    rate: float
    bin_s: float


@dataclass(frozen=True)
class Bin:
    t: float
    sent: int
    lost: int
    rtt_min_ms: float | None
    rtt_avg_ms: float | None
    rtt_max_ms: float | None


@dataclass(frozen=True)
class ProbeBins:
    header: BinsHeader
    bins: list[Bin]


def write_header(path: Path, header: BinsHeader) -> None:
    """Start ``path`` with the header (truncating it); the agent appends the rows."""
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {"probe": header.probe, "kind": header.kind, "rate": header.rate,
            "bin_s": header.bin_s, "version": VERSION}  # fmt: skip
    path.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")


class BinAccumulator:
    """Folds decided outcomes, in send order, into bins and hands finished rows to ``out``."""

    def __init__(self, width: float, out: Callable[[str], object]) -> None:
        self.width = width
        self._out = out
        self._index: int | None = None
        self._sent = self._lost = self._answered = 0
        self._rtt_sum = 0.0
        self._rtt_min = math.inf
        self._rtt_max = 0.0

    def add(self, send_time: float, ok: bool, rtt_s: float | None) -> None:
        index = math.floor(send_time / self.width + 1e-9)
        if index != self._index:
            self._emit()
            self._index = index
        self._sent += 1
        if not ok:
            self._lost += 1
        elif rtt_s is not None:
            rtt = rtt_s * 1000.0
            self._answered += 1
            self._rtt_sum += rtt
            self._rtt_min = min(self._rtt_min, rtt)
            self._rtt_max = max(self._rtt_max, rtt)

    def close(self) -> None:
        self._emit()

    def _emit(self) -> None:
        if self._index is None or not self._sent:
            return
        start = round(self._index * self.width, 6)
        if self._answered:
            rtts = [round(self._rtt_min, 3), round(self._rtt_sum / self._answered, 3),
                    round(self._rtt_max, 3)]  # fmt: skip
            row = json.dumps([start, self._sent, self._lost, *rtts], separators=(",", ":"))
        else:
            row = json.dumps([start, self._sent, self._lost, None, None, None],
                             separators=(",", ":"))  # fmt: skip
        self._out(row + "\n")
        self._sent = self._lost = self._answered = 0
        self._rtt_sum, self._rtt_min, self._rtt_max = 0.0, math.inf, 0.0


class BinFile:
    """The agent's side: appends rows to the file, flushing at most every half second."""

    def __init__(self, path: Path, width: float) -> None:
        self._file: IO[str] = path.open("a", encoding="utf-8")
        self._pending: list[str] = []
        self._flushed = time.monotonic()
        self._broken = False
        self.acc = BinAccumulator(width, self._pending.append)

    def add(self, send_time: float, ok: bool, rtt_s: float | None) -> None:
        if self._broken:
            return
        self.acc.add(send_time, ok, rtt_s)
        if self._pending and time.monotonic() - self._flushed >= FLUSH_EVERY_S:
            self._flush()

    def close(self) -> None:
        if not self._broken:
            self.acc.close()
            self._flush()
        with contextlib.suppress(OSError):
            self._file.close()

    def _flush(self) -> None:
        try:
            self._file.write("".join(self._pending))
            self._file.flush()
        except OSError as exc:
            # The chart loses its data; the measurement itself must go on.
            log.warning("cannot write probe bins (%s): the timeline stops here", exc)
            self._broken = True
        self._pending.clear()
        self._flushed = time.monotonic()


def read_bins(path: Path) -> ProbeBins | None:
    """One probe's bins; None when the file has no valid header. Torn or bad rows (a killed
    agent) are skipped."""
    rows = _lines(path)
    try:
        head = json.loads(next(rows))
        header = BinsHeader(str(head["probe"]), str(head["kind"]), float(head["rate"]),
                            float(head["bin_s"]))  # fmt: skip
    except (StopIteration, ValueError, KeyError, TypeError):
        log.warning("%s: no valid header; ignored", path)
        return None
    bins: list[Bin] = []
    for line in rows:
        row = _row(line)
        if row is None:
            log.debug("%s: skipping a bad row", path)
        else:
            bins.append(row)
    bins.sort(key=lambda b: b.t)
    return ProbeBins(header, bins)


def read_all(directory: Path) -> dict[str, ProbeBins]:
    """Every probe's bins in ``directory``, by probe name (from the header)."""
    found: dict[str, ProbeBins] = {}
    if not directory.is_dir():
        return found
    for path in sorted(directory.glob("*" + SUFFIX)):
        data = read_bins(path)
        if data is not None:
            found[data.header.probe] = data
    return found


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.strip():
                yield line


def _row(line: str) -> Bin | None:
    """One row, parsed by hand: json.loads per row is most of the time of a 60 s report.

    >>> _row("[1.5,10,1,0.1,0.2,0.3]\\n"), _row("[1.5,10,10,null,null,null]")
    (Bin(t=1.5, sent=10, lost=1, rtt_min_ms=0.1, rtt_avg_ms=0.2, rtt_max_ms=0.3), \
Bin(t=1.5, sent=10, lost=10, rtt_min_ms=None, rtt_avg_ms=None, rtt_max_ms=None))
    >>> _row("[1.5,10,"), _row('["x",1,1,1,1,1]')
    (None, None)
    """
    text = line.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    fields = text[1:-1].split(",")
    if len(fields) != 6:
        return None
    try:
        t, sent, lost = float(fields[0]), int(fields[1]), int(fields[2])
        lo, avg, hi = (None if f == "null" else float(f) for f in fields[3:])
    except ValueError:
        return None
    if not (math.isfinite(t) and 0 <= lost <= sent):
        return None
    return Bin(t, sent, lost, lo, avg, hi)
