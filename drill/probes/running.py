"""The orchestrator's side of a probe: starts the agent at its vantage point, follows its
progress lines, stops it and turns its result into a ProbeResult."""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path
from types import TracebackType

from drill.engine.records import ProbeResult
from drill.errors import DrillError, InputError, NeedsRootError
from drill.probes import bins, vantage, wire
from drill.runbook.model import PacketProbe, ServiceProbe, SessionProbe

log = logging.getLogger(__name__)

READY_TIMEOUT = 15.0  # python start-up inside a namespace, on a busy 2-core box
GRACE = 1.0  # packet probe: replies later than this count as lost
STOP_SLACK = 5.0  # beyond grace/timeout, before the agent is killed


AnyProbe = PacketProbe | ServiceProbe | SessionProbe


class ProbeError(DrillError):
    """A probe could not start (bad target, no namespace, no raw socket)."""


def agent_argv(spec: AnyProbe, bins_file: Path | None = None) -> list[str]:
    """The agent command line for ``spec``, not yet wrapped for its vantage point."""
    base = [sys.executable, "-m", "drill.probes.agent"]
    if isinstance(spec, SessionProbe):
        return [*base, "session", "--target", spec.target, "--port", str(spec.port),
                "--sessions", str(spec.sessions), "--interval", str(float(spec.interval)),
                "--timeout", str(float(spec.timeout))]  # fmt: skip
    if isinstance(spec, ServiceProbe):
        return [*base, "service", "--url", spec.url, "--rate", str(spec.rate),
                "--timeout", str(float(spec.timeout)), *_bins_args(spec, bins_file)]  # fmt: skip
    argv = [*base, "packet", "--target", spec.target, "--rate", str(spec.rate),
            "--protocol", spec.protocol, "--grace", str(GRACE),
            *_bins_args(spec, bins_file)]  # fmt: skip
    if spec.protocol == "udp":
        if spec.port is None:
            raise InputError(f"probe {spec.name}: a udp probe needs 'port' (an echo service)")
        argv += ["--port", str(spec.port)]
    return argv


def _bins_args(spec: PacketProbe | ServiceProbe, bins_file: Path | None) -> list[str]:
    """Start the report's per-bin file (header now, rows from the agent)."""
    if bins_file is None:
        return []
    width = bins.bin_width(spec.rate)
    bins.write_header(bins_file, bins.BinsHeader(spec.name, spec.kind, float(spec.rate), width))
    return ["--bins", str(bins_file), "--bin-s", str(width)]


def _check_privileges(spec: AnyProbe) -> None:
    in_netns = vantage.netns_of(spec.from_) is not None
    raw = isinstance(spec, PacketProbe) and spec.protocol == "icmp"
    if (in_netns or raw) and os.geteuid() != 0:
        what = "a probe in a network namespace" if in_netns else "an ICMP probe (raw socket)"
        raise NeedsRootError(f"probe {spec.name}: {what}")


class RunningProbe:
    """A started probe. Use ``stop()`` once; or use it as a context manager."""

    def __init__(self, spec: AnyProbe, bins_dir: Path | None = None) -> None:
        self.spec = spec
        self.name = spec.name
        self.kind = spec.kind
        _check_privileges(spec)
        bins_file = bins.bins_path(bins_dir, spec.name) if bins_dir is not None else None
        self.argv = vantage.wrap(spec.from_, agent_argv(spec, bins_file))
        self._ready = threading.Event()
        self._done = threading.Event()
        self._progress: wire.Progress | None = None
        self._result: wire.Result | None = None
        self._error: str | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=20)
        self._final: ProbeResult | None = None
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Its own session: the operator's Ctrl-C must not stop the measurement while the
            # engine is still rolling back.
            start_new_session=True,
        )
        threading.Thread(target=self._read_stdout, name=f"probe-{self.name}", daemon=True).start()
        self._stderr_reader = threading.Thread(
            target=self._read_stderr, name=f"probe-{self.name}-err", daemon=True
        )
        self._stderr_reader.start()
        self._wait_ready()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _read_stdout(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                message = wire.decode(line)
            except ValueError as exc:
                log.warning("probe %s: %s", self.name, exc)
                continue
            self._on_message(message)
        self._done.set()
        self._ready.set()  # wake start-up if the agent died before it was ready

    def _on_message(self, message: wire.Message) -> None:
        if isinstance(message, wire.Ready):
            self._ready.set()
        elif isinstance(message, wire.Progress):
            self._progress = message
        elif isinstance(message, wire.Result):
            self._result = message
        elif isinstance(message, wire.Error):
            self._error = message.message

    def _read_stderr(self) -> None:
        assert self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line.rstrip())
            log.debug("probe %s agent: %s", self.name, line.rstrip())

    def _agent_failure(self) -> str:
        if self._proc.poll() is not None:
            self._stderr_reader.join(timeout=2.0)  # its last words, e.g. from `ip netns exec`
        detail = self._error or " / ".join(self._stderr) or "no message"
        return f"probe {self.name}: agent exited ({detail})"

    def _wait_ready(self) -> None:
        if self._ready.wait(READY_TIMEOUT) and not self._done.is_set():
            log.info("probe %s started (pid %d): %s", self.name, self.pid, " ".join(self.argv))
            return
        self._kill()
        self._done.wait(2.0)
        if not self._ready.is_set():
            raise ProbeError(f"probe {self.name}: agent not ready after {READY_TIMEOUT:g} s")
        raise ProbeError(self._agent_failure())

    def _kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()

    def stop(self) -> ProbeResult:
        """Stop sending, wait for the last answers (at most the grace period or request
        timeout) and return the measurement. Calling it again returns the same result."""
        if self._final is not None:
            return self._final
        assert self._proc.stdin is not None
        # An OSError means the agent is already gone; its exit status tells why.
        with contextlib.suppress(OSError):
            self._proc.stdin.close()
        wait = self._stop_wait() + STOP_SLACK
        try:
            self._proc.wait(wait)
        except subprocess.TimeoutExpired:
            log.warning("probe %s: agent did not stop in %.0f s; terminating", self.name, wait)
            self._proc.terminate()
            try:
                self._proc.wait(2.0)
            except subprocess.TimeoutExpired:
                self._kill()
        self._done.wait(2.0)
        self._final = self._to_record()
        return self._final

    def _stop_wait(self) -> float:
        """How long the agent may take to decide its last answers once told to stop."""
        return float(self.spec.timeout) if isinstance(self.spec, ServiceProbe) else GRACE

    def _rated(self) -> PacketProbe | ServiceProbe:
        # Session probes have their own class (session_running.py); this one is rate-based.
        assert not isinstance(self.spec, SessionProbe)
        return self.spec

    def _to_record(self) -> ProbeResult:
        r, spec = self._result, self._rated()
        if r is None:
            p = self._progress or wire.Progress(0, 0, 0.0, 0.0)
            gap = max(p.max_gap_ms, p.ongoing_gap_ms)
            return ProbeResult(self.name, self.kind, float(spec.rate), p.sent, p.lost, gap,
                               error=self._agent_failure())  # fmt: skip
        interval = 1.0 / spec.rate
        max_gap = max((o.gap_ms(interval) for o in r.outages), default=0.0)
        log.info("probe %s: sent %d lost %d max gap %.1f ms, agent cpu %.2f s, late %d, "
                 "skipped %d, failures %s", self.name, r.sent, r.lost, max_gap, r.cpu_s,
                 r.late, r.skipped, r.failures)  # fmt: skip
        return ProbeResult(
            name=self.name,
            kind=self.kind,
            rate=float(spec.rate),
            sent=r.sent,
            lost=r.lost,
            max_gap_ms=round(max_gap, 3),
            outages=list(r.outages),
            backends=dict(r.backends),
        )

    @property
    def agent_result(self) -> wire.Result | None:
        """The agent's full result (CPU time, late replies, failure reasons) after stop()."""
        return self._result

    def check_limits(self) -> str | None:
        """Why the runbook's max_loss/max_gap is already exceeded, or None.

        A probe whose agent died can no longer enforce its limits, so that is reported too.
        """
        if self._final is not None:
            lost, gap, error = self._final.lost, self._final.max_gap_ms, self._final.error
        else:
            p = self._progress or wire.Progress(0, 0, 0.0, 0.0)
            lost, gap = p.lost, max(p.max_gap_ms, p.ongoing_gap_ms)
            error = self._agent_failure() if self._done.is_set() else None
        unit = "packets" if self.kind == "packet" else "requests"
        spec = self._rated()
        if spec.max_loss is not None and lost > spec.max_loss:
            return f"probe {self.name}: {lost} {unit} lost, limit {spec.max_loss}"
        if spec.max_gap is not None and gap > float(spec.max_gap) * 1000.0:
            return f"probe {self.name}: interruption {gap:.0f} ms, limit {spec.max_gap}"
        if error is not None:
            return f"probe {self.name} stopped measuring: {error}"
        return None

    def __enter__(self) -> RunningProbe:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_probe(spec: AnyProbe, bins_dir: Path | None = None) -> RunningProbe:
    """Start ``spec`` at its vantage point; it measures until ``stop()``. With ``bins_dir``
    the agent records the per-bin timeline there (drill.probes.bins; not for sessions)."""
    if isinstance(spec, SessionProbe):
        from drill.probes.session_running import RunningSessionProbe

        return RunningSessionProbe(spec)
    return RunningProbe(spec, bins_dir)
