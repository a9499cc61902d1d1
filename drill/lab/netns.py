"""The built-in backend's network plumbing: namespaces, veths, bridges, mgmt network.

Batched through ``ip -batch`` per namespace: one process per namespace instead of one per
command keeps ``lab up`` fast on a small machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections import defaultdict
from pathlib import Path

from drill.lab.plan import MGMT_IFACE, LabPlan
from drill.lab.sh import ok, run

log = logging.getLogger(__name__)

NETNS_DIR = Path("/run/netns")


def existing_netns() -> set[str]:
    try:
        return {p.name for p in NETNS_DIR.iterdir()}
    except FileNotFoundError:
        return set()


def link_exists(iface: str, netns: str | None = None) -> bool:
    ns = ["-n", netns] if netns else []
    return ok(["ip", *ns, "link", "show", "dev", iface])


def ip_batch(commands: list[str], netns: str | None = None) -> None:
    if not commands:
        return
    ns = ["-n", netns] if netns else []
    run(["ip", *ns, "-batch", "-"], input_text="\n".join(commands) + "\n")


def create_namespaces(plan: LabPlan) -> None:
    for node in plan.nodes.values():
        run(["ip", "netns", "add", node.netns])
        ip_batch(["link set dev lo up"], node.netns)


def create_mgmt(plan: LabPlan) -> None:
    """Host bridge with the gateway address; one isolated port per node.

    Ports are isolated so nodes reach the host but never each other over management: the
    management network stays a star from the host, never a path between devices.
    """
    host = [
        f"link add name {plan.mgmt_bridge} type bridge",
        f"addr add {plan.mgmt_gateway} dev {plan.mgmt_bridge}",
        f"link set dev {plan.mgmt_bridge} up",
    ]
    per_ns: dict[str, list[str]] = defaultdict(list)
    for node in plan.nodes.values():
        if node.mgmt is None or node.mgmt_host_iface is None:
            continue
        host += [
            f"link add name {node.mgmt_host_iface} type veth peer name {MGMT_IFACE} "
            f"netns {node.netns}",
            f"link set dev {node.mgmt_host_iface} master {plan.mgmt_bridge}",
            f"link set dev {node.mgmt_host_iface} type bridge_slave isolated on",
            f"link set dev {node.mgmt_host_iface} up",
        ]
        per_ns[node.netns] += [
            f"addr add {node.mgmt} dev {MGMT_IFACE}",
            f"link set dev {MGMT_IFACE} up",
        ]
    ip_batch(host)
    for netns, commands in per_ns.items():
        ip_batch(commands, netns)


def create_links(plan: LabPlan) -> None:
    """Veth pairs created directly inside their namespaces, then bridges and their ports."""
    host: list[str] = []
    per_ns: dict[str, list[str]] = defaultdict(list)
    for veth in plan.veths:
        host.append(
            f"link add name {veth.a.iface} netns {veth.a.netns} type veth "
            f"peer name {veth.b.iface} netns {veth.b.netns}"
        )
    ip_batch(host)
    for node in plan.nodes.values():
        if node.is_bridge:
            per_ns[node.netns] += [
                f"link add name {node.name} type bridge",
                f"link set dev {node.name} up",
            ]
            per_ns[node.netns] += [
                f"link set dev {p} master {node.name}" for p in node.bridge_ports
            ]
    for veth in plan.veths:
        for port in (veth.a, veth.b):
            per_ns[port.netns].append(f"link set dev {port.iface} up")
    for netns, commands in per_ns.items():
        ip_batch(commands, netns)


def netns_pids(netns: str) -> list[int]:
    proc = run(["ip", "netns", "pids", netns], check=False)
    return [int(p) for p in proc.stdout.split() if p.isdigit()]


def kill_namespace_processes(namespaces: list[str], grace: float = 3.0) -> None:
    """SIGTERM every process inside the lab's namespaces, SIGKILL what is left after ``grace``."""
    present = existing_netns()
    targets = {pid for ns in namespaces if ns in present for pid in netns_pids(ns)}
    targets.discard(os.getpid())
    for pid in targets:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while targets and time.monotonic() < deadline:
        targets = {pid for pid in targets if _alive(pid)}
        if targets:
            time.sleep(0.05)
    for pid in targets:
        log.debug("pid %d ignored SIGTERM, killing", pid)
        _signal(pid, signal.SIGKILL)


def delete_namespaces(namespaces: list[str]) -> None:
    present = existing_netns()
    for ns in namespaces:
        if ns in present:
            run(["ip", "netns", "delete", ns], check=False)


def delete_host_ifaces(ifaces: list[str]) -> None:
    for iface in ifaces:
        if link_exists(iface):
            run(["ip", "link", "delete", "dev", iface], check=False)


def host_ifaces(plan: LabPlan) -> list[str]:
    return [plan.mgmt_bridge] + [
        n.mgmt_host_iface for n in plan.nodes.values() if n.mgmt_host_iface
    ]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            # A zombie is dead for our purpose: its namespaces are already released.
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
