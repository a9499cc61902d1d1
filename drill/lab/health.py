"""Read a running lab's protocol state and decide whether it has converged.

Converged means: every BGP session Established, every BFD peer up, each VRRP group mastered
by its highest-priority member (backups elsewhere), every sshd answering, and each node's
``drill.probe-http`` label answered with ``drill.probe-expect``.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from drill.errors import LabError
from drill.lab.node import NodeRuntime
from drill.lab.plan import LabPlan
from drill.lab.sh import run

log = logging.getLogger(__name__)

HTTP_GET = (
    "import sys, urllib.request\n"
    "sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=1).read().decode())\n"
)


@dataclass
class VrrpState:
    iface: str
    vrid: int
    state: str
    priority: int
    addresses: list[str]


@dataclass
class NodeHealth:
    node: str
    running: bool = False
    sshd: bool = False
    daemons: dict[str, bool] = field(default_factory=dict)
    bgp: dict[str, str] = field(default_factory=dict)  # peer -> state
    bfd: dict[str, str] = field(default_factory=dict)  # peer -> status
    vrrp: list[VrrpState] = field(default_factory=list)
    http: dict[str, str] = field(default_factory=dict)  # url -> body or error
    errors: list[str] = field(default_factory=list)


def vtysh_json(rt: NodeRuntime, pid: int, command: str) -> Any:
    proc = run(rt.enter_argv(["vtysh", "-c", command], pid), check=False, timeout=10)
    if proc.returncode != 0:
        raise LabError(f"node {rt.node.name}: `{command}` failed: {proc.stderr.strip()}")
    try:
        return json.loads(proc.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise LabError(f"node {rt.node.name}: `{command}` gave no JSON") from exc


def daemon_alive(rt: NodeRuntime, name: str) -> bool:
    try:
        pid = int((rt.dir / "run" / f"{name}.pid").read_text())
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip() == name
    except (FileNotFoundError, ValueError):
        return False


def read_node(rt: NodeRuntime) -> NodeHealth:
    """One node's state; problems reading it are recorded, never raised."""
    health = NodeHealth(rt.node.name)
    if rt.node.is_bridge:
        health.running = rt.node.netns in _netns_now()
        return health
    pid = rt.holder_pid()
    if pid is None:
        return health
    health.running = True
    health.sshd = rt.sshd_ready()
    health.daemons = {d.name: daemon_alive(rt, d.name) for d in rt.node.daemons}
    try:
        _read_protocols(rt, pid, health)
        _read_http(rt, pid, health)
    except LabError as exc:
        health.errors.append(str(exc))
    return health


def _read_protocols(rt: NodeRuntime, pid: int, health: NodeHealth) -> None:
    names = {d.name for d in rt.node.daemons}
    if "bgpd" in names:
        summary = vtysh_json(rt, pid, "show bgp summary json")
        for peer, info in summary.get("ipv4Unicast", {}).get("peers", {}).items():
            health.bgp[peer] = str(info.get("state", "?"))
    if "bfdd" in names:
        for peer in vtysh_json(rt, pid, "show bfd peers json") or []:
            health.bfd[str(peer.get("peer"))] = str(peer.get("status", "?"))
    if "vrrpd" in names:
        for vr in vtysh_json(rt, pid, "show vrrp json") or []:
            v4 = vr.get("v4", {})
            health.vrrp.append(
                VrrpState(
                    iface=str(vr.get("interface")),
                    vrid=int(vr.get("vrid", 0)),
                    state=str(v4.get("status", "?")),
                    priority=int(vr.get("priority", 0)),
                    addresses=[str(a) for a in v4.get("addresses", [])],
                )
            )


def _read_http(rt: NodeRuntime, pid: int, health: NodeHealth) -> None:
    url = rt.node.labels.get("drill.probe-http")
    if not url:
        return
    proc = run(rt.enter_argv(["python3", "-c", HTTP_GET, url], pid), check=False, timeout=5)
    if proc.returncode == 0:
        health.http[url] = proc.stdout.strip()
    else:
        lines = proc.stderr.strip().splitlines()
        health.http[url] = f"error: {lines[-1] if lines else proc.returncode}"


def _netns_now() -> set[str]:
    from drill.lab.netns import existing_netns

    return existing_netns()


def read_lab(plan: LabPlan) -> dict[str, NodeHealth]:
    runtimes = [NodeRuntime(plan, n) for n in plan.nodes.values()]
    with ThreadPoolExecutor(max_workers=len(runtimes)) as pool:
        return {h.node: h for h in pool.map(read_node, runtimes)}


def problems(plan: LabPlan, lab: dict[str, NodeHealth]) -> list[str]:
    """Everything that keeps the lab from being converged; empty when it is."""
    found: list[str] = []
    for name, health in lab.items():
        node = plan.nodes[name]
        if not health.running:
            found.append(f"{name}: not running")
            continue
        found += health.errors
        found += [f"{name}: {d} is not running" for d, up in health.daemons.items() if not up]
        if node.mgmt is not None and not health.sshd:
            found.append(f"{name}: sshd not answering on {node.mgmt.ip}")
        found += [
            f"{name}: BGP peer {p} is {s}" for p, s in health.bgp.items() if s != "Established"
        ]
        if node.expects_bgp_peers and not health.bgp:
            found.append(f"{name}: no BGP peers yet")
        found += [f"{name}: BFD peer {p} is {s}" for p, s in health.bfd.items() if s != "up"]
        expect = node.labels.get("drill.probe-expect")
        for url, body in health.http.items():
            if expect is not None and body != expect:
                found.append(f"{name}: {url} answered {body!r}, expected {expect!r}")
    found += _vrrp_problems(plan, lab)
    return found


def intended_vrrp_masters(plan: LabPlan) -> dict[tuple[int, tuple[str, ...]], str]:
    """(vrid, VIPs) -> the node whose configured priority is highest (ties: no expectation)."""
    members: dict[tuple[int, tuple[str, ...]], list[tuple[int, str]]] = {}
    for node in plan.nodes.values():
        for group in node.vrrp:
            key = (group.vrid, tuple(sorted(str(a) for a in group.addresses)))
            members.setdefault(key, []).append((group.priority, node.name))
    masters = {}
    for key, prios in members.items():
        prios.sort(reverse=True)
        if len(prios) == 1 or prios[0][0] > prios[1][0]:
            masters[key] = prios[0][1]
    return masters


def _vrrp_problems(plan: LabPlan, lab: dict[str, NodeHealth]) -> list[str]:
    found = []
    for (vrid, vips), master in intended_vrrp_masters(plan).items():
        for node in plan.nodes.values():
            if not any(g.vrid == vrid for g in node.vrrp) or not lab[node.name].running:
                continue
            states = [v.state for v in lab[node.name].vrrp if v.vrid == vrid]
            want = "Master" if node.name == master else "Backup"
            if states != [want]:
                got = states[0] if states else "absent"
                found.append(f"{node.name}: VRRP {vrid} ({', '.join(vips)}) is {got}, want {want}")
    return found


def wait_converged(plan: LabPlan, timeout: float) -> None:
    """Poll until converged; on timeout raise with what was still wrong."""
    deadline = time.monotonic() + timeout
    while True:
        left = problems(plan, read_lab(plan))
        if not left:
            return
        if time.monotonic() > deadline:
            more = f" (and {len(left) - 1} more)" if len(left) > 1 else ""
            raise LabError(f"not converged after {timeout:g} s: {left[0]}{more}")
        log.debug("waiting for convergence: %s", "; ".join(left))
        time.sleep(0.2)
