"""The service probe agent: HTTP GETs at a fixed rate, each on a new connection.

A new TCP connection per request is deliberate: it is what a new user of the service meets
during a failover (ARP/ND, SYN to the new owner of the VIP), where a kept-alive connection
would only test one path. Requests overlap when the service is slower than the rate, so they
run as asyncio tasks. A request fails on a connection error, on the timeout, or on an HTTP
status of 400 or more; the answer's body, stripped, names the backend (``app1``).
"""

from __future__ import annotations

import asyncio
import logging
import resource
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from drill.probes.ledger import Ledger
from drill.probes.pacer import Schedule
from drill.probes.wire import Message, Progress, Ready, Result

log = logging.getLogger(__name__)

PROGRESS_EVERY = 0.2
MAX_RESPONSE = 64 * 1024  # a probe reads a name, not a page
MAX_BACKEND_NAME = 100

Emit = Callable[[Message], None]


class HttpFailure(Exception):
    """The service answered, but not with success."""


@dataclass(frozen=True)
class ServiceOptions:
    url: str
    rate: float
    timeout: float = 1.0


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    request: bytes
    tls: ssl.SSLContext | None

    @classmethod
    def from_url(cls, url: str) -> Target:
        """Where to connect and what to send.

        >>> Target.from_url("http://192.0.2.10/health?x=1").request
        b'GET /health?x=1 HTTP/1.0\\r\\nHost: 192.0.2.10\\r\\nUser-Agent: drill-probe\\r\\n\\r\\n'
        """
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"service probe url must be http:// or https://, got {url!r}")
        tls = ssl.create_default_context() if parts.scheme == "https" else None
        port = parts.port or (443 if tls else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # HTTP/1.0: the server closes after the answer and never sends a chunked body.
        request = f"GET {path} HTTP/1.0\r\nHost: {parts.netloc}\r\nUser-Agent: drill-probe\r\n\r\n"
        return cls(parts.hostname, port, request.encode(), tls)


def parse_response(raw: bytes) -> str:
    """The backend name in an HTTP answer; HttpFailure when it is not a success.

    >>> parse_response(b"HTTP/1.0 200 OK\\r\\nServer: x\\r\\n\\r\\napp1\\n")
    'app1'
    >>> parse_response(b"HTTP/1.1 503 Service Unavailable\\r\\n\\r\\n")
    Traceback (most recent call last):
    ...
    drill.probes.service.HttpFailure: http 503
    """
    head, _, body = raw.partition(b"\r\n\r\n")
    fields = head.split(b"\r\n", 1)[0].split()
    if len(fields) < 2 or not fields[0].startswith(b"HTTP/") or not fields[1].isdigit():
        raise HttpFailure("not an http answer")
    if int(fields[1]) >= 400:
        raise HttpFailure(f"http {int(fields[1])}")
    return body.decode("utf-8", "replace").strip()[:MAX_BACKEND_NAME]


async def fetch(target: Target) -> str:
    reader, writer = await asyncio.open_connection(
        target.host,
        target.port,
        ssl=target.tls,
        server_hostname=target.host if target.tls else None,
    )
    try:
        writer.write(target.request)
        await writer.drain()
        raw = await reader.read(MAX_RESPONSE)
        while len(raw) < MAX_RESPONSE:
            more = await reader.read(MAX_RESPONSE - len(raw))
            if not more:
                break
            raw += more
    finally:
        writer.close()
    return parse_response(raw)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, HttpFailure):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__


def _raise_fd_limit() -> None:
    # rate x timeout connections can be open at once while the service is down.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class ServiceAgent:
    def __init__(self, options: ServiceOptions) -> None:
        self.options = options
        self.target = Target.from_url(options.url)
        self.ledger = Ledger(interval=1.0 / options.rate, grace=options.timeout)
        self.backends: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.skipped = 0
        _raise_fd_limit()

    def run(self, stop: threading.Event, emit: Emit) -> None:
        asyncio.run(self._run(stop, emit))

    async def _request(self, seq: int) -> None:
        try:
            backend = await asyncio.wait_for(fetch(self.target), self.options.timeout)
        except (OSError, TimeoutError, HttpFailure, ssl.SSLError, ValueError) as exc:
            self.ledger.fail(seq)
            self.failures[_reason(exc)] += 1
            return
        if self.ledger.answer(seq, time.time()):
            self.backends[backend] += 1

    async def _run(self, stop: threading.Event, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        schedule = Schedule(self.options.rate, loop.time())
        tasks: set[asyncio.Task[None]] = set()
        emit(Ready(started=time.time()))
        next_progress = loop.time() + PROGRESS_EVERY
        while not stop.is_set():
            delay = schedule.due(loop.time()) - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
                continue
            schedule.take()
            task = loop.create_task(self._request(self.ledger.record_send(time.time())))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            if loop.time() >= next_progress:
                next_progress += PROGRESS_EVERY
                self._emit_progress(emit)
        if tasks:
            await asyncio.wait(set(tasks))
        self.skipped = schedule.skipped
        self.ledger.decide(now=float("inf"))
        self.ledger.tracker.finish()
        emit(self._result())

    def _emit_progress(self, emit: Emit) -> None:
        # Requests end by the timeout, so only a request's own end decides it.
        self.ledger.decide(time.time(), margin=self.options.timeout + 1.0)
        t = self.ledger.tracker
        emit(Progress(t.sent, t.lost, t.max_gap_ms, t.ongoing_gap_ms))

    def _result(self) -> Result:
        t = self.ledger.tracker
        return Result(
            sent=t.sent,
            lost=t.lost,
            interval=t.interval,
            started=t.first_send or time.time(),
            stopped=(t.last_send or time.time()) + t.interval,
            outages=list(t.outages),
            backends=dict(self.backends),
            failures=dict(self.failures),
            late=self.ledger.late,
            skipped=self.skipped,
            cpu_s=time.process_time(),
        )
