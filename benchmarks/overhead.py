"""Orchestration overhead of ``drill run`` against a plain nornir loop on the same work.

1,000 hosts (in-memory inventory), 20 ``check`` steps each calling one getter of a test
driver that waits 50 ms per call, 100 workers, journaling on, console output to a file;
versus 20 plain ``nr.run`` calls of the same getter. Each side runs a few times; medians
and peak memory are printed, then ``overhead_ratio=R`` (drill median / nornir median).
Goal: R <= 1.05.

Run: ``python benchmarks/overhead.py [--hosts N] [--steps N] [--reps N]``
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import statistics
import sys
import tempfile
import time
import tracemalloc
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from napalm.base import NetworkDriver
from nornir.core import Nornir
from nornir.core.configuration import Config
from nornir.core.inventory import ConnectionOptions, Defaults, Groups, Host, Hosts, Inventory
from nornir.core.plugins.connections import ConnectionPluginRegister
from nornir.core.task import Result, Task
from nornir.plugins.runners import ThreadedRunner
from rich.console import Console

from drill.engine.context import RunOptions
from drill.engine.records import Outcome
from drill.engine.runner import Engine, EngineConfig
from drill.report.console import ConsoleObserver
from drill.runbook.model import ConfigStep, Runbook, StepBase
from drill.runbook.templates import Origin

log = logging.getLogger("benchmarks.overhead")
CALL_S = 0.05


class SleepyDriver(NetworkDriver):  # type: ignore[misc]
    """A NAPALM driver whose one getter takes 50 ms, like a fast device."""

    def __init__(self, hostname: str, username: str, password: str, timeout: int = 60,
                 optional_args: dict[str, Any] | None = None) -> None:  # fmt: skip
        self.hostname = hostname

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def get_facts(self) -> dict[str, Any]:
        time.sleep(CALL_S)
        return {"hostname": self.hostname, "uptime": 1.0, "vendor": "bench"}


def install_driver() -> None:
    module = types.ModuleType("napalm_drillbench")
    module.SleepyDriver = SleepyDriver  # type: ignore[attr-defined]
    sys.modules["napalm_drillbench"] = module
    ConnectionPluginRegister.auto_register()


def make_nornir(hosts: int, workers: int) -> Nornir:
    inv = Hosts()
    for i in range(hosts):
        name = f"h{i:04d}"
        inv[name] = Host(name=name, hostname=name, username="u", password="bench-secret",
                         platform="drillbench",
                         connection_options={"napalm": ConnectionOptions()})  # fmt: skip
    inventory = Inventory(hosts=inv, groups=Groups(), defaults=Defaults())
    return Nornir(inventory=inventory, runner=ThreadedRunner(num_workers=workers), config=Config())


@dataclass
class BenchRunbook:
    """The LoadedRunbook surface the engine uses, built in memory."""

    path: Path
    text: str
    model: Runbook
    vars: dict[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()

    def hosts_for(self, step: StepBase) -> list[str]:
        selector = self.model.targets["all"]
        return list(selector.hosts or [])

    def config_source(self, step: ConfigStep) -> tuple[str, Origin]:
        return step.config or "", Origin(str(self.path))


def runbook(hosts: int, steps: int, directory: Path) -> BenchRunbook:
    names = [f"h{i:04d}" for i in range(hosts)]
    data = {
        "apiVersion": "drill/v1",
        "name": "overhead",
        "targets": {"all": {"hosts": names}},
        "steps": [
            {
                "name": f"check {n + 1}",
                "kind": "check",
                "on": "all",
                "getter": "get_facts",
                "assert": [{"path": "hostname", "regex": "^h"}],
            }
            for n in range(steps)
        ],
    }
    model = Runbook.model_validate(data)
    return BenchRunbook(directory / "overhead.yml", "# generated in memory\n", model)


def plain(hosts: int, steps: int, workers: int) -> float:
    nr = make_nornir(hosts, workers)

    def facts(task: Task) -> Result:
        dev = task.host.get_connection("napalm", task.nornir.config)
        return Result(host=task.host, result=dev.get_facts())

    started = time.perf_counter()
    for _ in range(steps):
        nr.run(task=facts)
    return time.perf_counter() - started


def drill(hosts: int, steps: int, workers: int, directory: Path, console: bool = True) -> float:
    nr = make_nornir(hosts, workers)
    book = runbook(hosts, steps, directory)
    with (directory / "console.txt").open("w") as out:
        observers = [ConsoleObserver(Console(file=out, width=120))] if console else []
        engine = Engine(book, nr, RunOptions(), observers=observers,
                        config=EngineConfig(state_base=directory / "state"))  # fmt: skip
        started = time.perf_counter()
        record = engine.run()
        elapsed = time.perf_counter() - started
    if record.outcome is not Outcome.SUCCEEDED:
        raise SystemExit(f"drill run did not succeed: {record.outcome} {record.notes}")
    return elapsed


def measured(fn: Any, *args: Any) -> tuple[float, int]:
    tracemalloc.start()
    try:
        elapsed = fn(*args)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return elapsed, peak


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--memory", action="store_true", help="trace peak memory (slower)")
    parser.add_argument(
        "--no-console", action="store_true", help="diagnosis: drill without console output"
    )
    args = parser.parse_args()
    install_driver()
    bound = args.steps * -(-args.hosts // args.workers) * CALL_S
    print(f"{args.hosts} hosts x {args.steps} steps, {args.workers} workers, "
          f"{CALL_S * 1000:.0f} ms per call; latency bound {bound:.2f} s")  # fmt: skip
    times: dict[str, list[float]] = {"nornir": [], "drill": []}
    peaks: dict[str, int] = {"nornir": 0, "drill": 0}
    with tempfile.TemporaryDirectory(prefix="drill-bench-") as tmp:
        for rep in range(args.reps):
            # Alternate the order so warm-up and drift hit both sides alike.
            order = ("nornir", "drill") if rep % 2 == 0 else ("drill", "nornir")
            for side in order:
                work = Path(tmp) / f"{side}-{rep}"
                work.mkdir()
                if side == "nornir":
                    call: tuple[Any, ...] = (plain, args.hosts, args.steps, args.workers)
                else:
                    call = (drill, args.hosts, args.steps, args.workers, work, not args.no_console)
                if args.memory:
                    elapsed, peak = measured(*call)
                    peaks[side] = max(peaks[side], peak)
                else:
                    elapsed = call[0](*call[1:])
                times[side].append(elapsed)
                print(f"rep {rep + 1} {side:<6} {elapsed:7.3f} s", flush=True)
    medians = {side: statistics.median(values) for side, values in times.items()}
    for side in ("nornir", "drill"):
        peak = f", peak traced memory {peaks[side] / 2**20:.1f} MiB" if args.memory else ""
        print(f"{side:<6} median {medians[side]:.3f} s ({medians[side] / bound:.3f}x bound){peak}")
    import resource

    print(f"process max RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.1f} MiB")
    print(f"overhead_ratio={medians['drill'] / medians['nornir']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
