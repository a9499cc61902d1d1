"""Benchmark: report.html for a 60 s drill with two packet probes at 1,000/s.

    .venv/bin/python benchmarks/report_html.py [--rounds 7] [--seconds 60] [--rate 1000]

A synthetic recorded run (drill.report.html_example: report.json and 2 x 6,000 bins of
10 ms) is rendered in a fresh Python process each round, as a drill's process does at its
end: ``render`` is the time of ``write_html`` in that process, matplotlib's import included
(drill imports it only when it draws); ``cli`` is the wall time of the whole
``drill report DIR --html -o FILE`` command, interpreter start-up included. Target: the
median render under 2 s, the file under 2 MB. No lab needed. The render's CPU time is printed
too: on a loaded machine the wall time measures the neighbours as much as drill.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from drill.report.html_example import synthetic_run

TARGET_S = 2.0
LIMIT_BYTES = 2_000_000

_RENDER = """
import sys, time
from pathlib import Path
from drill.report.html_source import report_data, write_html
run = Path(sys.argv[1])
data, source = report_data(run)
start, cpu = time.perf_counter(), time.process_time()
write_html(data, run, [Path(sys.argv[2])], source=source)
print(time.perf_counter() - start, time.process_time() - cpu)
"""


def _render(run_dir: Path, out: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one render in a fresh process."""
    done = subprocess.run(
        [sys.executable, "-c", _RENDER, str(run_dir), str(out)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    wall, cpu = done.stdout.split()
    return float(wall), float(cpu)


def _cli(run_dir: Path, out: Path) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "drill", "report", str(run_dir), "--html", "-o", str(out)],
        capture_output=True, check=True,
    )  # fmt: skip
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run_dir, out = Path(tmp) / "run", Path(tmp) / "report.html"
        synthetic_run(run_dir, seconds=args.seconds, rate=args.rate)
        samples = [_render(run_dir, out) for _ in range(args.rounds)]
        cli = [_cli(run_dir, out) for _ in range(args.rounds)]
        size = out.stat().st_size
    wall = [w for w, _ in samples]
    cpu = [c for _, c in samples]
    median = statistics.median(wall)
    print(
        f"report.html, {args.seconds:g} s drill, 2 probes at {args.rate:g}/s (n={args.rounds}, "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):\n"
        f"  render wall median {median:.2f} s (min {min(wall):.2f}, max {max(wall):.2f})\n"
        f"  render CPU  median {statistics.median(cpu):.2f} s (min {min(cpu):.2f}, "
        f"max {max(cpu):.2f})\n"
        f"  drill report --html, whole command, wall median {statistics.median(cli):.2f} s\n"
        f"  file {size / 1e6:.2f} MB"
    )
    ok = median < TARGET_S and size < LIMIT_BYTES
    print("target (render wall < 2 s, file < 2 MB):", "met" if ok else "MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
