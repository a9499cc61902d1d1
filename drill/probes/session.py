"""The session probe agent: N long-lived TCP connections to an echo endpoint, kept open for
the whole drill, each exchanging a small message at a fixed interval.

This is what a user in the middle of a payment feels during a failover, which a new
connection per request (the service probe) never shows: a stateful firewall that loses its
connection table, or an L4 device that moves, ends sessions that are in flight. A session is
**lost** once, and then stays closed (no reconnect):

* ``reset``: the connection was reset (RST) while sending or waiting;
* ``closed``: the peer closed it (FIN) or it ended in the middle of an answer;
* ``stalled``: no complete answer within ``timeout`` of sending;
* ``bad-echo``: the answer was not the message sent.

Each loss has ``at``, the send time of the first message that got no good answer, and
``detected``, when the agent gave up. Sessions are staggered over the interval (session *i*
sends at ``start + i * interval / N + k * interval``), so N sessions at 100 ms are an even
stream of N messages every 100 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from drill.engine.records import SessionLoss
from drill.probes.wire import Message, Ready, SessionProgress, SessionResult

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.2
STOP_POLL = 0.05

Emit = Callable[[Message], None]


@dataclass(frozen=True)
class SessionOptions:
    target: str
    port: int
    sessions: int = 50
    interval: float = 0.1
    timeout: float = 3.0  # an answer later than this: the session is stalled
    connect_timeout: float = 3.0


@dataclass
class _Session:
    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    seq: int = 0
    last_answer: float | None = None
    loss: SessionLoss | None = None


@dataclass
class _Tally:
    sent: int = 0
    answered: int = 0
    max_gap_ms: float = 0.0
    losses: list[SessionLoss] = field(default_factory=list)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "stalled"
    if isinstance(exc, asyncio.IncompleteReadError | EOFError):
        return "closed"
    return "reset"


def _open_failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class SessionAgent:
    def __init__(self, options: SessionOptions) -> None:
        if options.sessions < 1 or options.interval <= 0 or options.timeout <= 0:
            raise ValueError("sessions, interval and timeout must be positive")
        self.options = options
        self.tally = _Tally()
        self.open_failures: Counter[str] = Counter()
        self.opened = 0
        self.started = 0.0
        _raise_fd_limit()

    def run(self, stop: threading.Event, emit: Emit) -> None:
        asyncio.run(self._run(stop, emit))

    async def _open(self, index: int) -> _Session | None:
        o = self.options
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(o.target, o.port), o.connect_timeout
            )
        except (OSError, TimeoutError) as exc:
            self.open_failures[_open_failure(exc)] += 1
            return None
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # One small message per interval: never wait for more to fill a segment.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return _Session(index, reader, writer)

    async def _run(self, stop: threading.Event, emit: Emit) -> None:
        opened = await asyncio.gather(*(self._open(i) for i in range(self.options.sessions)))
        sessions = [s for s in opened if s is not None]
        self.opened = len(sessions)
        if not sessions:
            reasons = ", ".join(f"{r} x{n}" for r, n in self.open_failures.items())
            raise OSError(f"no session to {self.options.target} port {self.options.port} "
                          f"opened ({reasons})")  # fmt: skip
        self.started = time.time()
        emit(Ready(started=self.started))
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        start = loop.time()
        tasks = [asyncio.create_task(self._exchange(s, start, stopping)) for s in sessions]
        next_progress = loop.time() + PROGRESS_EVERY
        while not stop.is_set():
            await asyncio.sleep(STOP_POLL)
            if loop.time() >= next_progress:
                next_progress += PROGRESS_EVERY
                emit(SessionProgress(self.opened, len(self.tally.losses), self.tally.sent))
        stopping.set()
        await asyncio.gather(*tasks)
        emit(self._result())

    async def _exchange(self, s: _Session, start: float, stopping: asyncio.Event) -> None:
        """One session's life: send, wait for the echo, until stopped or lost."""
        loop = asyncio.get_running_loop()
        interval = self.options.interval
        offset = s.index * interval / self.options.sessions
        slot = 0
        try:
            while not stopping.is_set():
                due = start + offset + slot * interval
                if due > loop.time():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), due - loop.time())
                    if stopping.is_set():
                        break
                if not await self._one(s):
                    return
                # A late answer (a slow path) skips the slots it overran instead of bursting.
                slot = max(slot + 1, int((loop.time() - start - offset) / interval) + 1)
        finally:
            s.writer.close()
            with contextlib.suppress(ConnectionError, OSError, TimeoutError):
                await asyncio.wait_for(s.writer.wait_closed(), 1.0)

    async def _one(self, s: _Session) -> bool:
        """One message and its echo; False (and the loss recorded) when the session ended."""
        message = f"{s.index} {s.seq}\n".encode()
        s.seq += 1
        sent_at = time.time()
        self.tally.sent += 1
        try:
            s.writer.write(message)
            async with asyncio.timeout(self.options.timeout):
                await s.writer.drain()
                answer = await s.reader.readexactly(len(message))
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            self._lose(s, sent_at, _reason(exc))
            return False
        if answer != message:
            self._lose(s, sent_at, "bad-echo")
            return False
        now = time.time()
        self.tally.answered += 1
        if s.last_answer is not None:
            gap_ms = (now - s.last_answer - self.options.interval) * 1000.0
            self.tally.max_gap_ms = max(self.tally.max_gap_ms, gap_ms)
        s.last_answer = now
        return True

    def _lose(self, s: _Session, sent_at: float, reason: str) -> None:
        s.loss = SessionLoss(session=s.index, at=sent_at, detected=time.time(), reason=reason)
        self.tally.losses.append(s.loss)
        log.debug("session %d lost: %s", s.index, reason)
        if reason != "reset":
            # A stalled path must not keep the socket retransmitting after we gave up.
            s.writer.transport.abort()

    def _result(self) -> SessionResult:
        t = self.tally
        return SessionResult(
            requested=self.options.sessions,
            opened=self.opened,
            sent=t.sent,
            answered=t.answered,
            interval=self.options.interval,
            started=self.started,
            stopped=time.time(),
            max_gap_ms=round(max(0.0, t.max_gap_ms), 3),
            losses=sorted(t.losses, key=lambda loss: (loss.at, loss.session)),
            open_failures=dict(self.open_failures),
            cpu_s=time.process_time(),
        )
