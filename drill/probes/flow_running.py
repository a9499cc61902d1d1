"""The orchestrator's side of the flow probes: one agent (drill/probes/flows.py) per vantage
point, its rounds collected per flow as they arrive.

The agents run in their own sessions and stop when their stdin closes, like every probe
agent: a killed orchestrator leaves none behind.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from drill.errors import DrillError
from drill.probes import vantage, wire

log = logging.getLogger(__name__)

READY_TIMEOUT = 15.0


class FlowProbeError(DrillError):
    pass


@dataclass(frozen=True)
class FlowAttempt:
    flow: int
    t: float  # epoch seconds the round started
    error: str | None  # None: answered


class _Agent:
    def __init__(
        self, where: str, items: list[list[object]], interval: float, timeout: float
    ) -> None:
        self.where = where
        argv = [
            sys.executable,
            "-m",
            "drill.probes.agent",
            "flows",
            "--targets",
            "-",  # on stdin: thousands of flows are past the kernel's limit for one argument
            "--interval",
            f"{interval:g}",
            "--timeout",
            f"{timeout:g}",
        ]
        self.argv = vantage.wrap(where, argv)
        self.ids = [int(str(item[0])) for item in items]
        self.ready = threading.Event()
        self.done = threading.Event()
        self.cpu_s = 0.0
        self.error: str | None = None
        self.stderr: deque[str] = deque(maxlen=10)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdin is not None
        # stdin stays open: the agent stops when it closes
        self.proc.stdin.write(json.dumps(items, separators=(",", ":")) + "\n")
        self.proc.stdin.flush()

    def failure(self) -> str:
        detail = self.error or " / ".join(self.stderr) or "no message"
        return f"flow probes from {self.where}: agent exited ({detail})"


class FlowProbes:
    """``start()``, then ``attempts()`` at any time, ``stop()`` once."""

    def __init__(
        self, by_vantage: dict[str, list[list[object]]], interval: float, timeout: float
    ) -> None:
        self._by_vantage = by_vantage
        self._interval = interval
        self._timeout = timeout
        self._agents: list[_Agent] = []
        self._lock = threading.Lock()
        self._attempts: dict[int, list[FlowAttempt]] = defaultdict(list)

    def start(self) -> None:
        """Start every agent; FlowProbeError (after stopping those started) when one fails."""
        try:
            for where, items in self._by_vantage.items():
                agent = _Agent(where, items, self._interval, self._timeout)
                self._agents.append(agent)
                threading.Thread(target=self._read, args=(agent,), daemon=True).start()
                threading.Thread(target=self._read_err, args=(agent,), daemon=True).start()
            for agent in self._agents:
                if not agent.ready.wait(READY_TIMEOUT) or agent.done.is_set():
                    raise FlowProbeError(agent.failure())
        except (OSError, FlowProbeError) as exc:
            self.stop()
            if isinstance(exc, FlowProbeError):
                raise
            raise FlowProbeError(f"cannot start the flow probes: {exc}") from None
        log.info("flow probes started from %d vantage point(s)", len(self._agents))

    def _read(self, agent: _Agent) -> None:
        assert agent.proc.stdout is not None
        for line in agent.proc.stdout:
            try:
                message = wire.decode(line)
            except ValueError as exc:
                log.warning("flow probes from %s: %s", agent.where, exc)
                continue
            if isinstance(message, wire.Ready):
                agent.ready.set()
            elif isinstance(message, wire.FlowRound):
                self._add(message, agent.ids)
            elif isinstance(message, wire.FlowsDone):
                agent.cpu_s = message.cpu_s
            elif isinstance(message, wire.Error):
                agent.error = message.message
        agent.done.set()
        agent.ready.set()

    @staticmethod
    def _read_err(agent: _Agent) -> None:
        assert agent.proc.stderr is not None
        for line in agent.proc.stderr:
            agent.stderr.append(line.rstrip())

    def _add(self, message: wire.FlowRound, ids: Sequence[int]) -> None:
        known = set(ids)
        with self._lock:
            for ident in message.ok:
                if ident in known:
                    self._attempts[ident].append(FlowAttempt(ident, message.t, None))
            for key, why in message.failed.items():
                ident = int(key)
                if ident in known:
                    self._attempts[ident].append(FlowAttempt(ident, message.t, str(why)))

    def attempts(self) -> dict[int, list[FlowAttempt]]:
        with self._lock:
            return {k: list(v) for k, v in self._attempts.items()}

    def answered_since(self, since: float) -> set[int]:
        """Flows with an answered attempt that started at or after ``since`` (epoch)."""
        with self._lock:
            return {
                k
                for k, v in self._attempts.items()
                if any(a.error is None and a.t >= since for a in v)
            }

    def problems(self) -> list[str]:
        return [a.failure() for a in self._agents if a.done.is_set() and a.proc.poll()]

    def stop(self) -> float:
        """Stop every agent (stdin closed, then SIGKILL after 5 s); their CPU seconds."""
        for agent in self._agents:
            if agent.proc.stdin is not None:
                with contextlib.suppress(OSError):
                    agent.proc.stdin.close()
        for agent in self._agents:
            try:
                agent.proc.wait(timeout=5.0 + self._timeout)
            except subprocess.TimeoutExpired:
                agent.proc.kill()
                agent.proc.wait()
            agent.done.wait(2.0)
        return sum(a.cpu_s for a in self._agents)
