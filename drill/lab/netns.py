"""The built-in backend's network plumbing: namespaces, veths, bridges, mgmt network.

Batched through ``ip -batch`` per namespace: one process per namespace instead of one per
command keeps ``lab up`` fast on a small machine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
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


def kill_namespace_processes(
    namespaces: list[str], grace: float = 3.0, reap: float = 5.0, rounds: int = 3
) -> list[int]:
    """End every process inside the lab's namespaces and wait until they are gone.

    SIGTERM, then SIGKILL for what is left after ``grace``, then wait up to ``reap`` more.
    Gone means the whole thread group has exited (a pidfd turns readable), not merely that
    the main thread is a zombie: zebra's main thread exits while its dataplane thread still
    tears down, and a caller that then looks for ``zebra`` must not find it. The namespaces
    are looked at again afterwards (an sshd may have forked a session meanwhile), up to
    ``rounds`` times. Returns the pids still there when the time is up (none, normally).
    """
    survivors: set[int] = set()
    for _ in range(rounds):
        present = existing_netns()
        pids = {pid for ns in namespaces if ns in present for pid in netns_pids(ns)}
        pids -= survivors | {os.getpid()}
        if not pids:
            break
        survivors |= _end(pids, grace, reap)
    return sorted(survivors)


def _end(pids: set[int], grace: float, reap: float) -> set[int]:
    procs = {pid: fd for pid in pids if (fd := _pidfd(pid)) is not None}
    try:
        for fd in procs.values():
            _pidfd_signal(fd, signal.SIGTERM)
        left = _wait_gone(procs, grace)
        for pid in left:
            log.debug("pid %d ignored SIGTERM, killing", pid)
            _pidfd_signal(procs[pid], signal.SIGKILL)
        left = _wait_gone({pid: procs[pid] for pid in left}, reap)
        for pid in left:
            log.warning("pid %d still there %.0f s after SIGKILL", pid, reap)
        return left
    finally:
        for fd in procs.values():
            os.close(fd)


def _pidfd(pid: int) -> int | None:
    """A pidfd for ``pid``: signals and waits then reach that process even if pids wrap."""
    try:
        return os.pidfd_open(pid)
    except ProcessLookupError:
        return None


def _pidfd_signal(fd: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(fd, sig)


def _wait_gone(procs: dict[int, int], timeout: float) -> set[int]:
    """Wait until every process has exited (its pidfd readable); return those that did not."""
    poller = select.poll()
    by_fd = {fd: pid for pid, fd in procs.items()}
    for fd in by_fd:
        poller.register(fd, select.POLLIN)
    left = set(procs)
    deadline = time.monotonic() + timeout
    while left:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        for fd, _ in poller.poll(remaining * 1000):
            poller.unregister(fd)
            left.discard(by_fd[fd])
    return left


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
