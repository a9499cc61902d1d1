"""Synthetic IPFIX and NetFlow v9 export packets, for benchmarks and collector tests.

Each packet carries its template first, so a collector that starts late (or restarts) can
decode every packet. Records are IPv4 with ports, counters, times and interfaces.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

TEMPLATE_ID = 256
RECORDS_PER_PACKET = 24  # 24 x 53 bytes + headers stays under a 1,500-byte MTU

# (IPFIX information element id, length): src, dst, sport, dport, proto, packets, bytes,
# flowStartMilliseconds, flowEndMilliseconds, ingressInterface, egressInterface.
_IPFIX_FIELDS = (
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (2, 8),
    (1, 8),
    (152, 8),
    (153, 8),
    (10, 4),
    (14, 4),
)
_IPFIX_RECORD = struct.Struct("!4s4sHHBQQQQII")
# NetFlow v9: the same, with 4-byte counters and FIRST/LAST_SWITCHED in sysUptime ms.
_V9_FIELDS = (
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (2, 4),
    (1, 4),
    (22, 4),
    (21, 4),
    (10, 4),
    (14, 4),
)
_V9_RECORD = struct.Struct("!4s4sHHBIIIIII")


@dataclass(frozen=True)
class SynthFlow:
    src: str
    dst: str
    sport: int
    dport: int
    proto: int
    packets: int
    octets: int
    start_ms: int  # Unix epoch milliseconds
    end_ms: int
    in_if: int = 1
    out_if: int = 2


def synth_flows(count: int, start_ms: int | None = None) -> Iterator[SynthFlow]:
    """``count`` distinct flows between documentation addresses, HTTPS-like.

    >>> f = next(synth_flows(1, start_ms=1000))
    >>> (f.src, f.dst, f.dport, f.proto)
    ('198.18.128.0', '198.19.0.10', 443, 6)
    """
    base = int(time.time() * 1000) if start_ms is None else start_ms
    src0 = int(ipaddress.IPv4Address("198.18.128.0"))
    for i in range(count):
        yield SynthFlow(
            src=str(ipaddress.IPv4Address(src0 + i % 32768)),
            dst=f"198.19.0.{10 + i % 8}",
            sport=1024 + i % 60000,
            dport=443,
            proto=6,
            packets=1 + i % 50,
            octets=64 * (1 + i % 50),
            start_ms=base,
            end_ms=base + 1000,
        )


def _template(fields: tuple[tuple[int, int], ...], set_id: int) -> bytes:
    body = struct.pack("!HH", TEMPLATE_ID, len(fields)) + b"".join(
        struct.pack("!HH", fid, flen) for fid, flen in fields
    )
    return struct.pack("!HH", set_id, 4 + len(body)) + body


def _pad(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def ipfix_packet(flows: list[SynthFlow], sequence: int, domain: int = 1) -> bytes:
    """One IPFIX message: template set + data set; ``sequence`` counts data records sent."""
    rows = b"".join(
        _IPFIX_RECORD.pack(
            socket.inet_aton(f.src),
            socket.inet_aton(f.dst),
            f.sport,
            f.dport,
            f.proto,
            f.packets,
            f.octets,
            f.start_ms,
            f.end_ms,
            f.in_if,
            f.out_if,
        )
        for f in flows
    )
    data = _pad(struct.pack("!HH", TEMPLATE_ID, 0) + rows)
    data = struct.pack("!HH", TEMPLATE_ID, len(data)) + data[4:]
    body = _template(_IPFIX_FIELDS, 2) + data
    header = struct.pack("!HHIII", 10, 16 + len(body), int(time.time()), sequence, domain)
    return header + body


def v9_packet(flows: list[SynthFlow], sequence: int, boot_ms: int, source_id: int = 1) -> bytes:
    """One NetFlow v9 packet; ``sequence`` counts packets; times relative to ``boot_ms``."""
    now_ms = int(time.time() * 1000)
    rows = b"".join(
        _V9_RECORD.pack(
            socket.inet_aton(f.src),
            socket.inet_aton(f.dst),
            f.sport,
            f.dport,
            f.proto,
            f.packets,
            f.octets,
            max(0, f.start_ms - boot_ms),
            max(0, f.end_ms - boot_ms),
            f.in_if,
            f.out_if,
        )
        for f in flows
    )
    data = _pad(struct.pack("!HH", TEMPLATE_ID, 0) + rows)
    data = struct.pack("!HH", TEMPLATE_ID, len(data)) + data[4:]
    body = _template(_V9_FIELDS, 0) + data
    header = struct.pack(
        "!HHIIII", 9, 1 + len(flows), now_ms - boot_ms, now_ms // 1000, sequence, source_id
    )
    return header + body


def packets(flows: list[SynthFlow], version: int) -> Iterator[bytes]:
    """The flows as export packets of ``version`` (9 or 10), RECORDS_PER_PACKET each."""
    boot_ms = int(time.time() * 1000) - 3_600_000
    sent = 0
    for n, i in enumerate(range(0, len(flows), RECORDS_PER_PACKET)):
        chunk = flows[i : i + RECORDS_PER_PACKET]
        if version == 10:
            yield ipfix_packet(chunk, sent)
        else:
            yield v9_packet(chunk, n, boot_ms)
        sent += len(chunk)
