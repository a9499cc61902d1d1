"""The flow probe agent: one attempt per flow per interval, for the isolation rehearsal's
generated probes (docs/flows.md, "Isolation rehearsal").

One agent per vantage point probes every flow that starts there, in rounds: all attempts of
a round go out at once (non-blocking sockets, one ``select`` loop), so 100 flows cost one
process and a few system calls each per interval, not 100 threads. An attempt is a TCP
connect (the handshake answered: the server's host and its firewalls let the flow through),
a DNS query (any answer, even NXDOMAIN or REFUSED, proves a resolver heard it) or an ICMP
echo. Each attempt binds the flow's client address, so the packets leave as the real flow's
did and meet the same routing and firewall rules.

>>> FlowTarget.parse([3, "tcp", "192.0.2.32", "192.0.2.27", 8300])
FlowTarget(id=3, method='tcp', source='192.0.2.32', address='192.0.2.27', port=8300)
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import resource
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from drill.probes import wire

log = logging.getLogger(__name__)

Method = Literal["tcp", "dns", "icmp"]
METHODS: tuple[Method, ...] = ("tcp", "dns", "icmp")
# A query for the root's NS records: every resolver answers it somehow, with no upstream too.
_DNS_QUERY_TAIL = b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01"


SPARE_FILES = 64  # the agent's own files: stdio, the selector, Python's imports


def files_needed(flows: int) -> int:
    return flows + SPARE_FILES


def open_files_limit() -> int:
    """The hard limit on open files, which an agent may raise its own soft limit to."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def raise_open_files(flows: int) -> None:
    """A round opens one socket per flow at once: lift the soft limit (1024 by default)
    to what the flows need. OSError when even the hard limit is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = files_needed(flows)
    if needed <= soft:
        return
    if hard != resource.RLIM_INFINITY and needed > hard:
        raise OSError(f"{flows} flows need {needed} open files; the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


@dataclass(frozen=True)
class FlowTarget:
    id: int
    method: Method
    source: str | None  # the client address the attempt binds; None: the kernel picks
    address: str
    port: int  # 0 for icmp

    @classmethod
    def parse(cls, item: Any) -> FlowTarget:
        """One ``[id, method, source, address, port]`` item; ValueError when malformed."""
        if not isinstance(item, list) or len(item) != 5:
            raise ValueError(f"bad flow target {item!r}")
        ident, method, source, address, port = item
        if not isinstance(ident, int) or method not in METHODS or not isinstance(port, int):
            raise ValueError(f"bad flow target {item!r}")
        ipaddress.ip_address(address)
        if source is not None:
            ipaddress.ip_address(source)
        if not 0 <= port <= 65535:
            raise ValueError(f"bad port in {item!r}")
        return cls(ident, method, source, address, port)

    @property
    def family(self) -> socket.AddressFamily:
        return socket.AF_INET6 if ":" in self.address else socket.AF_INET


@dataclass
class _Attempt:
    target: FlowTarget
    sock: socket.socket
    check: Callable[[socket.socket], str | None]  # None: answered; else why not
    token: int = 0


def _bind(sock: socket.socket, target: FlowTarget) -> None:
    if target.source is not None:
        sock.bind((target.source, 0))


def _start_tcp(target: FlowTarget) -> _Attempt:
    sock = socket.socket(target.family, socket.SOCK_STREAM)
    sock.setblocking(False)
    # RST on close: an attempt leaves no TIME_WAIT behind, 100 flows a second would pile up.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _bind(sock, target)
    code = sock.connect_ex((target.address, target.port))
    if code not in (0, errno.EINPROGRESS):
        sock.close()
        raise OSError(code, os.strerror(code))

    def check(s: socket.socket) -> str | None:
        err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        return None if err == 0 else os.strerror(err)

    return _Attempt(target, sock, check)


def _start_dns(target: FlowTarget, ident: int) -> _Attempt:
    sock = socket.socket(target.family, socket.SOCK_DGRAM)
    sock.setblocking(False)
    _bind(sock, target)
    sock.connect((target.address, target.port))
    sock.send(struct.pack("!H", ident) + _DNS_QUERY_TAIL)

    def check(s: socket.socket) -> str | None:
        try:
            data = s.recv(4096)
        except OSError as exc:  # ICMP port unreachable shows up here
            return exc.strerror or str(exc)
        ok = len(data) >= 2 and struct.unpack("!H", data[:2])[0] == ident
        return None if ok else "answer to another query"

    return _Attempt(target, sock, check, ident)


def _start_icmp(target: FlowTarget, ident: int, seq: int) -> _Attempt:
    v6 = target.family == socket.AF_INET6
    proto = socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP
    # Datagram ICMP sockets need ping_group_range; the agent runs as root: raw is always there.
    sock = socket.socket(target.family, socket.SOCK_RAW, proto)
    sock.setblocking(False)
    _bind(sock, target)
    kind = 128 if v6 else 8
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    payload = b"drill-flow-probe"
    checksum = 0 if v6 else _checksum(header + payload)  # the kernel fills it for ICMPv6
    sock.sendto(struct.pack("!BBHHH", kind, 0, checksum, ident, seq) + payload, (target.address, 0))

    def check(s: socket.socket) -> str | None:
        data = s.recv(4096)
        icmp = data if v6 else data[(data[0] & 0x0F) * 4 :]  # raw v4 includes the IP header
        if len(icmp) < 8:
            return "short answer"
        kind_, _, _, got_id, got_seq = struct.unpack("!BBHHH", icmp[:8])
        if kind_ in (0, 129) and got_id == ident and got_seq == seq:
            return None
        return "" if kind_ in (8, 128) or got_id != ident else f"icmp type {kind_}"

    return _Attempt(target, sock, check, seq)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


class FlowAgent:
    """Runs rounds until ``stop``; emits one :class:`wire.FlowRound` per round."""

    def __init__(self, targets: list[FlowTarget], interval: float, timeout: float) -> None:
        self.targets = targets
        self.interval = interval
        self.timeout = min(timeout, interval)
        self._ident = os.getpid() & 0xFFFF
        self._seq = 0

    def run(self, stop: threading.Event, emit: Callable[[wire.Message], None]) -> None:
        started = time.time()
        emit(wire.Ready(started=started))
        rounds = 0
        next_at = time.monotonic()
        while not stop.is_set():
            emit(self.round())
            rounds += 1
            next_at += self.interval
            stop.wait(max(0.0, next_at - time.monotonic()))
        times = os.times()
        emit(wire.FlowsDone(rounds=rounds, cpu_s=times.user + times.system))

    def round(self) -> wire.FlowRound:
        at = time.time()
        self._seq = (self._seq + 1) & 0xFFFF
        pending: dict[int, _Attempt] = {}
        failed: dict[str, str] = {}
        ok: list[int] = []
        for target in self.targets:
            try:
                attempt = self._start(target)
            except OSError as exc:
                failed[str(target.id)] = exc.strerror or str(exc)
                continue
            pending[attempt.sock.fileno()] = attempt
        deadline = time.monotonic() + self.timeout
        # epoll, registered once per attempt: a round costs O(flows), not O(flows^2)
        with selectors.DefaultSelector() as selector:
            for fd, attempt in pending.items():
                tcp = attempt.target.method == "tcp"
                selector.register(fd, selectors.EVENT_WRITE if tcp else selectors.EVENT_READ)
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                for key, _ in selector.select(left):
                    attempt = pending[key.fd]
                    try:
                        why = attempt.check(attempt.sock)
                    except OSError as exc:
                        why = exc.strerror or str(exc)
                    if why == "":
                        continue  # someone else's ICMP on the raw socket: keep waiting
                    selector.unregister(key.fd)
                    del pending[key.fd]
                    attempt.sock.close()
                    if why is None:
                        ok.append(attempt.target.id)
                    else:
                        failed[str(attempt.target.id)] = why
        for attempt in pending.values():
            attempt.sock.close()
            failed[str(attempt.target.id)] = "timed out"
        return wire.FlowRound(t=at, ok=sorted(ok), failed=failed)

    def _start(self, target: FlowTarget) -> _Attempt:
        if target.method == "tcp":
            return _start_tcp(target)
        if target.method == "dns":
            return _start_dns(target, (self._ident + target.id * 7919 + self._seq) & 0xFFFF)
        return _start_icmp(target, (self._ident + target.id) & 0xFFFF, self._seq)
