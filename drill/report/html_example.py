"""A recorded run with probe bins, for the HTML report's tests, its benchmark and docs.

``synthetic_run(directory, seconds=60, rate=1000)`` writes what a drill leaves in its run
directory for the HTML report (``report.json`` and ``probes/*.bins.jsonl``) for a drill of
``seconds`` with two packet probes at ``rate``/s, one outage of 400 ms during the config
step, and returns the report's data.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from drill.engine.records import StepRecord
from drill.probes.bins import BinAccumulator, BinsHeader, bin_width, bins_path, write_header
from drill.report.example import T0, example_record
from drill.report.report import build_report

log = logging.getLogger(__name__)

PROBES = ("ping-vip", "ping-app")


def synthetic_report(seconds: float = 60.0) -> dict[str, Any]:
    """The docs' example run, stretched to ``seconds``."""
    record = example_record()
    scale = seconds / 41.877
    record.steps = [_scaled(step, scale) for step in record.steps]
    record.ended = T0 + timedelta(seconds=seconds)
    for probe in record.probes:
        probe.rate = 1000.0
        probe.kind = "packet"
    record.probes[0].name, record.probes[1].name = PROBES
    return build_report(record)


def _scaled(step: StepRecord, scale: float) -> StepRecord:
    def at(moment: Any) -> Any:
        return None if moment is None else T0 + (moment - T0) * scale

    return replace(step, started=at(step.started), ended=at(step.ended))


def write_bins(directory: Path, name: str, seconds: float, rate: float, seed: int = 1) -> Path:
    """``seconds`` of a probe at ``rate``/s from T0, losing everything for 400 ms at 2 s."""
    rng = random.Random(seed)
    width = bin_width(rate)
    path = bins_path(directory, name)
    write_header(path, BinsHeader(name, "packet", rate, width))
    base = T0.timestamp()
    lines: list[str] = []
    acc = BinAccumulator(width, lines.append)
    for i in range(int(seconds * rate)):
        t = base + i / rate
        lost = 2.0 <= i / rate < 2.4
        acc.add(t, not lost, None if lost else 0.0002 + rng.random() * 0.0008)
    acc.close()
    with path.open("a", encoding="utf-8") as handle:
        handle.write("".join(lines))
    return path


def synthetic_run(directory: Path, seconds: float = 60.0, rate: float = 1000.0) -> dict[str, Any]:
    """Write ``report.json`` and two probes' bins into ``directory``; return the report."""
    directory.mkdir(parents=True, exist_ok=True)
    report = synthetic_report(seconds)
    (directory / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    for index, name in enumerate(PROBES):
        write_bins(directory / "probes", name, seconds, rate, seed=index)
    return report
