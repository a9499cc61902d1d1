"""Benchmark: `drill lab up` from nothing to converged, median of N cycles (down in between).

Run as root, serialized with the other lab users:
    flock /tmp/drill-lab.lock .venv/bin/python benchmarks/lab.py [--cycles 5] [LAB_DIR]
    .venv/bin/python benchmarks/lab.py --target 30 labs/payment-dr    # its own lab, no lock
Target: median < 20 s (two-dc; --target for another lab). Converged = every BGP session
Established, BFD up, VRRP masters as intended, every node's drill.probe-http answered as
expected (what `drill lab up` waits for).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from drill.lab.lab import Lab

TARGET_S = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "lab", nargs="?", default=str(Path(__file__).parents[1] / "labs" / "two-dc")
    )
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--target", type=float, default=TARGET_S, help="seconds (median)")
    args = parser.parse_args()
    lab = Lab(args.lab)
    times: list[float] = []
    lab.down()
    for cycle in range(1, args.cycles + 1):
        started = time.monotonic()
        result = lab.up()
        elapsed = time.monotonic() - started
        assert not result.already_up
        times.append(elapsed)
        print(f"cycle {cycle}: up to converged in {elapsed:.2f} s", flush=True)
        down_started = time.monotonic()
        lab.down()
        print(f"cycle {cycle}: down in {time.monotonic() - down_started:.2f} s", flush=True)
    median = statistics.median(times)
    print(
        f"lab up (to converged): median {median:.2f} s, min {min(times):.2f} s, "
        f"max {max(times):.2f} s over {len(times)} cycles; target < {args.target:g} s: "
        f"{'met' if median < args.target else 'MISSED'}"
    )
    return 0 if median < args.target else 1


if __name__ == "__main__":
    sys.exit(main())
