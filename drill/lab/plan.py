"""What the built-in backend creates for a topology: namespaces, veths, bridges, addresses.

Derived from the topology alone (no host access), so a unit test can compare it with the file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path

from drill.errors import InputError
from drill.lab.nodefiles import (
    Address,
    Daemon,
    VrrpGroup,
    exec_addresses,
    frr_addresses,
    frr_vrrp_groups,
    parse_daemons,
)
from drill.lab.topology import Bind, Topology

log = logging.getLogger(__name__)

RUN_ROOT = Path("/run/drill/lab")
FRR_ETC = "/etc/frr"
MGMT_IFACE = "eth0"  # as in containerlab: eth0 is the management interface


@dataclass(frozen=True)
class Port:
    """One end of a veth: which node, which namespace, which interface name."""

    node: str
    netns: str
    iface: str

    def __str__(self) -> str:
        return f"{self.node}:{self.iface}"


@dataclass(frozen=True)
class VethPlan:
    a: Port
    b: Port


@dataclass(frozen=True)
class NodePlan:
    name: str
    netns: str
    kind: str  # "linux" or "bridge"
    mgmt: ipaddress.IPv4Interface | None = None
    mgmt_host_iface: str | None = None
    daemons: tuple[Daemon, ...] = ()
    etc_files: tuple[Bind, ...] = ()  # copied into the node's private /etc/frr
    mounts: tuple[Bind, ...] = ()  # other binds: bind-mounted read-only
    addresses: tuple[Address, ...] = ()
    vrrp: tuple[VrrpGroup, ...] = ()
    exec: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    bridge_ports: tuple[str, ...] = ()

    @property
    def runs_frr(self) -> bool:
        return bool(self.daemons)

    @property
    def is_bridge(self) -> bool:
        return self.kind == "bridge"


@dataclass(frozen=True)
class LabPlan:
    name: str
    topology_path: Path
    mgmt_bridge: str
    mgmt_gateway: ipaddress.IPv4Interface
    nodes: dict[str, NodePlan]
    veths: tuple[VethPlan, ...]

    @property
    def run_dir(self) -> Path:
        return RUN_ROOT / self.name

    @property
    def known_hosts(self) -> Path:
        return self.run_dir / "known_hosts"

    def node_dir(self, node: str) -> Path:
        return self.run_dir / node

    def node(self, name: str) -> NodePlan:
        try:
            return self.nodes[name]
        except KeyError:
            known = ", ".join(self.nodes)
            raise InputError(f"no node `{name}` in lab {self.name} (nodes: {known})") from None

    @property
    def netns_names(self) -> list[str]:
        return [n.netns for n in self.nodes.values()]


def host_prefix(lab: str) -> str:
    """Prefix for host-side interface names, short enough for IFNAMSIZ (15).

    >>> host_prefix("two-dc")
    'two-dc'
    >>> len(host_prefix("a-rather-long-lab-name"))
    7
    """
    if len(lab) <= 9:
        return lab
    return "d" + hashlib.sha1(lab.encode()).hexdigest()[:6]


def derive_plan(topology: Topology) -> LabPlan:
    """The namespaces, links and addresses the built-in backend realizes for ``topology``."""
    prefix = host_prefix(topology.name)
    nodes: dict[str, NodePlan] = {}
    for index, node in enumerate(topology.nodes.values()):
        etc_files = tuple(b for b in node.binds if b.target.startswith(FRR_ETC + "/"))
        mounts = tuple(b for b in node.binds if not b.target.startswith(FRR_ETC + "/"))
        daemons_bind = node.bind_for(f"{FRR_ETC}/daemons")
        conf_bind = node.bind_for(f"{FRR_ETC}/frr.conf")
        daemons = parse_daemons(daemons_bind.source.read_text()) if daemons_bind else ()
        conf = conf_bind.source.read_text() if conf_bind else ""
        if node.kind == "bridge" and len(node.name) > 15:
            raise InputError(
                f"{topology.path}:{node.line}:1: error: bridge name `{node.name}` "
                "is longer than 15 characters"
            )
        mgmt = None
        if node.mgmt_ipv4 is not None:
            mgmt = ipaddress.IPv4Interface(f"{node.mgmt_ipv4}/{topology.mgmt_subnet.prefixlen}")
        nodes[node.name] = NodePlan(
            name=node.name,
            netns=f"{topology.name}-{node.name}",
            kind=node.kind,
            mgmt=mgmt,
            mgmt_host_iface=f"{prefix}-m{index}" if mgmt else None,
            daemons=daemons,
            etc_files=etc_files,
            mounts=mounts,
            addresses=tuple(frr_addresses(conf) + exec_addresses(node.exec)),
            vrrp=tuple(frr_vrrp_groups(conf)),
            exec=node.exec,
            labels=dict(node.labels),
            bridge_ports=tuple(
                ep.iface
                for link in topology.links_of(node.name)
                for ep in (link.a, link.b)
                if ep.node == node.name
            )
            if node.kind == "bridge"
            else (),
        )
    veths = tuple(
        VethPlan(
            Port(lk.a.node, nodes[lk.a.node].netns, lk.a.iface),
            Port(lk.b.node, nodes[lk.b.node].netns, lk.b.iface),
        )
        for lk in topology.links
    )
    gateway = ipaddress.IPv4Interface(f"{topology.mgmt_gateway}/{topology.mgmt_subnet.prefixlen}")
    plan = LabPlan(
        name=topology.name,
        topology_path=topology.path,
        mgmt_bridge=f"{prefix}-mgmt",
        mgmt_gateway=gateway,
        nodes=nodes,
        veths=veths,
    )
    log.debug("plan for %s: %d namespaces, %d veths", plan.name, len(nodes), len(veths))
    return plan
