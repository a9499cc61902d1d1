"""What the built-in backend creates for a topology: namespaces, veths, bridges, addresses.

Derived from the topology alone (no host access), so a unit test can compare it with the file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from drill.errors import InputError
from drill.lab.nodefiles import (
    DEFAULT_FRR_CONF,
    Address,
    Daemon,
    VrrpGroup,
    exec_addresses,
    frr_addresses,
    frr_vrrp_groups,
    parse_daemons,
    render_daemons,
)
from drill.lab.topology import Bind, Node, Topology

log = logging.getLogger(__name__)

RUN_ROOT = Path("/run/drill/lab")
FRR_ETC = "/etc/frr"
MGMT_IFACE = "eth0"  # as in containerlab: eth0 is the management interface
# containerlab's frr kind: FRR programs routes, the kernel forwards only if asked to.
_ROUTER_BGP = re.compile(r"^router bgp\b", re.MULTILINE)
FRR_KIND_SYSCTLS = {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}


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
    kind: str  # "linux", "bridge" or "frr"
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
    etc_texts: tuple[tuple[str, str], ...] = ()  # (file under /etc/frr, content), generated
    sysctls: tuple[tuple[str, str], ...] = ()  # set before the exec lines run
    env: tuple[tuple[str, str], ...] = ()  # environment of the exec lines
    group: str | None = None
    bgp_configured: bool = False  # frr.conf has a `router bgp`

    @property
    def runs_frr(self) -> bool:
        return bool(self.daemons)

    @property
    def expects_bgp_peers(self) -> bool:
        """bgpd runs with a BGP config (containerlab's default starts bgpd without one)."""
        return self.bgp_configured and any(d.name == "bgpd" for d in self.daemons)

    @property
    def startup_commands(self) -> tuple[str, ...]:
        """What runs in the node once FRR is up: its sysctls, then its ``exec:`` lines."""
        return tuple(f"sysctl -q -w {k}={v}" for k, v in self.sysctls) + self.exec

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

    @property
    def lab_dir(self) -> Path:
        """``clab-<name>/`` beside the topology file, as containerlab names its lab directory."""
        return self.topology_path.parent / f"clab-{self.name}"

    @property
    def inventory_dir(self) -> Path:
        """Where ``lab up`` writes the generated nornir SimpleInventory."""
        return self.lab_dir / "inventory"

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


def mgmt_bridge_name(topology: Topology) -> str:
    """The host bridge of the lab's management network, named after the lab.

    Not after ``mgmt.network``: containerlab lets labs that name the same network share it
    (its default ``clab`` is shared by all), and a copied lab keeps its original's network
    name. A bridge per lab name keeps two labs from ever reusing each other's bridge.
    """
    return f"{host_prefix(topology.name)}-mgmt"


def _frr_files(node: Node) -> tuple[tuple[tuple[str, str], ...], str, tuple[Daemon, ...]]:
    """Generated /etc/frr files, the effective frr.conf, and the daemons to start."""
    daemons_bind = node.bind_for(f"{FRR_ETC}/daemons")
    conf_bind = node.bind_for(f"{FRR_ETC}/frr.conf")
    texts: list[tuple[str, str]] = []
    conf = ""
    daemons_text = ""
    if node.kind == "frr":
        conf = node.startup_config if node.startup_config is not None else DEFAULT_FRR_CONF
        daemons_text = render_daemons(node.frr_daemons)
        texts = [("frr.conf", conf), ("daemons", daemons_text)]
    # A bind onto /etc/frr/... wins over the generated file, as its mount would in Docker.
    if conf_bind:
        conf = conf_bind.source.read_text()
    if daemons_bind:
        daemons_text = daemons_bind.source.read_text()
    return tuple(texts), conf, parse_daemons(daemons_text) if daemons_text else ()


def _node_plan(topology: Topology, node: Node, index: int, prefix: str) -> NodePlan:
    etc_files = tuple(b for b in node.binds if b.target.startswith(FRR_ETC + "/"))
    mounts = tuple(b for b in node.binds if not b.target.startswith(FRR_ETC + "/"))
    etc_texts, conf, daemons = _frr_files(node)
    if node.kind == "bridge" and len(node.name) > 15:
        raise InputError(
            f"{topology.path}:{node.line}:1: error: bridge name `{node.name}` "
            "is longer than 15 characters"
        )
    mgmt = None
    if node.mgmt_ipv4 is not None:
        mgmt = ipaddress.IPv4Interface(f"{node.mgmt_ipv4}/{topology.mgmt_subnet.prefixlen}")
    sysctls = {**(FRR_KIND_SYSCTLS if node.kind == "frr" else {}), **node.sysctls}
    return NodePlan(
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
        etc_texts=etc_texts,
        sysctls=tuple(sysctls.items()) if node.kind != "bridge" else (),
        env=tuple(node.env.items()),
        group=node.group,
        bgp_configured=bool(_ROUTER_BGP.search(conf)),
    )


def derive_plan(topology: Topology) -> LabPlan:
    """The namespaces, links and addresses the built-in backend realizes for ``topology``."""
    prefix = host_prefix(topology.name)
    nodes = {
        node.name: _node_plan(topology, node, index, prefix)
        for index, node in enumerate(topology.nodes.values())
    }
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
        mgmt_bridge=mgmt_bridge_name(topology),
        mgmt_gateway=gateway,
        nodes=nodes,
        veths=veths,
    )
    log.debug("plan for %s: %d namespaces, %d veths", plan.name, len(nodes), len(veths))
    return plan
