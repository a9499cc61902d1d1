"""Probe benchmark (root): achieved send rate, agent CPU, and gap accuracy against tcpdump.

    .venv/bin/python benchmarks/probes.py [--seconds 10] [--cuts 10]

Runs on two namespaces of its own (the lab test's helpers), never on the shared lab.
Prints one JSON document.
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

from drill.probes import start_probe
from drill.runbook.model import PacketProbe

ROOT = Path(__file__).resolve().parent.parent


def _lab_helpers() -> ModuleType:
    # The namespace pair, capture and pcap reader are the lab test's; share, don't copy.
    path = ROOT / "tests" / "lab" / "test_probes.py"
    spec = importlib.util.spec_from_file_location("probe_lab_helpers", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


lab = _lab_helpers()


def _spec(ns: str, rate: int) -> PacketProbe:
    return PacketProbe.model_validate(
        {
            "name": "bench",
            "kind": "packet",
            "target": lab.B_ADDR,
            "rate": rate,
            "from": f"netns:{ns}",
        }
    )


def rate_and_cpu(pair: Any, rate: int, seconds: float, workdir: Path) -> dict[str, Any]:
    pcap = workdir / f"rate-{rate}.pcap"
    capture = lab.Capture(pair.a, "va", pcap, f"icmp and host {lab.B_ADDR}")
    try:
        with start_probe(_spec(pair.a, rate)) as probe:
            time.sleep(seconds)
            result = probe.stop()
            agent = probe.agent_result
    finally:
        capture.stop()
    assert agent is not None
    duration = agent.stopped - agent.started
    sends = sorted(lab.read_echo_pcap(pcap, lab.A_ADDR).requests.values())
    spacing_us = [(b - a) * 1e6 for a, b in itertools.pairwise(sends)]
    quantiles = statistics.quantiles(spacing_us, n=100)
    return {
        "rate": rate,
        "seconds": round(duration, 3),
        "sent": result.sent,
        "achieved_rate": round(result.sent / duration, 1),
        "lost": result.lost,
        "skipped_slots": agent.skipped,
        "agent_cpu_s": round(agent.cpu_s, 3),
        # the agent's CPU includes its ~1 s grace wait and Python start-up, so per wall second
        # of sending this slightly overstates the steady cost
        "agent_cpu_percent_of_one_core": round(100 * agent.cpu_s / duration, 1),
        "send_spacing_us": {
            "p50": round(quantiles[49], 1),
            "p99": round(quantiles[98], 1),
            "max": round(max(spacing_us), 1),
        },
    }


def gap_accuracy(pair: Any, rate: int, cuts: int, workdir: Path) -> dict[str, Any]:
    interval = 1.0 / rate
    rows = []
    for i in range(cuts):
        blackout = 0.1 + 0.4 * i / max(1, cuts - 1)
        pcap = workdir / f"gap-{i}.pcap"
        capture = lab.Capture(pair.a, "va", pcap, f"icmp and host {lab.B_ADDR}")
        try:
            with start_probe(_spec(pair.a, rate)) as probe:
                time.sleep(0.5)
                lab.interrupt(pair, "icmp type echo-request", blackout)
                time.sleep(0.5)
                result = probe.stop()
        finally:
            capture.stop()
        trace = lab.read_echo_pcap(pcap, lab.A_ADDR)
        captured = lab.capture_max_gap_ms(trace, interval)
        rows.append(
            {
                "blackhole_ms": round(blackout * 1000),
                "probe_gap_ms": result.max_gap_ms,
                "capture_gap_ms": round(captured, 3),
                "diff_ms": round(result.max_gap_ms - captured, 3),
                "probe_lost": result.lost,
                "capture_lost": len(set(trace.requests) - trace.replies),
            }
        )
    diffs = [abs(r["diff_ms"]) for r in rows]
    return {
        "rate": rate,
        "interval_ms": interval * 1000,
        "max_abs_diff_ms": max(diffs),
        "mean_abs_diff_ms": round(statistics.mean(diffs), 4),
        "lost_counts_equal": all(r["probe_lost"] == r["capture_lost"] for r in rows),
        "runs": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cuts", type=int, default=10)
    args = parser.parse_args()
    pair = lab.NetPair.create(f"bench{os.getpid()}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            report = {
                "send": [rate_and_cpu(pair, r, args.seconds, work) for r in (1000, 5000)],
                "gap_accuracy": gap_accuracy(pair, 1000, args.cuts, work),
            }
    finally:
        pair.destroy()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
