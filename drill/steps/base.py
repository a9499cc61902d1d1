"""What every step kind returns, and helpers they share."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from nornir.core.inventory import Host

from drill.engine.records import HostResult, StepStatus

log = logging.getLogger(__name__)


@dataclass
class StepOutcome:
    status: StepStatus = StepStatus.OK
    hosts: dict[str, HostResult] = field(default_factory=dict)
    message: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in (StepStatus.OK, StepStatus.SKIPPED)

    @classmethod
    def from_hosts(cls, hosts: dict[str, HostResult], what: str = "") -> StepOutcome:
        failed = [h for h, r in hosts.items() if r.failed]
        if not failed:
            return cls(StepStatus.OK, hosts)
        lines = [r.error or f"{h}: failed" for h, r in hosts.items() if r.failed]
        # Assertion messages already name their host; other errors need the name.
        lines = [
            line if line.startswith(f"{h}:") else f"{h}: {line}"
            for h, line in zip(failed, lines, strict=True)
        ]
        head = f"{what}: " if what else ""
        return cls(StepStatus.FAILED, hosts, head + "; ".join(lines))

    @classmethod
    def failed(cls, message: str) -> StepOutcome:
        return cls(StepStatus.FAILED, {}, message)

    @classmethod
    def skipped(cls, message: str) -> StepOutcome:
        return cls(StepStatus.SKIPPED, {}, message)


def host_view(host: Host) -> dict[str, Any]:
    """What templates see as ``host`` (the loader's shape): name, hostname, platform,
    groups, and ``data`` with group and default data merged."""
    data = dict(host.items())
    return {
        "name": host.name,
        "hostname": host.hostname,
        "platform": host.platform,
        "groups": [g.name for g in host.groups],
        "data": data,
    }
