"""Read a containerlab topology file (``*.clab.yml``) into a typed model, errors located.

Only the part of containerlab's format the built-in backend realizes is modelled: ``name``,
``mgmt`` (``ipv4-subnet``, ``ipv4-gw``, ``network``), ``topology.defaults|kinds|groups``,
nodes (``kind`` linux or bridge, ``image``, ``mgmt-ipv4``, ``binds``, ``exec``, ``labels``,
``group``) and links (``endpoints: ["a:eth1", "b:eth1"]``). Other keys are kept out of the
model but do not make the file invalid, so files written for containerlab still load.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from drill.errors import Diagnostic, InputError

log = logging.getLogger(__name__)

SUPPORTED_KINDS = ("linux", "bridge")
# Linux interface names: at most 15 bytes, no slash or whitespace.
_IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_NODE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")
_NODE_KEYS = ("kind", "image", "mgmt-ipv4", "binds", "exec", "labels")


@dataclass(frozen=True)
class Bind:
    """A ``binds:`` entry: host file (resolved against the topology dir) onto a node path."""

    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Node:
    name: str
    kind: str
    image: str | None = None
    mgmt_ipv4: ipaddress.IPv4Address | None = None
    binds: tuple[Bind, ...] = ()
    exec: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def bind_for(self, target: str) -> Bind | None:
        """The bind whose target is exactly ``target``, if any."""
        return next((b for b in self.binds if b.target == target), None)


@dataclass(frozen=True)
class Endpoint:
    node: str
    iface: str

    def __str__(self) -> str:
        return f"{self.node}:{self.iface}"


@dataclass(frozen=True)
class Link:
    a: Endpoint
    b: Endpoint
    line: int = 0

    def __str__(self) -> str:
        return f"{self.a} <-> {self.b}"


@dataclass(frozen=True)
class Topology:
    name: str
    path: Path
    mgmt_network: str
    mgmt_subnet: ipaddress.IPv4Network
    mgmt_gateway: ipaddress.IPv4Address
    nodes: dict[str, Node]
    links: tuple[Link, ...]

    @property
    def directory(self) -> Path:
        return self.path.parent

    def links_of(self, node: str) -> Iterator[Link]:
        return (lk for lk in self.links if node in (lk.a.node, lk.b.node))


def resolve_topology_path(path: Path) -> Path:
    """Accept a lab directory (with exactly one ``*.clab.yml``) or the file itself."""
    if path.is_dir():
        found = sorted([*path.glob("*.clab.yml"), *path.glob("*.clab.yaml")])
        if len(found) != 1:
            what = "no" if not found else f"{len(found)}"
            raise InputError(f"{path}: {what} *.clab.yml files in this directory (need one)")
        return found[0]
    if not path.is_file():
        raise InputError(f"{path}: no such topology file or directory")
    return path


class _Reader:
    """Walks the YAML tree, collecting every problem with its position."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Diagnostic] = []

    def error(self, node: Any, key: Any, message: str) -> None:
        line, col = _position(node, key)
        self.problems.append(Diagnostic(str(self.path), line, col, message))

    def mapping(self, parent: Any, key: Any, value: Any, what: str) -> CommentedMap:
        if value is None:
            return CommentedMap()
        if not isinstance(value, CommentedMap):
            self.error(parent, key, f"{what} must be a mapping")
            return CommentedMap()
        return value


def _position(node: Any, key: Any) -> tuple[int, int]:
    """1-based line/column of ``node[key]`` (or of ``node`` itself when key is None)."""
    try:
        if key is not None and isinstance(node, CommentedMap) and key in node:
            line, col = node.lc.value(key)
            return line + 1, col + 1
        if key is not None and isinstance(node, CommentedSeq):
            line, col = node.lc.item(key)
            return line + 1, col + 1
        return node.lc.line + 1, node.lc.col + 1
    except (AttributeError, KeyError, IndexError, TypeError):
        return 1, 1


def load_topology(path: Path) -> Topology:
    """Load and check a topology file; every problem becomes a located diagnostic."""
    path = resolve_topology_path(path).resolve()
    yaml = YAML(typ="rt")
    try:
        doc = yaml.load(path.read_text())
    except MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise InputError([Diagnostic(str(path), line, col, str(exc.problem))]) from exc
    reader = _Reader(path)
    if not isinstance(doc, CommentedMap):
        raise InputError([Diagnostic(str(path), 1, 1, "a topology file is a mapping")])
    topology = _read(reader, doc, path)
    if reader.problems or topology is None:
        raise InputError(reader.problems)
    log.debug(
        "loaded topology %s: %d nodes, %d links", path, len(topology.nodes), len(topology.links)
    )
    return topology


def _read(r: _Reader, doc: CommentedMap, path: Path) -> Topology | None:
    name = doc.get("name")
    if not isinstance(name, str) or not _NODE_NAME.match(name):
        r.error(doc, "name" if "name" in doc else None, "`name` must be a short lowercase name")
        name = "lab"
    subnet, gateway, network = _read_mgmt(r, doc, name)
    topo = r.mapping(doc, "topology", doc.get("topology"), "`topology`")
    raw_nodes = r.mapping(topo, "nodes", topo.get("nodes"), "`topology.nodes`")
    if not raw_nodes:
        r.error(doc, "topology", "`topology.nodes` is empty")
    nodes: dict[str, Node] = {}
    for node_name, raw in raw_nodes.items():
        node = _read_node(r, topo, raw_nodes, str(node_name), raw, path.parent, subnet)
        if node is not None:
            nodes[node.name] = node
    _check_mgmt_unique(r, raw_nodes, nodes, gateway)
    links = _read_links(r, topo, nodes)
    if subnet is None or gateway is None:
        return None
    return Topology(name, path, network, subnet, gateway, nodes, links)


def _read_mgmt(
    r: _Reader, doc: CommentedMap, name: str
) -> tuple[ipaddress.IPv4Network | None, ipaddress.IPv4Address | None, str]:
    mgmt = r.mapping(doc, "mgmt", doc.get("mgmt"), "`mgmt`")
    if "ipv4-subnet" not in mgmt:
        r.error(doc, "mgmt" if "mgmt" in doc else None, "`mgmt.ipv4-subnet` is required")
        return None, None, name
    try:
        subnet = ipaddress.IPv4Network(str(mgmt["ipv4-subnet"]))
    except ValueError as exc:
        r.error(mgmt, "ipv4-subnet", f"bad IPv4 subnet: {exc}")
        return None, None, name
    gateway = next(subnet.hosts())
    if "ipv4-gw" in mgmt:
        try:
            gateway = ipaddress.IPv4Address(str(mgmt["ipv4-gw"]))
        except ValueError as exc:
            r.error(mgmt, "ipv4-gw", f"bad IPv4 address: {exc}")
        if gateway not in subnet:
            r.error(mgmt, "ipv4-gw", f"{gateway} is not in {subnet}")
    return subnet, gateway, str(mgmt.get("network", f"{name}-mgmt"))


def _merged_settings(topo: CommentedMap, raw: CommentedMap) -> dict[str, Any]:
    """containerlab's precedence: defaults < kinds[kind] < groups[group] < node."""
    settings: dict[str, Any] = {}
    defaults = topo.get("defaults")
    if isinstance(defaults, dict):
        settings.update(defaults)
    group = raw.get("group")
    groups = topo.get("groups")
    group_settings = groups.get(group) if isinstance(groups, dict) and group else None
    kind = raw.get("kind") or (group_settings or {}).get("kind") or settings.get("kind")
    kinds = topo.get("kinds")
    if isinstance(kinds, dict) and isinstance(kinds.get(kind), dict):
        settings.update(kinds[kind])
    if isinstance(group_settings, dict):
        settings.update(group_settings)
    settings.update(raw)
    settings["kind"] = kind
    return settings


def _read_node(
    r: _Reader,
    topo: CommentedMap,
    parent: CommentedMap,
    name: str,
    raw: Any,
    base: Path,
    subnet: ipaddress.IPv4Network | None,
) -> Node | None:
    if raw is None:
        raw = CommentedMap()
    if not isinstance(raw, CommentedMap):
        r.error(parent, name, f"node `{name}` must be a mapping")
        return None
    if not _NODE_NAME.match(name):
        r.error(parent, name, f"node name `{name}` must be lowercase letters, digits and dashes")
    s = _merged_settings(topo, raw)
    where = raw if raw else parent
    kind = s.get("kind")
    if kind not in SUPPORTED_KINDS:
        r.error(
            raw if "kind" in raw else parent,
            "kind" if "kind" in raw else name,
            f"node `{name}`: kind `{kind}` is not supported (use {' or '.join(SUPPORTED_KINDS)})",
        )
        return None
    mgmt_ip = None
    if kind != "bridge":
        mgmt_ip = _read_mgmt_ip(r, raw, where, name, s.get("mgmt-ipv4"), subnet)
    binds = tuple(_read_binds(r, raw, name, s.get("binds") or [], base))
    exec_lines = s.get("exec") or []
    if not isinstance(exec_lines, list) or not all(isinstance(x, str) for x in exec_lines):
        r.error(raw, "exec", f"node `{name}`: `exec` must be a list of command strings")
        exec_lines = []
    labels = s.get("labels") or {}
    if not isinstance(labels, dict):
        r.error(raw, "labels", f"node `{name}`: `labels` must be a mapping")
        labels = {}
    line, _ = _position(parent, name)
    return Node(
        name=name,
        kind=str(kind),
        image=str(s["image"]) if s.get("image") else None,
        mgmt_ipv4=mgmt_ip,
        binds=binds,
        exec=tuple(exec_lines),
        labels={str(k): str(v) for k, v in labels.items()},
        line=line,
    )


def _read_mgmt_ip(
    r: _Reader,
    raw: CommentedMap,
    where: Any,
    name: str,
    value: Any,
    subnet: ipaddress.IPv4Network | None,
) -> ipaddress.IPv4Address | None:
    if value is None:
        r.error(
            where, None, f"node `{name}`: `mgmt-ipv4` is required (the lab has fixed addresses)"
        )
        return None
    try:
        address = ipaddress.IPv4Address(str(value))
    except ValueError as exc:
        r.error(raw, "mgmt-ipv4", f"node `{name}`: {exc}")
        return None
    if subnet is not None and address not in subnet:
        r.error(raw, "mgmt-ipv4", f"node `{name}`: {address} is not in the mgmt subnet {subnet}")
    return address


def _read_binds(r: _Reader, raw: CommentedMap, name: str, binds: Any, base: Path) -> Iterator[Bind]:
    if not isinstance(binds, list):
        r.error(raw, "binds", f"node `{name}`: `binds` must be a list of SOURCE:TARGET[:ro]")
        return
    for index, entry in enumerate(binds):
        parts = str(entry).split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1].startswith("/"):
            r.error(binds, index, f"node `{name}`: bind `{entry}` is not SOURCE:/TARGET[:ro]")
            continue
        source = (base / parts[0]).resolve()
        if not source.exists():
            r.error(binds, index, f"node `{name}`: bind source {source} does not exist")
            continue
        yield Bind(source, parts[1], read_only=len(parts) == 3 and parts[2] == "ro")


def _check_mgmt_unique(
    r: _Reader,
    raw_nodes: CommentedMap,
    nodes: dict[str, Node],
    gateway: ipaddress.IPv4Address | None,
) -> None:
    seen: dict[ipaddress.IPv4Address, str] = {}
    for node in nodes.values():
        if node.mgmt_ipv4 is None:
            continue
        raw = raw_nodes.get(node.name)
        # Point at the node's own mgmt-ipv4 when it has one (it may come from a group).
        where, key = (
            (raw, "mgmt-ipv4")
            if isinstance(raw, CommentedMap) and "mgmt-ipv4" in raw
            else (raw_nodes, node.name)
        )
        if node.mgmt_ipv4 == gateway:
            r.error(where, key, f"node `{node.name}`: {node.mgmt_ipv4} is the mgmt gateway")
        elif node.mgmt_ipv4 in seen:
            other = seen[node.mgmt_ipv4]
            r.error(
                where,
                key,
                f"node `{node.name}`: mgmt-ipv4 {node.mgmt_ipv4} is already used by `{other}`",
            )
        seen[node.mgmt_ipv4] = node.name


def _read_links(r: _Reader, topo: CommentedMap, nodes: dict[str, Node]) -> tuple[Link, ...]:
    raw_links = topo.get("links") or []
    if not isinstance(raw_links, list):
        r.error(topo, "links", "`topology.links` must be a list")
        return ()
    links: list[Link] = []
    used: dict[Endpoint, int] = {}
    for index, raw in enumerate(raw_links):
        eps = raw.get("endpoints") if isinstance(raw, dict) else None
        if not isinstance(eps, list) or len(eps) != 2:
            r.error(raw_links, index, 'a link needs `endpoints: ["node:iface", "node:iface"]`')
            continue
        parsed = [_read_endpoint(r, eps, i, nodes, used, index) for i in range(2)]
        a, b = parsed
        if a is None or b is None:
            continue
        if a.node == b.node:
            r.error(eps, 0, f"link {a} <-> {b} connects a node to itself")
            continue
        line, _ = _position(raw_links, index)
        links.append(Link(a, b, line))
    return tuple(links)


def _read_endpoint(
    r: _Reader,
    eps: list[Any],
    i: int,
    nodes: dict[str, Node],
    used: dict[Endpoint, int],
    link_index: int,
) -> Endpoint | None:
    text = str(eps[i])
    node, sep, iface = text.partition(":")
    if not sep or not node or not iface:
        r.error(eps, i, f"endpoint `{text}` is not NODE:IFACE")
        return None
    if node not in nodes:
        r.error(eps, i, f"endpoint `{text}`: no node `{node}` in topology.nodes")
        return None
    if not _IFNAME.match(iface) or iface in ("eth0", "lo"):
        r.error(eps, i, f"endpoint `{text}`: `{iface}` is not a usable interface name")
        return None
    ep = Endpoint(node, iface)
    if ep in used:
        r.error(eps, i, f"endpoint `{text}` is already used by link #{used[ep] + 1}")
        return None
    used[ep] = link_index
    return ep
