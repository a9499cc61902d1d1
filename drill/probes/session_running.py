"""The orchestrator's side of a session probe: the same agent process handling as the other
probes (drill/probes/running.py), with session counts instead of packet counts."""

from __future__ import annotations

import logging

from drill.engine.records import ProbeResult, SessionStats
from drill.probes import wire
from drill.probes.running import RunningProbe
from drill.runbook.model import SessionProbe

log = logging.getLogger(__name__)


class RunningSessionProbe(RunningProbe):
    """A started session probe: ``stop()`` returns a ProbeResult with ``sessions`` set.

    ``sent``/``lost`` of the result count messages (one unanswered message ends a session,
    so ``lost`` equals the sessions lost); ``rate`` is messages per second over all sessions.
    """

    def __init__(self, spec: SessionProbe) -> None:
        self._session_progress: wire.SessionProgress | None = None
        self._session_result: wire.SessionResult | None = None
        self.session_spec = spec
        super().__init__(spec)

    def _on_message(self, message: wire.Message) -> None:
        if isinstance(message, wire.SessionProgress):
            self._session_progress = message
        elif isinstance(message, wire.SessionResult):
            self._session_result = message
        else:
            super()._on_message(message)

    def _stop_wait(self) -> float:
        # Each session finishes the exchange it is in: at most one timeout.
        return float(self.session_spec.timeout)

    @property
    def _rate(self) -> float:
        spec = self.session_spec
        return round(spec.sessions / float(spec.interval), 3)

    def _to_record(self) -> ProbeResult:
        r = self._session_result
        spec = self.session_spec
        if r is None:
            p = self._session_progress or wire.SessionProgress(0, 0, 0)
            stats = SessionStats(requested=spec.sessions, opened=p.opened)
            return ProbeResult(self.name, self.kind, self._rate, p.sent, p.lost, 0.0,
                               error=self._agent_failure(), sessions=stats)  # fmt: skip
        stats = SessionStats(
            requested=r.requested,
            opened=r.opened,
            losses=list(r.losses),
            open_failures=dict(r.open_failures),
        )
        log.info("probe %s: %d sessions opened, %d survived, %d lost (%s), %d messages, "
                 "agent cpu %.2f s", self.name, stats.opened, stats.survived, stats.lost,
                 ", ".join(f"{x.session}:{x.reason}" for x in stats.losses) or "none",
                 r.sent, r.cpu_s)  # fmt: skip
        return ProbeResult(
            name=self.name,
            kind=self.kind,
            rate=self._rate,
            sent=r.sent,
            lost=r.sent - r.answered,
            max_gap_ms=r.max_gap_ms,
            sessions=stats,
        )

    @property
    def session_result(self) -> wire.SessionResult | None:
        """The agent's full result after stop()."""
        return self._session_result

    def check_limits(self) -> str | None:
        """Why ``max_lost_sessions`` is already exceeded, fewer sessions than asked could be
        opened, or the agent stopped measuring; None when all is well."""
        spec = self.session_spec
        if self._final is not None:
            stats = self._final.sessions
            opened = stats.opened if stats else 0
            lost = stats.lost if stats else 0
            error = self._final.error
        else:
            p = self._session_progress or wire.SessionProgress(spec.sessions, 0, 0)
            opened, lost = p.opened, p.lost
            error = self._agent_failure() if self._done.is_set() else None
        if spec.max_lost_sessions is not None and lost > spec.max_lost_sessions:
            return (
                f"probe {self.name}: {lost} of {opened} sessions lost, "
                f"limit {spec.max_lost_sessions}"
            )
        if error is not None:
            return f"probe {self.name} stopped measuring: {error}"
        if opened < spec.sessions:
            return f"probe {self.name}: only {opened} of {spec.sessions} sessions opened"
        return None
