"""Read a containerlab topology file (``*.clab.yml``) into a typed model, errors located.

Modelled: ``name``; ``mgmt`` (``network``, ``ipv4-subnet``, ``ipv4-gw``, ``ipv4-range``);
``topology.defaults|kinds|groups`` with containerlab's inheritance (see inherit.py);
nodes of kind ``linux``, ``bridge`` and ``frr``/``frrouting`` with ``group``,
``startup-config`` (a path relative to the file, or inline text), ``extras.frr.daemons``,
``mgmt-ipv4`` (automatic when absent), ``binds``, ``exec``, ``env``, ``labels``, ``sysctls``;
links as ``endpoints: ["a:eth1", "b:eth1"]`` or the extended ``type: veth`` form. Other keys
(``image``, ``prefix``, ``ports``, ...) are accepted and ignored, so files written for
containerlab load unchanged. A kind the backend cannot emulate is one error for that node;
links naming a refused node add no further errors.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from drill.errors import Diagnostic, InputError
from drill.lab.inherit import Layers, dedup, node_layers
from drill.lab.mgmt import auto_addresses, default_subnet
from drill.lab.nodefiles import (
    CLAB_ALWAYS_ON_DAEMONS,
    CLAB_CONFIGURABLE_DAEMONS,
    FRR_PACKAGE_DAEMONS,
)

log = logging.getLogger(__name__)

# kind as written -> the kind the backend realizes.
KIND_ALIASES = {"linux": "linux", "bridge": "bridge", "frr": "frr", "frrouting": "frr"}
SUPPORTED_KINDS_TEXT = "linux, bridge, frr (or frrouting)"
# Linux interface names: at most 15 bytes, no slash or whitespace.
IFNAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
# containerlab allows [a-zA-Z0-9][a-zA-Z0-9-._|]*; `|` (a bridge in another node's
# namespace) has no meaning here, and names become namespace and file names.
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_LAB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_MAGIC_NODE = "__clabNodeName__"
_MAGIC_LAB = "__clabLabName__"


@dataclass(frozen=True)
class Bind:
    """A ``binds:`` entry: host file (resolved against the topology dir) onto a node path."""

    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class Node:
    name: str
    kind: str  # "linux", "bridge" or "frr" (frrouting is read as frr)
    image: str | None = None
    mgmt_ipv4: ipaddress.IPv4Address | None = None
    binds: tuple[Bind, ...] = ()
    exec: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    line: int = 0
    group: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)
    startup_config: str | None = None  # frr.conf text (frr kind), from a file or inline
    startup_config_file: Path | None = None
    frr_daemons: tuple[str, ...] = ()  # extras.frr.daemons; empty means containerlab's "all"
    mgmt_auto: bool = False  # mgmt_ipv4 assigned from the subnet, not written in the file

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


@dataclass(frozen=True)
class _Mgmt:
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    pool: ipaddress.IPv4Network
    network: str


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
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the topology: {exc}") from exc
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
    if not isinstance(name, str) or not _LAB_NAME.match(name):
        r.error(
            doc,
            "name" if "name" in doc else None,
            "`name` must be a short name (letters, digits, `-`, `_`, `.`)",
        )
        name = "lab"
    mgmt = _read_mgmt(r, doc, name)
    topo = r.mapping(doc, "topology", doc.get("topology"), "`topology`")
    for level in ("defaults", "kinds", "groups"):
        r.mapping(topo, level, topo.get(level), f"`topology.{level}`")
    raw_nodes = r.mapping(topo, "nodes", topo.get("nodes"), "`topology.nodes`")
    if not raw_nodes:
        r.error(doc, "topology", "`topology.nodes` is empty")
    nodes: dict[str, Node] = {}
    refused: set[str] = set()
    ctx = _NodeContext(r, topo, raw_nodes, path.parent, name, mgmt)
    for node_name, raw in raw_nodes.items():
        node = ctx.read(str(node_name), raw)
        if node is None:
            refused.add(str(node_name))
        else:
            nodes[node.name] = node
    if mgmt is not None:
        nodes = _assign_mgmt(r, raw_nodes, nodes, mgmt)
    links = _read_links(r, topo, nodes, refused)
    if mgmt is None:
        return None
    return Topology(name, path, mgmt.network, mgmt.subnet, mgmt.gateway, nodes, links)


def _read_mgmt(r: _Reader, doc: CommentedMap, name: str) -> _Mgmt | None:
    mgmt = r.mapping(doc, "mgmt", doc.get("mgmt"), "`mgmt`")
    raw_subnet = mgmt.get("ipv4-subnet")
    if raw_subnet is None or str(raw_subnet) == "auto":
        subnet = default_subnet(name)
    else:
        try:
            subnet = ipaddress.IPv4Network(str(raw_subnet))
        except ValueError as exc:
            r.error(mgmt, "ipv4-subnet", f"bad IPv4 subnet: {exc}")
            return None
    if subnet.num_addresses < 4:
        r.error(mgmt, "ipv4-subnet", f"{subnet} is too small for a management network")
        return None
    gateway = next(subnet.hosts())
    if "ipv4-gw" in mgmt:
        try:
            gateway = ipaddress.IPv4Address(str(mgmt["ipv4-gw"]))
        except ValueError as exc:
            r.error(mgmt, "ipv4-gw", f"bad IPv4 address: {exc}")
        if gateway not in subnet:
            r.error(mgmt, "ipv4-gw", f"{gateway} is not in {subnet}")
    pool = subnet
    if "ipv4-range" in mgmt:
        try:
            pool = ipaddress.IPv4Network(str(mgmt["ipv4-range"]))
        except ValueError as exc:
            r.error(mgmt, "ipv4-range", f"bad IPv4 range: {exc}")
        if not pool.subnet_of(subnet):
            r.error(mgmt, "ipv4-range", f"{pool} is not inside {subnet}")
            pool = subnet
    network = mgmt.get("network")
    return _Mgmt(subnet, gateway, pool, str(network) if network else f"{name}-mgmt")


class _NodeContext:
    """What every node of one file is read against."""

    def __init__(
        self,
        r: _Reader,
        topo: CommentedMap,
        raw_nodes: CommentedMap,
        base: Path,
        lab: str,
        mgmt: _Mgmt | None,
    ) -> None:
        self.r = r
        self.topo = topo
        self.raw_nodes = raw_nodes
        self.base = base
        self.lab = lab
        self.mgmt = mgmt

    def magic(self, text: str, node: str) -> str:
        """containerlab's magic variables that mean something without Docker."""
        return text.replace(_MAGIC_NODE, node).replace(_MAGIC_LAB, self.lab)

    def read(self, name: str, raw: Any) -> Node | None:
        r = self.r
        if raw is None:
            raw = CommentedMap()
        if not isinstance(raw, CommentedMap):
            r.error(self.raw_nodes, name, f"node `{name}` must be a mapping")
            return None
        if not _NODE_NAME.match(name):
            r.error(
                self.raw_nodes, name, f"node name `{name}` must be letters, digits, `-`, `_`, `.`"
            )
        layers = node_layers(self.topo, raw)
        kind = self._kind(name, raw, layers)
        if kind is None:
            return None
        line, _ = _position(self.raw_nodes, name)
        image, _ = layers.scalar("image")
        startup, startup_file = self._startup_config(name, layers, kind)
        return Node(
            name=name,
            kind=kind,
            image=str(image) if image else None,
            mgmt_ipv4=self._mgmt_ip(name, raw) if kind != "bridge" else None,
            binds=tuple(self._binds(name, layers)),
            exec=tuple(dedup(list(self._exec(name, layers)))),
            labels=self._string_map(name, layers, "labels"),
            line=line,
            group=str(layers.group_name) if layers.group_name is not None else None,
            env=self._string_map(name, layers, "env"),
            sysctls=self._string_map(name, layers, "sysctls"),
            startup_config=startup,
            startup_config_file=startup_file,
            frr_daemons=self._daemons(name, layers) if kind == "frr" else (),
        )

    def _kind(self, name: str, raw: CommentedMap, layers: Layers) -> str | None:
        r = self.r
        group = raw.get("group")
        groups = self.topo.get("groups")
        if group is not None and not (
            isinstance(group, str) and isinstance(groups, dict) and group in groups
        ):
            r.error(raw, "group", f"node `{name}`: no group `{group}` in topology.groups")
            return None
        kind = layers.kind_name
        where, key = (raw, "kind") if "kind" in raw else (self.raw_nodes, name)
        if not kind:
            r.error(
                where,
                key,
                f"node `{name}` has no kind (set `kind` on the node, its group or "
                "topology.defaults)",
            )
            return None
        if not isinstance(kind, str) or kind not in KIND_ALIASES:
            r.error(
                where,
                key,
                f"node `{name}`: kind `{kind}` is not supported by the built-in backend "
                f"(supported: {SUPPORTED_KINDS_TEXT}); run this lab with containerlab",
            )
            return None
        return KIND_ALIASES[kind]

    def _mgmt_ip(self, name: str, raw: CommentedMap) -> ipaddress.IPv4Address | None:
        value = raw.get("mgmt-ipv4")
        if value is None:
            return None
        try:
            address = ipaddress.IPv4Address(str(value))
        except ValueError as exc:
            self.r.error(raw, "mgmt-ipv4", f"node `{name}`: {exc}")
            return None
        if self.mgmt is not None and address not in self.mgmt.subnet:
            self.r.error(
                raw,
                "mgmt-ipv4",
                f"node `{name}`: {address} is not in the mgmt subnet {self.mgmt.subnet}",
            )
        return address

    def _startup_config(
        self, name: str, layers: Layers, kind: str
    ) -> tuple[str | None, Path | None]:
        value, level = layers.scalar("startup-config")
        if value is None or level is None:
            return None, None
        if not isinstance(value, str):
            self.r.error(level, "startup-config", f"node `{name}`: `startup-config` is a string")
            return None, None
        if kind != "frr":
            # containerlab's linux and bridge kinds ignore it too.
            log.debug("node %s: startup-config ignored for kind %s", name, kind)
            return None, None
        if "\n" in value:
            return value, None  # inline, as containerlab's "embedded" startup-config
        if "://" in value:
            self.r.error(
                level,
                "startup-config",
                f"node `{name}`: a startup-config URL is not supported (use a file)",
            )
            return None, None
        source = (self.base / self.magic(value, name)).resolve()
        try:
            return source.read_text(), source
        except (OSError, UnicodeDecodeError) as exc:
            self.r.error(
                level,
                "startup-config",
                f"node `{name}`: cannot read startup-config {source}: {exc}",
            )
            return None, None

    def _daemons(self, name: str, layers: Layers) -> tuple[str, ...]:
        extras, level = layers.scalar("extras")
        if extras is None or level is None:
            return ()
        frr = extras.get("frr") if isinstance(extras, dict) else None
        daemons = frr.get("daemons") if isinstance(frr, dict) else None
        if daemons is None:
            return ()
        if not isinstance(daemons, list) or not all(isinstance(d, str) for d in daemons):
            self.r.error(level, "extras", f"node `{name}`: `extras.frr.daemons` is a list of names")
            return ()
        known = (*CLAB_CONFIGURABLE_DAEMONS, *CLAB_ALWAYS_ON_DAEMONS)
        chosen: list[str] = []
        for index, daemon in enumerate(daemons):
            if daemon in CLAB_ALWAYS_ON_DAEMONS:
                continue
            if daemon not in known:
                self.r.error(
                    daemons,
                    index,
                    f"node `{name}`: unknown FRR daemon `{daemon}` (expected one of "
                    f"{', '.join(known)})",
                )
            elif daemon not in FRR_PACKAGE_DAEMONS:
                self.r.error(
                    daemons,
                    index,
                    f"node `{name}`: FRR daemon `{daemon}` is not in this machine's FRR "
                    "package (Debian 12, FRR 8.4)",
                )
            else:
                chosen.append(daemon)
        return tuple(dedup(chosen)) if chosen else ("zebra",)

    def _exec(self, name: str, layers: Layers) -> Iterator[str]:
        for item, level in layers.list_items("exec"):
            if not isinstance(item, str) or not isinstance(level.get("exec"), list):
                self.r.error(level, "exec", f"node `{name}`: `exec` must be a list of commands")
                continue
            yield self.magic(item, name)

    def _binds(self, name: str, layers: Layers) -> Iterator[Bind]:
        by_target: dict[str, Bind] = {}
        for entry, level in layers.list_items("binds"):
            bind = self._bind(name, level, entry)
            if bind is not None:
                # More specific levels come later and replace a bind onto the same target.
                by_target[bind.target] = bind
        yield from by_target.values()

    def _bind(self, name: str, level: CommentedMap, entry: Any) -> Bind | None:
        binds = level.get("binds")
        index = binds.index(entry) if isinstance(binds, list) and entry in binds else None
        where, key = (binds, index) if index is not None else (level, "binds")
        parts = self.magic(str(entry), name).split(":")
        if (
            not isinstance(entry, str)
            or len(parts) not in (2, 3)
            or not parts[0]
            or not parts[1].startswith("/")
        ):
            self.r.error(where, key, f"node `{name}`: bind `{entry}` is not SOURCE:/TARGET[:ro]")
            return None
        source = (self.base / parts[0]).resolve()
        if not source.exists():
            self.r.error(where, key, f"node `{name}`: bind source {source} does not exist")
            return None
        return Bind(source, parts[1], read_only=len(parts) == 3 and parts[2] == "ro")

    def _string_map(self, name: str, layers: Layers, key: str) -> dict[str, str]:
        merged, bad = layers.merged_map(key)
        for level in bad:
            self.r.error(level, key, f"node `{name}`: `{key}` must be a mapping")
        return {str(k): "" if v is None else str(v) for k, v in merged.items()}


def _assign_mgmt(
    r: _Reader, raw_nodes: CommentedMap, nodes: dict[str, Node], mgmt: _Mgmt
) -> dict[str, Node]:
    """Check the written addresses, then give the others the next free ones, in file order."""
    seen: dict[ipaddress.IPv4Address, str] = {}
    for node in nodes.values():
        if node.mgmt_ipv4 is None:
            continue
        raw = raw_nodes.get(node.name)
        where, key = (raw, "mgmt-ipv4") if isinstance(raw, CommentedMap) else (raw_nodes, node.name)
        if node.mgmt_ipv4 == mgmt.gateway:
            r.error(where, key, f"node `{node.name}`: {node.mgmt_ipv4} is the mgmt gateway")
        elif node.mgmt_ipv4 in seen:
            other = seen[node.mgmt_ipv4]
            r.error(
                where,
                key,
                f"node `{node.name}`: mgmt-ipv4 {node.mgmt_ipv4} is already used by `{other}`",
            )
        seen[node.mgmt_ipv4] = node.name
    free = auto_addresses(mgmt.pool, mgmt.gateway, seen)
    out: dict[str, Node] = {}
    for node in nodes.values():
        if node.kind == "bridge" or node.mgmt_ipv4 is not None:
            out[node.name] = node
            continue
        address = next(free, None)
        if address is None:
            r.error(raw_nodes, node.name, f"node `{node.name}`: no free address in {mgmt.pool}")
            out[node.name] = node
            continue
        out[node.name] = replace(node, mgmt_ipv4=address, mgmt_auto=True)
    return out


def _read_links(
    r: _Reader, topo: CommentedMap, nodes: dict[str, Node], refused: set[str]
) -> tuple[Link, ...]:
    raw_links = topo.get("links") or []
    if not isinstance(raw_links, list):
        r.error(topo, "links", "`topology.links` must be a list")
        return ()
    links: list[Link] = []
    used: dict[Endpoint, int] = {}
    for index, raw in enumerate(raw_links):
        texts = _endpoint_texts(r, raw_links, index, raw)
        if texts is None:
            continue
        eps, parts = texts
        if any(text.partition(":")[0] in refused for text in parts):
            continue  # the refused node already has its one error
        parsed = [_read_endpoint(r, eps, i, parts[i], nodes, used, index) for i in range(2)]
        a, b = parsed
        if a is None or b is None:
            continue
        if a.node == b.node:
            r.error(eps, 0, f"link {a} <-> {b} connects a node to itself")
            continue
        line, _ = _position(raw_links, index)
        links.append(Link(a, b, line))
    return tuple(links)


def _endpoint_texts(
    r: _Reader, raw_links: list[Any], index: int, raw: Any
) -> tuple[Any, list[str]] | None:
    """The two endpoints of a link as ``node:iface``, from the brief or extended form."""
    if not isinstance(raw, dict):
        r.error(raw_links, index, 'a link needs `endpoints: ["node:iface", "node:iface"]`')
        return None
    link_type = raw.get("type", "veth")
    if link_type != "veth":
        r.error(
            raw,
            "type",
            f"link type `{link_type}` is not supported by the built-in backend (only veth)",
        )
        return None
    eps = raw.get("endpoints")
    if not isinstance(eps, list) or len(eps) != 2:
        r.error(raw_links, index, 'a link needs `endpoints: ["node:iface", "node:iface"]`')
        return None
    texts = []
    for ep in eps:
        if isinstance(ep, dict):
            texts.append(f"{ep.get('node', '')}:{ep.get('interface', '')}")
        else:
            texts.append(str(ep))
    return eps, texts


def _read_endpoint(
    r: _Reader,
    eps: list[Any],
    i: int,
    text: str,
    nodes: dict[str, Node],
    used: dict[Endpoint, int],
    link_index: int,
) -> Endpoint | None:
    node, sep, iface = text.partition(":")
    if not sep or not node or not iface:
        r.error(eps, i, f"endpoint `{text}` is not NODE:IFACE")
        return None
    if node not in nodes:
        special = node in ("host", "mgmt-net", "macvlan")
        hint = " (host, mgmt-net and macvlan endpoints are not supported)" if special else ""
        r.error(eps, i, f"endpoint `{text}`: no node `{node}` in topology.nodes{hint}")
        return None
    if not IFNAME.match(iface) or iface in ("eth0", "lo"):
        r.error(eps, i, f"endpoint `{text}`: `{iface}` is not a usable interface name")
        return None
    ep = Endpoint(node, iface)
    if ep in used:
        r.error(eps, i, f"endpoint `{text}` is already used by link #{used[ep] + 1}")
        return None
    used[ep] = link_index
    return ep
