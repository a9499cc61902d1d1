"""Benchmark: what the isolation rehearsal's generated flow probes cost, in CPU seconds per
minute of isolation, for N flows (default 100) at the default interval (1 s).

The probes run as drill runs them (drill.probes.flow_running.FlowProbes: one agent process
per vantage point, here this host), against real sockets on the loopback: half the flows to
listening TCP ports (they answer), a quarter to a closed port (refused at once), a quarter
to 192.0.2.1, which nothing here routes (each attempt waits for its whole timeout, the case
of a site that is cut off). CPU is the agent's own (user + system, from the kernel), start-up
included, plus the orchestrator's reading of the agents' lines (this process's CPU).

    .venv/bin/python benchmarks/isolation_probes.py [--flows 100] [--seconds 60] [--runs 3]

Goal: at most 1 CPU-second per minute of isolation for 100 flows.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drill.probes.flow_running import FlowProbes


def targets(flows: int, ports: list[int], closed: int) -> list[list[object]]:
    items: list[list[object]] = []
    for ident in range(flows):
        if ident % 4 in (0, 1):
            items.append([ident, "tcp", "127.0.0.1", "127.0.0.1", ports[ident % len(ports)]])
        elif ident % 4 == 2:
            items.append([ident, "tcp", None, "127.0.0.1", closed])
        else:
            items.append([ident, "tcp", None, "192.0.2.1", 8300])
    return items


def one_run(flows: int, seconds: float, interval: float) -> tuple[float, int]:
    listeners = [socket.create_server(("127.0.0.1", 0), backlog=1024) for _ in range(4)]
    ports = [s.getsockname()[1] for s in listeners]
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    probes = FlowProbes(
        {"local": targets(flows, ports, closed.getsockname()[1])}, interval, min(1.0, interval)
    )
    before = os.times()
    probes.start()
    try:
        time.sleep(seconds)
    finally:
        agent_cpu = probes.stop()
        for s in [*listeners, closed]:
            s.close()
    after = os.times()
    own = (after.user - before.user) + (after.system - before.system)
    attempts = sum(len(v) for v in probes.attempts().values())
    return agent_cpu + own, attempts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    per_minute: list[float] = []
    for number in range(1, args.runs + 1):
        cpu, attempts = one_run(args.flows, args.seconds, args.interval)
        rate = cpu * 60.0 / args.seconds
        per_minute.append(rate)
        print(
            f"run {number}: {args.flows} flows for {args.seconds:g}s: {attempts} attempts, "
            f"{cpu:.2f} CPU-s = {rate:.2f} CPU-s per minute",
            flush=True,
        )
    load = os.getloadavg()[0]
    print(
        f"median {statistics.median(per_minute):.2f} CPU-s per minute of isolation for "
        f"{args.flows} flows (min {min(per_minute):.2f}, max {max(per_minute):.2f}; "
        f"load {load:.1f}); goal <= 1.0"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
