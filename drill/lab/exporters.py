"""Flow exporters in the lab: one ``softflowd`` per exported interface, sending NetFlow v9 or
IPFIX to the host's side of the lab's management network on UDP 2055.

Which interfaces export is data, not code: a node label ``drill.flow-export: eth1,eth2`` (for
a bridge node: some of its ports), with ``drill.flow-export-version: 9|10`` (default 10, IPFIX).
A bridge node has no management port, so it gets an export-only one on the management bridge
(address from ``drill.flow-export-addr`` or the top of the management subnet).
Processes are started and stopped by pid (recorded in the lab's run dir).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from drill.errors import InputError, LabError
from drill.lab.plan import LabPlan, NodePlan, host_prefix
from drill.lab.sh import run

log = logging.getLogger(__name__)

COLLECTOR_PORT = 2055
TEMPLATE_REFRESH = 5  # seconds between template resends (see _start_template_refresh)
LABEL_IFACES = "drill.flow-export"
LABEL_VERSION = "drill.flow-export-version"
LABEL_ADDR = "drill.flow-export-addr"
EXPORT_IFACE = "flowx0"  # the export-only port a bridge namespace gets
NFT_EXPORT_PORT = """\
table inet drill_flowx {{
  chain input {{
    type filter hook input priority 0; policy accept;
    iifname "{iface}" drop
  }}
}}
"""
# Short timeouts (seconds) so a finished flow reaches the collector within a few seconds and
# a long one is reported every ``maxlife`` seconds: a drill records for tens of seconds, not days.
TIMEOUTS = {
    "maxlife": 10,
    "expint": 1,
    "general": 5,
    "tcp": 5,
    "tcp.rst": 2,
    "tcp.fin": 2,
    "udp": 5,
    "icmp": 5,
}


@dataclass(frozen=True)
class ExportPoint:
    node: str
    netns: str
    iface: str
    version: int  # 9 = NetFlow v9, 10 = IPFIX


@dataclass(frozen=True)
class Running:
    node: str
    iface: str
    pid: int
    comm: str = "softflowd"  # what /proc/PID/comm must say before drill signals the pid


def export_points(plan: LabPlan) -> list[ExportPoint]:
    """The interfaces the topology's labels ask to export, checked against the plan."""
    points: list[ExportPoint] = []
    for node in plan.nodes.values():
        raw = node.labels.get(LABEL_IFACES, "").strip()
        if not raw:
            continue
        known = set(_ifaces(plan, node))
        version = _version(plan, node)
        for iface in (i.strip() for i in raw.split(",")):
            if iface not in known:
                raise InputError(
                    f"{plan.topology_path}: error: node {node.name}: {LABEL_IFACES} names "
                    f"`{iface}`, not one of its interfaces ({', '.join(sorted(known))})"
                )
            points.append(ExportPoint(node.name, node.netns, iface, version))
    return points


def _ifaces(plan: LabPlan, node: NodePlan) -> list[str]:
    if node.is_bridge:
        return list(node.bridge_ports)
    return [p.iface for v in plan.veths for p in (v.a, v.b) if p.node == node.name]


def _version(plan: LabPlan, node: NodePlan) -> int:
    raw = node.labels.get(LABEL_VERSION, "10").strip()
    if raw not in ("9", "10"):
        raise InputError(
            f"{plan.topology_path}: error: node {node.name}: {LABEL_VERSION} must be 9 "
            f"(NetFlow v9) or 10 (IPFIX), not `{raw}`"
        )
    return int(raw)


def collector_address(plan: LabPlan) -> str:
    """Where exporters send: the host's address on the management network, UDP 2055."""
    return f"{plan.mgmt_gateway.ip}:{COLLECTOR_PORT}"


def softflowd_argv(point: ExportPoint, ifindex: int, target: str, files: Path) -> list[str]:
    """The softflowd command line for one interface (foreground, own pid and control file).

    >>> argv = softflowd_argv(ExportPoint("r1", "lab-r1", "eth1", 10), 3, "198.18.0.1:2055",
    ...                       Path("/run/x"))
    >>> argv[:6]
    ['softflowd', '-d', '-i', '3:eth1', '-n', '198.18.0.1:2055']
    """
    stem = files / f"{point.node}-{point.iface}"
    argv = ["softflowd", "-d", "-i", f"{ifindex}:{point.iface}", "-n", target]
    # -A milli: absolute flowStart/EndMilliseconds. With the default uptime-relative times
    # nfdump 1.7.1 shows softflowd's IPFIX first/last swapped (seen on this lab).
    argv += ["-v", str(point.version), "-T", "full", "-6", "-A", "milli"]
    argv += ["-p", f"{stem}.pid", "-c", f"{stem}.ctl"]
    for name, seconds in TIMEOUTS.items():
        argv += ["-t", f"{name}={seconds}"]
    return argv


def exporters_dir(plan: LabPlan) -> Path:
    return plan.run_dir / "flow-exporters"


def start(plan: LabPlan) -> list[Running]:
    """Start every exporter the labels ask for; record their pids. No labels: nothing."""
    points = export_points(plan)
    if not points:
        return []
    files = exporters_dir(plan)
    files.mkdir(parents=True, exist_ok=True)
    shim = _build_shim(files)
    for index, node in enumerate(n for n in plan.nodes.values() if n.is_bridge):
        if any(p.node == node.name for p in points):
            _add_export_port(plan, node, index)
    target = collector_address(plan)
    env = {**os.environ, "LD_PRELOAD": str(shim)}
    running: list[Running] = []
    try:
        for point in points:
            ifindex = _ifindex(point)
            argv = [
                "ip",
                "netns",
                "exec",
                point.netns,
                *softflowd_argv(point, ifindex, target, files),
            ]
            with open(files / f"{point.node}-{point.iface}.log", "ab") as out:
                # `ip netns exec` execs softflowd in place: the pid is softflowd's own.
                proc = subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    env=env,
                    start_new_session=True,
                )
            running.append(Running(point.node, point.iface, proc.pid))
            _save(plan, running)
        _wait_started(files, points, running)
        running.append(_start_template_refresh(files))
        _save(plan, running)
    except BaseException:
        stop(plan)
        raise
    log.info("lab %s: %d flow exporters sending to %s", plan.name, len(running), target)
    return running


def stop(plan: LabPlan, grace: float = 3.0) -> None:
    """Stop the recorded exporters by pid; a pid that is no longer what drill started is left
    alone. The template refresher is its own process group (its pid): its `sleep` goes too."""
    record = exporters_dir(plan) / "pids.json"
    try:
        entries = [Running(**e) for e in json.loads(record.read_text())]
    except (FileNotFoundError, ValueError, TypeError):
        return
    pids = {e.pid for e in entries if _comm(e.pid) == e.comm}
    groups = {e.pid for e in entries if e.pid in pids and e.comm == "sh"}
    for pid in pids:
        _signal(pid, signal.SIGTERM)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if _reap(pid)}
        if pids:
            time.sleep(0.05)
    for pid in pids:
        _signal(pid, signal.SIGKILL)
    record.unlink(missing_ok=True)


def _start_template_refresh(files: Path) -> Running:
    """softflowd resends its templates only every 16 export packets; a collector started
    later (``drill flows record``) drops data until it has them. Routers resend by time;
    this asks every exporter to do so every TEMPLATE_REFRESH seconds."""
    script = (
        f'while :; do for c in "{files}"/*.ctl; do softflowctl -c "$c" send-template '
        f">/dev/null 2>&1; done; sleep {TEMPLATE_REFRESH}; done"
    )
    proc = subprocess.Popen(
        ["sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return Running("lab", "template-refresh", proc.pid, comm="sh")


def _save(plan: LabPlan, running: list[Running]) -> None:
    (exporters_dir(plan) / "pids.json").write_text(json.dumps([asdict(r) for r in running]))


def _build_shim(files: Path) -> Path:
    """Compile the immediate-mode shim once per lab run (see data/pcap_immediate.c)."""
    source = resources.files("drill.lab").joinpath("data/pcap_immediate.c").read_text()
    src, out = files / "pcap_immediate.c", files / "pcap_immediate.so"
    src.write_text(source)
    run(["cc", "-O2", "-shared", "-fPIC", "-o", str(out), str(src)], timeout=60)
    return out


def _add_export_port(plan: LabPlan, node: NodePlan, index: int) -> None:
    """An export-only veth from a bridge's namespace onto the management bridge."""
    address = _export_address(plan, node)
    host = f"{host_prefix(plan.name)}-x{index}"
    run(
        [
            "ip",
            "link",
            "add",
            "name",
            host,
            "type",
            "veth",
            "peer",
            "name",
            EXPORT_IFACE,
            "netns",
            node.netns,
        ]
    )
    run(["ip", "link", "set", "dev", host, "master", plan.mgmt_bridge])
    run(["ip", "link", "set", "dev", host, "type", "bridge_slave", "isolated", "on"])
    run(["ip", "link", "set", "dev", host, "up"])
    prefix = plan.mgmt_gateway.network.prefixlen
    run(["ip", "-n", node.netns, "addr", "add", f"{address}/{prefix}", "dev", EXPORT_IFACE])
    run(["ip", "-n", node.netns, "link", "set", "dev", EXPORT_IFACE, "up"])
    # The port only sends: nothing may reach the bridge's namespace through it.
    rules = NFT_EXPORT_PORT.format(iface=EXPORT_IFACE)
    run(["ip", "netns", "exec", node.netns, "nft", "-f", "-"], input_text=rules)


def _export_address(plan: LabPlan, node: NodePlan) -> ipaddress.IPv4Address:
    subnet = plan.mgmt_gateway.network
    raw = node.labels.get(LABEL_ADDR)
    if raw:
        try:
            address = ipaddress.IPv4Address(raw.strip())
        except ValueError:
            address = None
        if address is None or address not in subnet:
            raise InputError(
                f"{plan.topology_path}: error: node {node.name}: {LABEL_ADDR} `{raw}` is not "
                f"an address in the management subnet {subnet}"
            )
        return address
    used = {plan.mgmt_gateway.ip} | {n.mgmt.ip for n in plan.nodes.values() if n.mgmt}
    used |= {
        ipaddress.IPv4Address(n.labels[LABEL_ADDR].strip())
        for n in plan.nodes.values()
        if n.labels.get(LABEL_ADDR) and n.name != node.name
    }
    bridges = [n.name for n in plan.nodes.values() if n.is_bridge]
    free = [a for a in reversed(list(subnet.hosts())) if a not in used]
    return free[bridges.index(node.name)]


def _ifindex(point: ExportPoint) -> int:
    proc = run(["ip", "-n", point.netns, "-j", "link", "show", "dev", point.iface])
    try:
        return int(json.loads(proc.stdout)[0]["ifindex"])
    except (ValueError, LookupError, TypeError) as exc:
        raise LabError(f"no ifindex for {point.node}:{point.iface}") from exc


def _wait_started(
    files: Path, points: list[ExportPoint], running: list[Running], timeout: float = 5.0
) -> None:
    """Each softflowd is up once its control socket exists; a dead one fails ``lab up``."""
    deadline = time.monotonic() + timeout
    pending = list(zip(points, running, strict=True))
    while pending:
        for point, proc in list(pending):
            if (files / f"{point.node}-{point.iface}.ctl").exists():
                pending.remove((point, proc))
            elif not _reap(proc.pid):
                log_file = files / f"{point.node}-{point.iface}.log"
                tail = log_file.read_text(errors="replace").strip().splitlines()[-1:]
                raise LabError(
                    f"softflowd on {point.node}:{point.iface} exited: {' '.join(tail) or '?'}"
                )
        if pending and time.monotonic() > deadline:
            names = ", ".join(f"{p.node}:{p.iface}" for p, _ in pending)
            raise LabError(f"softflowd did not start on {names} within {timeout:g} s")
        time.sleep(0.05)


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _reap(pid: int) -> bool:
    """True while ``pid`` lives; collects it if it is our exited child."""
    with contextlib.suppress(ChildProcessError, OSError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
