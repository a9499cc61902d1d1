"""Traffic probes: what users feel during a drill, as packets lost and the longest gap.

The engine uses ``start_probe(spec) -> RunningProbe``, ``RunningProbe.check_limits()``,
``RunningProbe.stop() -> ProbeResult`` and ``attribute(result, steps)``;
``drill.probes.vantage.wrap`` runs any command from a vantage point. docs/probes.md explains
the measurement.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drill.probes.attribution import attribute
    from drill.probes.running import ProbeError, RunningProbe, start_probe

_LAZY = {
    "attribute": "drill.probes.attribution",
    "ProbeError": "drill.probes.running",
    "RunningProbe": "drill.probes.running",
    "start_probe": "drill.probes.running",
}


def __getattr__(name: str) -> Any:
    """The engine's names, imported on first use: the agents import this package inside
    every vantage point, and pydantic (through the runbook model) is 0.2 CPU-s they never
    need (benchmarks/isolation_probes.py)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = ["ProbeError", "RunningProbe", "attribute", "start_probe"]
