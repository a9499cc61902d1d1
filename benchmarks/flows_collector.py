"""Benchmark: the collector path (nfcapd -> nfdump -> normalized records) under load.

Sends generated IPFIX and NetFlow v9 export packets over UDP to 127.0.0.1 at a fixed record
rate (24 records per packet, templates in every packet), then counts records in vs out:
nfcapd's own count and the records ``drill flows record`` would write. Prints every run and
the medians.

    .venv/bin/python benchmarks/flows_collector.py [--rate 10000] [--seconds 5] [--runs 5]
Target: at least 10,000 records/s with no record lost.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time

from drill.flows.collector import Collector, parse_listen
from drill.flows.generate import RECORDS_PER_PACKET, packets, synth_flows


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_run(rate: int, seconds: float, version: int) -> tuple[int, int, int, float, float]:
    """(sent, nfcapd counted, records read back, achieved send rate, read-back seconds)."""
    total = int(rate * seconds)
    payloads = list(packets(list(synth_flows(total)), version))
    port = free_port()
    interval = RECORDS_PER_PACKET / rate
    with (
        Collector(parse_listen(f"127.0.0.1:{port}")) as collector,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx,
    ):
        collector.start()
        started = time.perf_counter()
        for i, payload in enumerate(payloads):
            # paced: packet i leaves at its slot, so the rate is the rate asked for
            delay = started + i * interval - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            tx.sendto(payload, ("127.0.0.1", port))
        sent_for = time.perf_counter() - started
        stats = collector.stop()
        read_started = time.perf_counter()
        out = sum(1 for _ in collector.records())
        read_for = time.perf_counter() - read_started
    return total, stats.flows, out, total / sent_for, read_for


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=10_000, help="records per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for version, name in ((10, "IPFIX"), (9, "NetFlow v9")):
        rows = []
        for run in range(1, args.runs + 1):
            sent, counted, out, achieved, read_for = one_run(args.rate, args.seconds, version)
            rows.append((sent, counted, out, achieved, read_for))
            print(
                f"{name} run {run}: sent {sent} records at {achieved:,.0f}/s; nfcapd counted "
                f"{counted}, read back {out} (lost {sent - out}); nfdump read-back {read_for:.2f} s"
            )
        med = [statistics.median(col) for col in zip(*rows, strict=True)]
        print(
            f"{name} median: sent {med[0]:.0f} at {med[3]:,.0f} records/s, read back {med[2]:.0f}, "
            f"lost {med[0] - med[2]:.0f}; read-back {med[4]:.2f} s "
            f"({med[2] / med[4]:,.0f} records/s)"
        )


if __name__ == "__main__":
    main()
