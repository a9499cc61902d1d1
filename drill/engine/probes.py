"""Glue between the engine and drill.probes: start before the prechecks, stop after the
postchecks (or after the rollback), attribute outages to steps, enforce max_loss/max_gap."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drill.engine.records import ProbeResult, StepRecord
from drill.runbook.model import PacketProbe, ServiceProbe, SessionProbe

log = logging.getLogger(__name__)


class Probes:
    def __init__(
        self,
        specs: Sequence[PacketProbe | ServiceProbe | SessionProbe],
        bins_dir: Path | None = None,
    ) -> None:
        self.specs = list(specs)
        self.bins_dir = bins_dir  # per-bin timeline for the HTML report
        self._running: list[Any] = []
        self._results: list[ProbeResult] | None = None
        self.problems: list[str] = []

    def start(self) -> None:
        """Start every probe; raises (DrillError) when one cannot start."""
        if not self.specs:
            return
        from drill.probes.running import start_probe

        for spec in self.specs:
            self._running.append(start_probe(spec, self.bins_dir))

    def stop(self, steps: list[StepRecord]) -> list[ProbeResult]:
        """Stop all probes once; later calls return the same results."""
        if self._results is not None:
            return self._results
        results: list[ProbeResult] = []
        for probe in self._running:
            result = probe.stop()
            problem = probe.check_limits()
            if problem:
                self.problems.append(problem)
            results.append(result)
        if results:
            from drill.probes.attribution import attribute

            windows = [
                (s.name, s.started.timestamp(), s.ended.timestamp())
                for s in steps
                if s.started is not None and s.ended is not None
            ]
            for result in results:
                attribute(result, windows)
        self._results = results
        return results
