"""Benchmark: ``drill flows catalog`` over 1,000,000 flow records.

Writes a JSON Lines file of synthetic records (clients in 198.18.128.0/17 calling 8 servers,
half of the clients in no service so unknown endpoints are exercised too, responses as well
as requests) and a services file, then times the real command end to end (process start,
reading and checking every record, longest-prefix matching, aggregation, writing the
catalog). Prints every run and the median, wall time and CPU time: on a shared machine the
wall time says as much about the neighbours as about drill.

    .venv/bin/python benchmarks/flows_catalog.py [--records 1000000] [--runs 3]
Target: under 30 s for 1,000,000 records.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drill.flows.generate import synth_flows
from drill.flows.records import FlowRecord

SERVICES = """\
apiVersion: drill/v1
services:
  - {name: clients-a, site: dc1, dr: deferred, addresses: [198.18.128.0/18]}
  - {name: web, site: [dc1, dc2], dr: required, addresses: [198.19.0.8/29], ports: [443]}
  - {name: web-dc1, site: dc1, dr: required, addresses: [198.19.0.10, 198.19.0.11]}
  - {name: db, site: dc1, dr: required, addresses: [198.19.0.16/28], ports: [5432]}
"""


def write_records(path: Path, count: int) -> None:
    with path.open("w") as out:
        for i, f in enumerate(synth_flows(count // 2, start_ms=1_764_565_200_000)):
            first = "2026-12-01T05:00:00.000Z"
            last = "2026-12-01T05:00:01.000Z"
            request = FlowRecord(f.src, f.dst, f.sport, f.dport, 6, f.packets, f.octets, first,
                                 last, "198.18.0.12", 3, 4)  # fmt: skip
            exporter = "198.18.0.13" if i % 2 else "198.18.0.12"
            response = FlowRecord(f.dst, f.src, f.dport, f.sport, 6, f.packets, f.octets * 3,
                                  first, last, exporter, 4, 3)  # fmt: skip
            out.write(request.to_json() + "\n" + response.to_json() + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as tmp:
        flows, services, out = (
            Path(tmp, "flows.jsonl"),
            Path(tmp, "services.yml"),
            Path(tmp, "c.json"),
        )
        services.write_text(SERVICES)
        write_records(flows, args.records)
        print(f"{args.records} records, {flows.stat().st_size / 1e6:.0f} MB")
        times, cpus = [], []
        for run in range(1, args.runs + 1):
            load = os.getloadavg()[0]
            cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "drill", "flows", "catalog", str(flows), "--services",
                 str(services), "-o", str(out)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            elapsed = time.perf_counter() - started
            cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (
                cpu_before.ru_utime + cpu_before.ru_stime
            )
            cpus.append(cpu)
            if done.returncode != 0:
                sys.exit(f"catalog failed: {done.stderr.strip()}")
            catalog = json.loads(out.read_text())
            assert catalog["source"]["records"] == args.records
            times.append(elapsed)
            print(
                f"run {run}: {elapsed:.1f} s wall, {cpu:.1f} s CPU, load average {load:.1f} "
                f"({args.records / elapsed:,.0f} records/s); "
                f"{len(catalog['flows'])} catalog flows, "
                f"{len(catalog['unknown_endpoints'])} unknown endpoints"
            )
        print(
            f"median: {statistics.median(times):.1f} s wall, {statistics.median(cpus):.1f} s CPU "
            f"for {args.records} records ({os.cpu_count()} CPUs)"
        )


if __name__ == "__main__":
    main()
