"""The packet probe agent: a paced sender thread and a receiver thread on one socket.

Runs inside the vantage point (``python -m drill.probes.agent packet ...``). Send times are
wall-clock (``time.time()``, recorded just before ``sendto``), receive times are the kernel's
(``SO_TIMESTAMPNS``), so a slow receiver thread cannot make a reply look late.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from drill.probes.ledger import Ledger
from drill.probes.pacer import Schedule
from drill.probes.transports import Icmp4, Icmp6, Transport, Udp
from drill.probes.wire import Message, Progress, Ready, Result

log = logging.getLogger(__name__)

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux value, absent from some builds
_TIMESPEC = struct.Struct("@qq")
PROGRESS_EVERY = 0.2  # seconds between progress lines
DECIDE_MARGIN = 0.1  # extra wait after grace before an unanswered packet counts as lost

Emit = Callable[[Message], None]


@dataclass(frozen=True)
class PacketOptions:
    target: str
    rate: float
    protocol: str = "icmp"  # "icmp" | "udp"
    port: int | None = None
    grace: float = 1.0  # a reply later than this counts as lost


def _resolve(options: PacketOptions) -> tuple[Transport, tuple[str, int]]:
    info = socket.getaddrinfo(options.target, options.port or 0, type=socket.SOCK_DGRAM)[0]
    family, address = info[0], info[4]
    token = secrets.token_bytes(8)
    transport: Transport
    if options.protocol == "udp":
        transport = Udp(token=token, family=family)
    elif family == socket.AF_INET6:
        transport = Icmp6(ident=secrets.randbelow(0x10000), token=token)
    else:
        transport = Icmp4(ident=secrets.randbelow(0x10000), token=token)
    return transport, (str(address[0]), int(address[1]))


class PacketAgent:
    def __init__(self, options: PacketOptions) -> None:
        self.options = options
        self.transport, self.address = _resolve(options)
        self.sock = self.transport.open()
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        # A second of replies at 20,000/s without the kernel dropping any.
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.ledger = Ledger(interval=1.0 / options.rate, grace=options.grace)
        self.send_errors: Counter[str] = Counter()
        self._sending_done = threading.Event()
        self._receiving_done = threading.Event()
        self._schedule = Schedule(options.rate, time.monotonic())

    def run(self, stop: threading.Event, emit: Emit) -> None:
        sender = threading.Thread(target=self._send_loop, args=(stop,), name="sender")
        receiver = threading.Thread(target=self._receive_loop, name="receiver", daemon=True)
        receiver.start()
        emit(Ready(started=time.time()))
        sender.start()
        while not stop.wait(PROGRESS_EVERY):
            self._emit_progress(emit)
        sender.join()
        self._drain()
        self._receiving_done.set()
        receiver.join(timeout=1.0)
        self.sock.close()
        self.ledger.decide(now=float("inf"))
        self.ledger.tracker.finish()
        emit(self._result())

    def _emit_progress(self, emit: Emit) -> None:
        self.ledger.decide(time.time(), DECIDE_MARGIN)
        t = self.ledger.tracker
        emit(Progress(t.sent, t.lost, t.max_gap_ms, t.ongoing_gap_ms))

    def _drain(self) -> None:
        """Wait for the last replies, but no longer than the grace period."""
        deadline = time.time() + self.options.grace + DECIDE_MARGIN
        while time.time() < deadline:
            self.ledger.decide(time.time(), DECIDE_MARGIN)
            if not self.ledger.undecided:
                return
            time.sleep(0.02)

    def _send_loop(self, stop: threading.Event) -> None:
        schedule, ledger, build = self._schedule, self.ledger, self.transport.build
        sock, address = self.sock, self.address
        while not stop.is_set():
            delay = schedule.due(time.monotonic()) - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            schedule.take()
            packet = build(len(ledger))
            seq = ledger.record_send(time.time())
            try:
                sock.sendto(packet, address)
            except OSError as exc:
                # No route during a failover is loss the user feels, not an agent failure.
                ledger.fail(seq)
                self.send_errors[os.strerror(exc.errno) if exc.errno else str(exc)] += 1

    def _receive_loop(self) -> None:
        self.sock.settimeout(0.1)
        parse, answer = self.transport.parse, self.ledger.answer
        while not self._receiving_done.is_set():
            try:
                data, ancillary, _flags, _addr = self.sock.recvmsg(2048, 256)
            except TimeoutError:
                continue
            except OSError as exc:
                if self._receiving_done.is_set():
                    return
                log.debug("receive error: %s", exc)
                continue
            seq = parse(data)
            if seq is not None:
                answer(seq, _receive_time(ancillary))

    def _result(self) -> Result:
        t = self.ledger.tracker
        failures = {f"send: {reason}": n for reason, n in self.send_errors.items()}
        return Result(
            sent=t.sent,
            lost=t.lost,
            interval=t.interval,
            started=t.first_send or time.time(),
            stopped=(t.last_send or time.time()) + t.interval,
            outages=list(t.outages),
            failures=failures,
            late=self.ledger.late,
            skipped=self._schedule.skipped,
            cpu_s=time.process_time(),
        )


def _receive_time(ancillary: list[tuple[int, int, bytes]]) -> float:
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= _TIMESPEC.size:
            seconds, nanoseconds = _TIMESPEC.unpack_from(data)
            return float(seconds) + float(nanoseconds) / 1e9
    return time.time()
