"""Benchmark: warm `get_bgp_neighbors` round trip of the FRR driver against the lab's dc1-edge.

Run with the lab up, serialized with the other lab users:
    flock /tmp/drill-lab.lock .venv/bin/python benchmarks/driver.py [--calls 300]
Target: median < 30 ms. For scale it also times the two slower ways the driver avoids: one
`vtysh -c` process per show command, and one SSH exec channel per command.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from drill.drivers.frr.driver import FRRDriver

TARGET_MS = 30.0
REPO = Path(__file__).resolve().parents[1]


def _time(call: Callable[[], object], calls: int) -> list[float]:
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def _summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p90 = ordered[int(len(ordered) * 0.9) - 1]
    return (
        f"{name}: median={statistics.median(samples):.2f} ms p90={p90:.2f} ms "
        f"min={ordered[0]:.2f} ms n={len(samples)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="198.18.0.12", help="dc1-edge's management address")
    parser.add_argument("--password", default="drill-lab", help="lab-only password")
    parser.add_argument("--known-hosts", default="/run/drill/lab/two-dc/known_hosts")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    driver = FRRDriver(
        args.host, "root", args.password, optional_args={"known_hosts_file": args.known_hosts}
    )
    driver.open()
    try:
        peers = driver.get_bgp_neighbors()["global"]["peers"]
        print(f"{args.host}: {len(peers)} BGP peers, host key policy {driver.host_key_policy}")
        _time(driver.get_bgp_neighbors, 20)  # warm up
        warm = _time(driver.get_bgp_neighbors, args.calls)
        # what the persistent sessions save (two show commands per getter call)
        per_process = _time(
            lambda: driver._sh("vtysh -c 'show bgp vrf all summary json' >/dev/null"),
            min(args.calls, 50),
        )
        client = driver._require_client()

        def exec_channel() -> None:
            _, stdout, _ = client.exec_command("true")
            stdout.channel.recv_exit_status()

        per_channel = _time(exec_channel, min(args.calls, 50))
    finally:
        driver.close()

    print(_summary("get_bgp_neighbors (warm, 2 vtysh commands)", warm))
    print(_summary("one `vtysh -c` process per show command", per_process))
    print(_summary("one SSH exec channel per command (`true`)", per_channel))
    median = statistics.median(warm)
    verdict = "OK" if median < TARGET_MS else "SLOW"
    print(f"get_bgp_neighbors_median_ms={median:.2f} target<{TARGET_MS:.0f} {verdict}")
    return 0 if median < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
