"""Traffic probes: what users feel during a drill, as packets lost and the longest gap.

The engine uses ``start_probe(spec) -> RunningProbe``, ``RunningProbe.check_limits()``,
``RunningProbe.stop() -> ProbeResult`` and ``attribute(result, steps)``;
``drill.probes.vantage.wrap`` runs any command from a vantage point. docs/probes.md explains
the measurement.
"""

from drill.probes.attribution import attribute
from drill.probes.running import ProbeError, RunningProbe, start_probe

__all__ = ["ProbeError", "RunningProbe", "attribute", "start_probe"]
