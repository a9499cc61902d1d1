"""The lab as one object: ``up`` (idempotent, converged or cleaned up), ``down``, ``exec``.

Used by ``drill lab ...`` and by the test fixture ``lab`` in tests/conftest.py.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import subprocess
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from drill.errors import DrillError, LabError
from drill.lab import exporters, health, hostprep, netns
from drill.lab.conflicts import check_no_clash, check_same_lab
from drill.lab.inventory import try_write_inventory
from drill.lab.node import LAB_PASSWORD, LAB_USER, NodeRuntime
from drill.lab.plan import LabPlan, derive_plan
from drill.lab.privileges import require_root
from drill.lab.sh import run
from drill.lab.state import LabState, lab_lock, load_state, save_state
from drill.lab.topology import Topology, load_topology

log = logging.getLogger(__name__)

UP_TIMEOUT = 30.0


@dataclass(frozen=True)
class UpResult:
    already_up: bool
    seconds: float
    inventory: Path | None = None  # the generated nornir inventory (clab-<name>/inventory)


class Lab:
    """A topology file and what the built-in backend makes of it."""

    def __init__(self, path: Path | str) -> None:
        # Every lab operation runs sbin tools by name (ip, nft, sysctl in exec: lines).
        hostprep.ensure_sbin_on_path()
        self.topology: Topology = load_topology(Path(path))
        self.plan: LabPlan = derive_plan(self.topology)

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def path(self) -> Path:
        """The lab directory (where the topology file lives)."""
        return self.topology.directory

    @property
    def inventory_dir(self) -> Path:
        """The lab's nornir SimpleInventory (hosts.yaml, groups.yaml, defaults.yaml)."""
        return self.topology.directory / "inventory"

    @property
    def known_hosts(self) -> Path:
        return self.plan.known_hosts

    def runtime(self, node: str) -> NodeRuntime:
        return NodeRuntime(self.plan, self.plan.node(node))

    def digest(self) -> str:
        """Changes whenever the topology or any file it binds changes: then up rebuilds."""
        h = hashlib.sha256(self.topology.path.read_bytes())
        for node in self.topology.nodes.values():
            for bind in node.binds:
                if bind.source.is_file():
                    h.update(bind.source.read_bytes())
            h.update((node.startup_config or "").encode())
        return h.hexdigest()

    # --- up -----------------------------------------------------------------------------

    def up(self, timeout: float = UP_TIMEOUT) -> UpResult:
        require_root("drill lab up")
        started = time.monotonic()
        with lab_lock(self.plan):
            check_same_lab(self.plan, load_state(self.plan), self.digest())
            if self._is_up_and_current():
                inventory = try_write_inventory(self.plan, LAB_USER, LAB_PASSWORD)
                return UpResult(True, time.monotonic() - started, inventory)
            check_no_clash(self.plan, load_state(self.plan), self.digest())
            self._teardown(load_state(self.plan))
            try:
                self._build()
                health.wait_converged(self.plan, max(1.0, timeout - (time.monotonic() - started)))
            except BaseException as exc:
                # Ctrl-C too: a half-made lab is never left behind by `up`.
                log.debug("lab up failed, cleaning up", exc_info=True)
                self._teardown(load_state(self.plan))
                if isinstance(exc, DrillError | OSError):
                    raise LabError(f"lab {self.name} up failed: {exc}") from exc
                raise
            state = load_state(self.plan)
            if state is not None:
                state.converged = True
                save_state(self.plan, state)
            inventory = try_write_inventory(self.plan, LAB_USER, LAB_PASSWORD)
        return UpResult(False, time.monotonic() - started, inventory)

    def _is_up_and_current(self) -> bool:
        state = load_state(self.plan)
        if state is None or not state.converged or state.digest != self.digest():
            return False
        if any(
            self.runtime(n).holder_pid() is None
            for n in self.plan.nodes
            if not self.plan.nodes[n].is_bridge
        ):
            return False
        if state.faults:
            # Faults are deliberate: the lab is up as far as `up` is concerned.
            return True
        left = health.problems(self.plan, health.read_lab(self.plan))
        if left:
            log.info("lab %s is up but not healthy (%s): rebuilding", self.name, left[0])
        return not left

    def _build(self) -> None:
        plan = self.plan
        state = LabState(
            name=plan.name,
            topology=str(plan.topology_path),
            digest=self.digest(),
            netns=plan.netns_names,
            host_ifaces=netns.host_ifaces(plan),
        )
        plan.run_dir.mkdir(parents=True, exist_ok=True)
        save_state(plan, state)
        hostprep.ensure_runtime_dirs()
        netns.create_namespaces(plan)
        netns.create_mgmt(plan)
        netns.create_links(plan)
        self._run_bridge_exec()
        shadow_hash = run(
            ["openssl", "passwd", "-6", "-stdin"], input_text=LAB_PASSWORD
        ).stdout.strip()
        runtimes = [self.runtime(n) for n, p in plan.nodes.items() if not p.is_bridge]
        with ThreadPoolExecutor(max_workers=max(1, len(runtimes))) as pool:
            list(pool.map(lambda rt: rt.prepare_files(shadow_hash), runtimes))
            pids = list(pool.map(lambda rt: rt.start_holder(), runtimes))
            state.holders = {rt.node.name: pid for rt, pid in zip(runtimes, pids, strict=True)}
            save_state(plan, state)
            list(pool.map(_start_node, runtimes, pids))
        exporters.start(plan)  # flow exporters named by the topology's labels, if any
        plan.known_hosts.write_text(
            "".join(rt.host_key_line() + "\n" for rt in runtimes if rt.node.mgmt is not None)
        )

    def _run_bridge_exec(self) -> None:
        """``exec:`` lines of ``kind: bridge`` nodes, in the bridge's namespace, before any node
        starts (e.g. ``bridge link set dev PORT learning off``): the L2 behaviour is in place
        before the first frame."""
        for node in self.plan.nodes.values():
            if node.is_bridge and node.exec:
                self.plan.node_dir(node.name).mkdir(parents=True, exist_ok=True)
                NodeRuntime(self.plan, node).run_exec_lines(0)

    # --- down ---------------------------------------------------------------------------

    def down(self) -> None:
        """Take the lab down; returns once every process it had is gone (bounded wait)."""
        require_root("drill lab down")
        with lab_lock(self.plan):
            left = self._teardown(load_state(self.plan))
        if left:
            raise LabError(
                f"lab {self.name} is down but {len(left)} of its processes did not exit "
                f"even after SIGKILL (pids {', '.join(map(str, left))})"
            )

    def _teardown(self, state: LabState | None) -> list[int]:
        """Remove everything a (possibly half-made) lab has: works from the plan alone too.

        Returns the pids that were still there after the bounded wait (normally none).
        """
        namespaces = sorted(set(self.plan.netns_names) | set(state.netns if state else []))
        ifaces = sorted(set(netns.host_ifaces(self.plan)) | set(state.host_ifaces if state else []))
        exporters.stop(self.plan)
        left = netns.kill_namespace_processes(namespaces)
        netns.delete_namespaces(namespaces)
        netns.delete_host_ifaces(ifaces)
        if self.plan.run_dir.exists():
            shutil.rmtree(self.plan.run_dir)
        return left

    # --- exec ---------------------------------------------------------------------------

    def exec_argv(self, node: str, argv: Sequence[str]) -> list[str]:
        return self.runtime(node).enter_argv(list(argv))

    def exec(
        self, node: str, argv: Sequence[str], *, capture: bool = True, timeout: float | None = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` on ``node`` (its net, mount and UTS namespaces); never raises on exit."""
        require_root("drill lab exec")
        return subprocess.run(
            self.exec_argv(node, argv),
            capture_output=capture,
            text=True,
            timeout=timeout,
            check=False,
        )

    def mgmt_ip(self, node: str) -> str:
        mgmt = self.plan.node(node).mgmt
        if mgmt is None:
            raise LabError(f"node {node} has no management address")
        return str(mgmt.ip)


def _start_node(rt: NodeRuntime, pid: int) -> None:
    rt.isolate_mgmt()
    rt.start_frr(pid)
    rt.run_exec_lines(pid)
    rt.start_sshd(pid)
