"""The session probe's own fields in report.json (docs/report.md, ``probes[]``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from drill.engine.records import SessionStats
from drill.report.facts import iso_utc

log = logging.getLogger(__name__)

ENDED = ("reset", "closed", "bad-echo")


def session_fields(stats: SessionStats) -> dict[str, Any]:
    """``sessions_*`` counts and one entry per lost session, in the order they were lost."""

    def when(epoch: float) -> str | None:
        return iso_utc(datetime.fromtimestamp(epoch, UTC))

    return {
        "sessions_requested": stats.requested,
        "sessions_opened": stats.opened,
        "sessions_survived": stats.survived,
        "sessions_lost": stats.lost,
        "sessions_reset": stats.count(*ENDED),
        "sessions_stalled": stats.count("stalled"),
        "sessions_failed_to_open": dict(sorted(stats.open_failures.items())),
        "session_losses": [
            {
                "session": loss.session,
                "at": when(loss.at),
                "detected": when(loss.detected),
                "reason": loss.reason,
                "step": loss.step,
            }
            for loss in stats.losses
        ],
    }
