"""Collect NetFlow v9 / IPFIX for a window with nfcapd, read it back with nfdump.

nfcapd (Debian's nfdump 1.7) writes nfcapd.* files into a private temporary directory; it is
started and stopped by pid (SIGTERM makes it flush and close the current file), and the
directory is removed whatever happens.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import IO

from drill.errors import DrillError, InputError
from drill.flows.nfdump import json_records
from drill.flows.records import FlowRecord, write_jsonl

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "0.0.0.0:2055"
SOCKET_BUFFER = 16 * 1024 * 1024  # -B: bursts from many exporters must not overflow the socket
_STATS = re.compile(
    r"Flows: (?P<flows>\d+), Packets: (?P<packets>\d+), Bytes: (?P<bytes>\d+), "
    r"Sequence Errors: (?P<seq>\d+), Bad Packets: (?P<bad>\d+)"
)


class CollectorError(DrillError):
    """nfcapd or nfdump failed (port in use, not installed, died)."""


@dataclass(frozen=True)
class Listen:
    host: str
    port: int

    @property
    def ipv6(self) -> bool:
        return ":" in self.host


@dataclass(frozen=True)
class CollectorStats:
    """What nfcapd says it received, as it prints on exit."""

    flows: int = 0
    packets: int = 0
    bytes: int = 0
    sequence_errors: int = 0
    bad_packets: int = 0


@dataclass(frozen=True)
class RecordResult:
    records: int
    stats: CollectorStats
    exporters: tuple[str, ...]


def udp_backlog(port: int) -> int:
    """Bytes queued on UDP sockets bound to ``port`` in this network namespace."""
    total = 0
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 4 and int(fields[1].rsplit(":", 1)[1], 16) == port:
                total += int(fields[4].split(":")[1], 16)
    return total


def parse_listen(text: str) -> Listen:
    """``ADDR:PORT`` (``[v6]:PORT`` for IPv6).

    >>> parse_listen("0.0.0.0:2055")
    Listen(host='0.0.0.0', port=2055)
    >>> parse_listen("[::1]:9995")
    Listen(host='::1', port=9995)
    """
    match = re.fullmatch(
        r"\[(?P<v6>[0-9A-Fa-f:.]+)\]:(?P<p6>\d{1,5})|(?P<v4>[\d.]+):(?P<p4>\d{1,5})", text.strip()
    )
    if match is None:
        raise InputError(f"error: --listen {text!r}: expected ADDR:PORT, e.g. 0.0.0.0:2055")
    host = match.group("v6") or match.group("v4")
    port = int(match.group("p6") or match.group("p4"))
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InputError(f"error: --listen {text!r}: {host!r} is not an IP address") from None
    if not 1 <= port <= 65535:
        raise InputError(f"error: --listen {text!r}: port must be 1-65535")
    return Listen(host, port)


def nfcapd_argv(listen: Listen, directory: Path) -> list[str]:
    argv = ["nfcapd", "-w", str(directory), "-b", listen.host, "-p", str(listen.port)]
    argv += ["-t", "3600", "-B", str(SOCKET_BUFFER), "-P", str(directory.parent / "nfcapd.pid")]
    return argv + (["-6"] if listen.ipv6 else [])


class Collector:
    """One nfcapd for one window: ``start()``, ``stop()``, then ``records()``."""

    def __init__(self, listen: Listen) -> None:
        self.listen = listen
        self.workdir = Path(tempfile.mkdtemp(prefix="drill-flows-"))
        self.directory = self.workdir / "nfcapd"  # only nfcapd.* files: nfdump -R reads all
        self.directory.mkdir()
        self._log: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.stats = CollectorStats()

    def __enter__(self) -> Collector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self, settle: float = 0.3) -> None:
        self._log = open(self.workdir / "nfcapd.log", "w+b")  # noqa: SIM115 - closed in close()
        try:
            self._proc = subprocess.Popen(
                nfcapd_argv(self.listen, self.directory),
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                start_new_session=True,  # Ctrl-C reaches drill, which stops nfcapd in order
            )
        except FileNotFoundError:
            raise CollectorError("error: nfcapd is not installed (Debian package nfdump)") from None
        deadline = time.monotonic() + 5.0
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise CollectorError(f"error: nfcapd exited at start: {self._last_line()}")
            if b"Startup" in self._read_log():
                time.sleep(settle)
                if self._proc.poll() is None:
                    return
                raise CollectorError(f"error: nfcapd exited at start: {self._last_line()}")
            time.sleep(0.02)
        raise CollectorError("error: nfcapd did not start within 5 s")

    @property
    def pid(self) -> int:
        return self._proc.pid if self._proc is not None else 0

    def stop(self, timeout: float = 10.0) -> CollectorStats:
        """SIGTERM by pid: nfcapd flushes its buffers and closes the file, then exits."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return self.stats
        self._drain()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("nfcapd pid %d ignored SIGTERM for %g s: killing it", proc.pid, timeout)
            proc.kill()
            proc.wait(5)
        found = _STATS.search(self._read_log().decode(errors="replace"))
        if found:
            self.stats = CollectorStats(
                *(int(found.group(k)) for k in ("flows", "packets", "bytes", "seq", "bad"))
            )
        return self.stats

    def _drain(self, timeout: float = 2.0) -> None:
        """Wait until nfcapd has read what the kernel queued for it: on SIGTERM it stops
        reading, and datagrams still in the socket buffer would be lost."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and udp_backlog(self.listen.port) > 0:
            time.sleep(0.01)
        time.sleep(0.05)  # the datagram read last is still being decoded

    def records(self) -> Iterator[FlowRecord]:
        """Every flow nfcapd stored, normalized; times in UTC."""
        files = sorted(self.directory.glob("nfcapd.[0-9]*"))
        if not files:
            return
        env = {**os.environ, "TZ": "UTC", "LC_ALL": "C"}
        argv = ["nfdump", "-R", str(self.directory), "-o", "json", "-N"]
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            try:
                proc = subprocess.run(
                    argv, stdout=out, stderr=err, env=env, check=False, timeout=600
                )
            except FileNotFoundError:
                raise CollectorError("error: nfdump is not installed") from None
            if proc.returncode != 0:
                err.seek(0)
                raise CollectorError(f"error: nfdump failed: {err.read().strip()[-300:]}")
            out.seek(0)
            yield from json_records(out, "nfdump output", UTC)

    def close(self) -> None:
        self.stop()
        if self._log is not None:
            self._log.close()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _read_log(self) -> bytes:
        return (self.workdir / "nfcapd.log").read_bytes()

    def _last_line(self) -> str:
        lines = self._read_log().decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(no output)"


def record(
    listen: Listen,
    seconds: float,
    out: IO[str],
    on_start: Callable[[int], None] | None = None,
) -> RecordResult:
    """Collect for ``seconds`` (Ctrl-C ends the window early), write JSON Lines to ``out``."""
    with Collector(listen) as collector:
        collector.start()
        if on_start is not None:
            on_start(collector.pid)
        log.info("nfcapd pid %d listening on %s:%d", collector.pid, listen.host, listen.port)
        with contextlib.suppress(KeyboardInterrupt):
            time.sleep(seconds)
        stats = collector.stop()
        exporters: set[str] = set()

        def tracked() -> Iterator[FlowRecord]:
            for rec in collector.records():
                if rec.exporter:
                    exporters.add(rec.exporter)
                yield rec

        count = write_jsonl(tracked(), out)
    return RecordResult(count, stats, tuple(sorted(exporters)))
