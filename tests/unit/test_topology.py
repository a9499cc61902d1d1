"""The topology reader and the built-in backend's plan, checked against the file itself.

The expected side is read with plain PyYAML and the node files, independently of
drill.lab.topology, so a reader bug cannot hide in both sides of a comparison.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from drill.errors import InputError, NeedsRootError
from drill.lab.faults import resolve_link
from drill.lab.lab import Lab
from drill.lab.plan import derive_plan, host_prefix
from drill.lab.topology import load_topology

LAB_DIR = Path(__file__).resolve().parents[2] / "labs" / "two-dc"
TOPO_FILE = LAB_DIR / "two-dc.clab.yml"


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(TOPO_FILE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def plan() -> Any:
    return derive_plan(load_topology(LAB_DIR))


def _file_addresses(node: str, raw_node: dict[str, Any]) -> set[tuple[str, str]]:
    """(iface, address/len) from the node's frr.conf and its `ip addr add` exec lines."""
    found: set[tuple[str, str]] = set()
    conf = LAB_DIR / node / "frr.conf"
    if conf.exists():
        iface = None
        for line in conf.read_text().splitlines():
            if line.startswith("interface "):
                iface = line.split()[1]
            elif line.startswith(" ip address ") and iface:
                found.add((iface, line.split()[2]))
    for line in raw_node.get("exec", []):
        m = re.match(r"ip addr add (\S+) dev (\S+)", line)
        if m:
            found.add((m.group(2), m.group(1)))
    return found


def test_plan_realizes_exactly_the_nodes(raw: dict[str, Any], plan: Any) -> None:
    nodes = raw["topology"]["nodes"]
    assert set(plan.nodes) == set(nodes)
    assert {n.netns for n in plan.nodes.values()} == {f"two-dc-{n}" for n in nodes}
    for name, node in nodes.items():
        kind = (node or {}).get("kind", raw["topology"]["defaults"]["kind"])
        assert plan.nodes[name].kind == kind


def test_plan_realizes_exactly_the_links(raw: dict[str, Any], plan: Any) -> None:
    in_file = {frozenset(link["endpoints"]) for link in raw["topology"]["links"]}
    in_plan = {frozenset((str(v.a), str(v.b))) for v in plan.veths}
    assert in_plan == in_file
    assert len(plan.veths) == len(raw["topology"]["links"])
    for veth in plan.veths:
        for port in (veth.a, veth.b):
            assert port.netns == f"two-dc-{port.node}"


def test_bridge_node_gets_every_port_linked_to_it(raw: dict[str, Any], plan: Any) -> None:
    for name, node in raw["topology"]["nodes"].items():
        if (node or {}).get("kind") != "bridge":
            continue
        ports = {
            ep.split(":")[1]
            for link in raw["topology"]["links"]
            for ep in link["endpoints"]
            if ep.split(":")[0] == name
        }
        assert set(plan.nodes[name].bridge_ports) == ports
        assert plan.nodes[name].mgmt is None


def test_plan_mgmt_addresses_match_the_file(raw: dict[str, Any], plan: Any) -> None:
    subnet = ipaddress.IPv4Network(raw["mgmt"]["ipv4-subnet"])
    assert str(plan.mgmt_gateway) == f"{raw['mgmt']['ipv4-gw']}/{subnet.prefixlen}"
    for name, node in raw["topology"]["nodes"].items():
        mgmt = plan.nodes[name].mgmt
        if "mgmt-ipv4" in (node or {}):
            assert str(mgmt) == f"{node['mgmt-ipv4']}/{subnet.prefixlen}"
        else:
            assert mgmt is None
    host_ifaces = [n.mgmt_host_iface for n in plan.nodes.values() if n.mgmt_host_iface]
    assert len(set(host_ifaces)) == len(host_ifaces)
    assert all(len(i) <= 15 for i in [*host_ifaces, plan.mgmt_bridge])


def test_plan_data_addresses_match_the_node_files(raw: dict[str, Any], plan: Any) -> None:
    for name, node in raw["topology"]["nodes"].items():
        in_plan = {(a.iface, str(a.address)) for a in plan.nodes[name].addresses}
        assert in_plan == _file_addresses(name, node or {}), name


def test_every_linked_interface_is_addressed_or_bridged(plan: Any) -> None:
    """No data interface is left without an address unless a bridge or VRRP parent owns it."""
    for veth in plan.veths:
        for port in (veth.a, veth.b):
            node = plan.nodes[port.node]
            if node.is_bridge:
                continue
            assert any(a.iface == port.iface for a in node.addresses), str(port)


def test_daemons_follow_the_daemons_files(plan: Any) -> None:
    for name, node in plan.nodes.items():
        daemons_file = LAB_DIR / name / "daemons"
        if not daemons_file.exists():
            assert not node.runs_frr
            continue
        enabled = {
            line.split("=")[0]
            for line in daemons_file.read_text().splitlines()
            if re.match(r"^[a-z0-9]+d=yes$", line)
        }
        assert node.daemons[0].name == "zebra"
        assert {d.name for d in node.daemons} == enabled | {"zebra"}


def test_vrrp_groups_and_intended_masters(plan: Any) -> None:
    from drill.lab.health import intended_vrrp_masters

    masters = intended_vrrp_masters(plan)
    assert masters == {(1, ("192.0.2.1",)): "dc1-edge", (10, ("192.0.2.10",)): "app1"}


def test_inventory_agrees_with_the_topology(plan: Any) -> None:
    hosts = yaml.safe_load((LAB_DIR / "inventory" / "hosts.yaml").read_text())
    groups = yaml.safe_load((LAB_DIR / "inventory" / "groups.yaml").read_text())
    defaults = yaml.safe_load((LAB_DIR / "inventory" / "defaults.yaml").read_text())
    assert set(hosts) == {n for n, p in plan.nodes.items() if not p.is_bridge}
    for name, host in hosts.items():
        node = plan.nodes[name]
        assert host["hostname"] == str(node.mgmt.ip)
        assert host["data"]["site"] == node.labels["drill.site"]
        assert host["data"]["role"] == node.labels["drill.role"]
        own = sorted(str(a.address.ip) for a in node.addresses if not a.iface.startswith("vrrp"))
        assert sorted(host["data"]["addresses"]) == own
        group = host["groups"][0]
        assert groups[group]["platform"] == ("frr" if node.runs_frr else "linux")
    optional = defaults["connection_options"]["napalm"]["extras"]["optional_args"]
    assert optional["known_hosts_file"] == str(plan.known_hosts)
    assert defaults["username"] == "root"


def test_directory_and_file_give_the_same_topology() -> None:
    assert load_topology(LAB_DIR) == load_topology(TOPO_FILE)


def test_host_prefix_keeps_names_short() -> None:
    assert host_prefix("two-dc") == "two-dc"
    long_prefix = host_prefix("x" * 40)
    assert len(long_prefix + "-mgmt") <= 15
    assert host_prefix("y" * 40) != long_prefix


# --- errors, located -------------------------------------------------------------------

VALID = """\
name: t
mgmt:
  ipv4-subnet: 198.18.7.0/24
topology:
  nodes:
    a:
      kind: linux
      mgmt-ipv4: 198.18.7.11
    b:
      kind: linux
      mgmt-ipv4: 198.18.7.12
  links:
    - endpoints: ["a:eth1", "b:eth1"]
"""


def _load(tmp_path: Path, text: str) -> Any:
    path = tmp_path / "t.clab.yml"
    path.write_text(text)
    return load_topology(path)


def _diagnostic(tmp_path: Path, text: str) -> str:
    with pytest.raises(InputError) as info:
        _load(tmp_path, text)
    return str(info.value)


def test_a_minimal_topology_loads(tmp_path: Path) -> None:
    topo = _load(tmp_path, VALID)
    assert list(topo.nodes) == ["a", "b"]
    assert str(topo.mgmt_gateway) == "198.18.7.1"


@pytest.mark.parametrize(
    ("old", "new", "line", "message"),
    [
        ('"b:eth1"]', '"c:eth1"]', 13, "no node `c`"),
        ('"b:eth1"]', '"beth1"]', 13, "is not NODE:IFACE"),
        ('"b:eth1"]', '"a:eth1"]', 13, "already used"),
        ("mgmt-ipv4: 198.18.7.12", "mgmt-ipv4: 198.19.0.12", 11, "not in the mgmt subnet"),
        ("mgmt-ipv4: 198.18.7.12", "mgmt-ipv4: 198.18.7.11", 11, "already used by `a`"),
        ("kind: linux\n      mgmt-ipv4: 198.18.7.12", "kind: vr-sros\n      mgmt-ipv4: 1", 10,
         "not supported"),
    ],
)  # fmt: skip
def test_errors_carry_file_line_col(
    tmp_path: Path, old: str, new: str, line: int, message: str
) -> None:
    text = _diagnostic(tmp_path, VALID.replace(old, new, 1))
    assert message in text
    assert re.search(rf"t\.clab\.yml:{line}:\d+: error: ", text), text


def test_yaml_syntax_error_is_located(tmp_path: Path) -> None:
    text = _diagnostic(tmp_path, VALID + "  - endpoints: [\n")
    assert re.search(r"t\.clab\.yml:\d+:\d+: error: ", text)


def test_missing_bind_source_is_an_error(tmp_path: Path) -> None:
    broken = VALID.replace(
        "kind: linux\n", "kind: linux\n      binds: [nope/frr.conf:/etc/frr/frr.conf]\n", 1
    )
    assert "does not exist" in _diagnostic(tmp_path, broken)


def test_directory_without_topology_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"no \*\.clab\.yml"):
        load_topology(tmp_path)


# --- fault targets ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("wan:dc1-edge", "wan:eth1|dc1-edge:eth1"),
        ("dc1-edge:wan", "wan:eth1|dc1-edge:eth1"),
        ("dc1-edge:eth2:dc2-edge", "dc1-edge:eth2|dc2-edge:eth2"),
        ("app1:br-dci", "app1:eth1|br-dci:dci-app1"),
        ("br-dci:dci-dc2e:dc2-edge:eth3", "dc2-edge:eth3|br-dci:dci-dc2e"),
    ],
)
def test_link_targets_resolve(target: str, expected: str) -> None:
    veth = resolve_link(Lab(LAB_DIR), target)
    assert {str(veth.a), str(veth.b)} == set(expected.split("|"))


@pytest.mark.parametrize("target", ["wan:app1", "wan:eth9:dc1-edge", "nope:wan"])
def test_unknown_link_targets_are_input_errors(target: str) -> None:
    with pytest.raises(InputError, match="no link"):
        resolve_link(Lab(LAB_DIR), target)


# --- privileges -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["up"],
        ["down"],
        ["status"],
        ["exec", "wan", "--", "true"],
        ["fault", "node", "wan"],
        ["fault", "--clear"],
    ],
)
def test_cli_says_root_is_needed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    from drill.cli import app as cli
    from drill.lab import privileges

    monkeypatch.setattr(privileges, "effective_uid", lambda: 1000)
    command = ["drill", "lab", argv[0], str(LAB_DIR), *argv[1:]]
    monkeypatch.setattr(sys, "argv", command)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs root" in err[0]


def test_require_root_raises_needs_root(monkeypatch: pytest.MonkeyPatch) -> None:
    from drill.lab import privileges

    monkeypatch.setattr(privileges, "effective_uid", lambda: 1000)
    with pytest.raises(NeedsRootError):
        privileges.require_root("x")


# --- containerlab conformance: today's idiom --------------------------------------------

OSPF_DIR = Path(__file__).resolve().parents[1] / "lab" / "data" / "ospf-lab"


def _write(tmp_path: Path, text: str, files: dict[str, str] | None = None) -> Path:
    for name, content in (files or {}).items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    path = tmp_path / "lab.clab.yml"
    path.write_text(text)
    return path


def _diagnostics(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        load_topology(path)
    return [str(d) for d in info.value.diagnostics]


INHERIT = """\
name: inh
mgmt: {ipv4-subnet: 198.18.7.0/24}
topology:
  defaults:
    kind: linux
    image: img-defaults
    exec: ["echo defaults"]
    labels: {level: defaults, from-defaults: "yes"}
    env: {A: defaults, B: defaults}
  kinds:
    frr:
      image: img-kind
      exec: ["echo kind"]
      labels: {level: kind, from-kind: "yes"}
      extras: {frr: {daemons: [bgpd]}}
    linux:
      group: via-kind
  groups:
    edge:
      kind: frr
      image: img-group
      exec: ["echo group", "echo defaults"]
      labels: {level: group}
      env: {B: group}
      extras: {frr: {daemons: [ospfd, bfdd]}}
    via-kind:
      labels: {level: via-kind}
  nodes:
    n-node:
      group: edge
      image: img-node
      exec: ["echo node"]
      labels: {level: node}
      env: {A: node}
    n-group:
      group: edge
    n-kind:
      kind: frr
    n-defaults: {}
"""


def test_inheritance_is_node_over_group_over_kind_over_defaults(tmp_path: Path) -> None:
    nodes = load_topology(_write(tmp_path, INHERIT)).nodes
    # Scalars: the most specific level that sets them.
    assert [nodes[n].image for n in ("n-node", "n-group", "n-kind", "n-defaults")] == [
        "img-node",
        "img-group",
        "img-kind",
        "img-defaults",
    ]
    # kind: node > the node's group > defaults; the kinds entry of that kind applies.
    assert [nodes[n].kind for n in ("n-node", "n-group", "n-kind", "n-defaults")] == [
        "frr",
        "frr",
        "frr",
        "linux",
    ]
    # extras is a scalar too: the group's daemon list replaces the kind's.
    assert nodes["n-group"].frr_daemons == ("ospfd", "bfdd")
    assert nodes["n-kind"].frr_daemons == ("bgpd",)
    # Lists are concatenated defaults -> kind -> group -> node, duplicates dropped.
    assert nodes["n-node"].exec == ("echo defaults", "echo kind", "echo group", "echo node")
    assert nodes["n-kind"].exec == ("echo defaults", "echo kind")
    # Maps are merged, the most specific level winning per key.
    assert nodes["n-node"].labels == {
        "level": "node",
        "from-defaults": "yes",
        "from-kind": "yes",
    }
    assert nodes["n-node"].env == {"A": "node", "B": "group"}
    # group: node > kinds[kind].group > defaults.
    assert nodes["n-defaults"].group == "via-kind"
    assert nodes["n-defaults"].labels["level"] == "via-kind"


def test_binds_on_the_same_target_keep_the_most_specific(tmp_path: Path) -> None:
    text = """\
name: b
topology:
  defaults:
    kind: linux
    binds: [d.txt:/etc/issue.net, keep.txt:/etc/motd]
  nodes:
    n:
      binds: [n.txt:/etc/issue.net:ro]
"""
    files = {"d.txt": "d", "n.txt": "n", "keep.txt": "k"}
    node = load_topology(_write(tmp_path, text, files)).nodes["n"]
    by_target = {b.target: (b.source.name, b.read_only) for b in node.binds}
    assert by_target == {"/etc/issue.net": ("n.txt", True), "/etc/motd": ("keep.txt", False)}


FRR_NODES = """\
name: s
mgmt: {{ipv4-subnet: 198.18.7.0/24}}
topology:
  nodes:
    r1:
      kind: frr
      startup-config: {startup}
"""


def test_startup_config_from_a_file_is_the_nodes_frr_conf(tmp_path: Path) -> None:
    conf = "interface eth1\n ip address 198.51.100.1/30\nexit\nrouter ospf\n"
    path = _write(tmp_path, FRR_NODES.format(startup="cfg/__clabNodeName__.conf"))
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "r1.conf").write_text(conf)
    plan = derive_plan(load_topology(path))
    node = plan.nodes["r1"]
    assert dict(node.etc_texts)["frr.conf"] == conf
    assert [str(a.address) for a in node.addresses] == ["198.51.100.1/30"]
    # No extras: containerlab enables every daemon (here: every one FRR 8.4 ships).
    assert {"zebra", "bgpd", "ospfd", "staticd"} <= {d.name for d in node.daemons}
    assert dict(node.sysctls) == {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}
    assert node.startup_commands[:2] == (
        "sysctl -q -w net.ipv4.ip_forward=1",
        "sysctl -q -w net.ipv6.conf.all.forwarding=1",
    )


def test_inline_startup_config_and_daemons_from_extras(tmp_path: Path) -> None:
    text = FRR_NODES.format(
        startup="|\n        interface eth1\n         ip address 198.51.100.5/30\n"
    )
    text += "      extras: {frr: {daemons: [ospfd, zebra]}}\n"
    plan = derive_plan(load_topology(_write(tmp_path, text)))
    node = plan.nodes["r1"]
    assert "ip address 198.51.100.5/30" in dict(node.etc_texts)["frr.conf"]
    assert [d.name for d in node.daemons] == ["zebra", "ospfd", "staticd"]
    assert "ospfd=yes" in dict(node.etc_texts)["daemons"]
    assert "bgpd=no" in dict(node.etc_texts)["daemons"]
    assert not node.expects_bgp_peers


def test_frr_node_without_startup_config_gets_containerlabs_default(tmp_path: Path) -> None:
    text = "name: s\ntopology:\n  nodes:\n    r1: {kind: frrouting}\n"
    node = derive_plan(load_topology(_write(tmp_path, text))).nodes["r1"]
    assert node.kind == "frr"
    assert dict(node.etc_texts)["frr.conf"].startswith("frr defaults traditional")


@pytest.mark.parametrize(
    ("startup", "message"),
    [
        ("cfg/missing.conf", "cannot read startup-config"),
        ("https://example.com/r1.conf", "URL is not supported"),
    ],
)
def test_bad_startup_config_is_located(tmp_path: Path, startup: str, message: str) -> None:
    problems = _diagnostics(_write(tmp_path, FRR_NODES.format(startup=startup)))
    assert len(problems) == 1 and message in problems[0]
    assert re.search(r"lab\.clab\.yml:7:\d+: error: node `r1`", problems[0]), problems


@pytest.mark.parametrize(
    ("daemon", "message"),
    [("nosuchd", "unknown FRR daemon `nosuchd`"), ("pim6d", "not in this machine's FRR")],
)
def test_bad_daemon_names_are_errors(tmp_path: Path, daemon: str, message: str) -> None:
    text = FRR_NODES.format(startup="|\n        !\n")
    text += f"      extras: {{frr: {{daemons: [ospfd, {daemon}]}}}}\n"
    problems = _diagnostics(_write(tmp_path, text))
    assert len(problems) == 1 and message in problems[0], problems


AUTO = """\
name: auto
mgmt:
  ipv4-subnet: 198.18.7.0/29
topology:
  defaults: {kind: linux}
  nodes:
    a: {}
    b: {mgmt-ipv4: 198.18.7.2}
    br: {kind: bridge}
    c: {}
    d: {}
  links:
    - endpoints: ["a:eth1", "br:p1"]
"""


def test_auto_addresses_skip_the_gateway_and_written_ones(tmp_path: Path) -> None:
    topo = load_topology(_write(tmp_path, AUTO))
    got = {n.name: str(n.mgmt_ipv4) if n.mgmt_ipv4 else None for n in topo.nodes.values()}
    assert got == {"a": "198.18.7.3", "b": "198.18.7.2", "br": None, "c": "198.18.7.4",
                   "d": "198.18.7.5"}  # fmt: skip
    assert [n.name for n in topo.nodes.values() if n.mgmt_auto] == ["a", "c", "d"]
    # Stable: the same file gives the same addresses every time (up/down/up).
    assert load_topology(_write(tmp_path, AUTO)) == topo


def test_auto_addresses_honour_gateway_and_range(tmp_path: Path) -> None:
    text = AUTO.replace(
        "ipv4-subnet: 198.18.7.0/29",
        "ipv4-subnet: 198.18.7.0/24\n  ipv4-gw: 198.18.7.130\n  ipv4-range: 198.18.7.128/29",
    ).replace("mgmt-ipv4: 198.18.7.2", "mgmt-ipv4: 198.18.7.200")
    topo = load_topology(_write(tmp_path, text))
    assert [str(topo.nodes[n].mgmt_ipv4) for n in ("a", "c", "d")] == [
        "198.18.7.129",
        "198.18.7.131",
        "198.18.7.132",
    ]


def test_auto_addresses_running_out_is_an_error(tmp_path: Path) -> None:
    text = AUTO.replace("198.18.7.0/29", "198.18.7.0/30").replace("mgmt-ipv4: 198.18.7.2", "")
    problems = _diagnostics(_write(tmp_path, text))
    # a takes the only free address; b, c and d each get one error.
    assert len(problems) == 3 and all("no free address" in p for p in problems), problems


def test_no_mgmt_section_gets_a_documentation_subnet(tmp_path: Path) -> None:
    text = "name: nomgmt\ntopology:\n  nodes:\n    a: {kind: linux}\n"
    topo = load_topology(_write(tmp_path, text))
    assert topo.mgmt_subnet.subnet_of(ipaddress.IPv4Network("198.19.0.0/16"))
    assert topo.nodes["a"].mgmt_ipv4 in topo.mgmt_subnet


UNSUPPORTED = """\
name: u
topology:
  nodes:
    r1: {kind: frr}
    ceos1:
      kind: arista_ceos
      image: ceos:4.32.0F
    r2: {kind: frr}
  links:
    - endpoints: ["r1:eth1", "ceos1:eth1"]
    - endpoints: ["ceos1:Ethernet2", "r2:eth1"]
    - type: veth
      endpoints: [{node: ceos1, interface: eth3}, {node: r2, interface: eth2}]
    - endpoints: ["r1:eth2", "r2:eth3"]
"""


def test_an_unsupported_kind_is_one_error_and_no_cascade(tmp_path: Path) -> None:
    problems = _diagnostics(_write(tmp_path, UNSUPPORTED))
    assert len(problems) == 1, problems
    only = problems[0]
    assert re.match(r".*lab\.clab\.yml:6:\d+: error: ", only), only
    for part in ("`ceos1`", "`arista_ceos`", "linux", "bridge", "frr", "frrouting"):
        assert part in only


def test_unsupported_kind_from_defaults_is_reported_per_node(tmp_path: Path) -> None:
    text = "name: u\ntopology:\n  defaults: {kind: nokia_srlinux}\n  nodes:\n    a: {}\n"
    text += "    b: {}\n  links:\n    - endpoints: ['a:e1-1', 'b:e1-1']\n"
    problems = _diagnostics(_write(tmp_path, text))
    assert len(problems) == 2 and all("nokia_srlinux" in p for p in problems), problems


def test_cli_prints_the_unsupported_kind_as_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from drill.cli import app as cli

    path = _write(tmp_path, UNSUPPORTED)
    monkeypatch.setattr(sys, "argv", ["drill", "lab", "up", str(path)])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "arista_ceos" in err[0], err


def test_extended_links_and_other_link_types(tmp_path: Path) -> None:
    text = """\
name: x
topology:
  defaults: {kind: linux}
  nodes: {a: {}, b: {}}
  links:
    - type: veth
      endpoints:
        - {node: a, interface: eth1, mac: "02:00:00:00:00:01"}
        - {node: b, interface: eth1}
    - type: macvlan
      endpoint: {node: a, interface: eth2}
      host-interface: eno1
"""
    problems = _diagnostics(_write(tmp_path, text))
    assert len(problems) == 1 and "link type `macvlan` is not supported" in problems[0]
    topo = load_topology(_write(tmp_path, text.split("    - type: macvlan")[0]))
    assert [str(lk) for lk in topo.links] == ["a:eth1 <-> b:eth1"]


def test_the_ospf_lab_plan(tmp_path: Path) -> None:
    """The lab tests' own topology, in today's idiom: what the backend will build."""
    topo = load_topology(OSPF_DIR / "ospf.clab.yml")
    plan = derive_plan(topo)
    assert plan.mgmt_bridge == f"{host_prefix('drill-ospf')}-mgmt"
    assert len(plan.mgmt_bridge) <= 15
    routers = {n for n, p in plan.nodes.items() if p.kind == "frr"}
    assert routers == {"r1", "r2", "r3"}
    for name in routers:
        node = plan.nodes[name]
        assert [d.name for d in node.daemons] == ["zebra", "ospfd", "staticd"]
        assert f"hostname {name}" in dict(node.etc_texts)["frr.conf"]
    assert all(n.mgmt_auto for n in topo.nodes.values())
    assert [str(n.mgmt_ipv4) for n in topo.nodes.values()] == [f"198.18.4.{i}" for i in range(2, 7)]
    assert ("DRILL_OSPF_LAB", "1") in plan.nodes["h1"].env


# --- containerlab's own documentation examples (parse only) ------------------------------

FRR01_FILES = {
    f"router{i}/{f}": "bgpd=no\nospfd=yes\n" if f == "daemons" else "router ospf\n"
    for i in (1, 2, 3)
    for f in ("daemons", "frr.conf")
}

# (source in containerlab's docs, topology text, node count or the expected errors)
DOC_EXAMPLES: list[tuple[str, str, int | list[str]]] = [
    (
        "docs/manual/kinds/linux.md",
        """\
name: demo
topology:
  nodes:
    n1:
      kind: linux
      image: alpine:latest
    n2:
      kind: linux
      image: alpine:latest
  links:
    - endpoints: ["n1:eth1","n2:eth1"]
""",
        2,
    ),
    (
        "docs/manual/kinds/frr.md (startup-config)",
        """\
name: frrdoc
topology:
  nodes:
    router1:
      kind: frr
      image: quay.io/frrouting/frr:containerlab-10.7.1
      startup-config: router1/frr.conf
""",
        1,
    ),
    (
        "docs/manual/kinds/frr.md (daemons)",
        """\
name: frrdoc
topology:
  nodes:
    router1:
      kind: frr
      image: quay.io/frrouting/frr:containerlab-10.7.1
      extras:
        frr:
          daemons:
            - ospfd
            - bfdd
""",
        1,
    ),
    (
        "lab-examples/frr01/frr01.clab.yml",
        """\
name: frr01

topology:
  groups:
    routers:
      kind: linux
      image: quay.io/frrouting/frr:10.5.1
    hosts:
      kind: linux
      image: wbitt/network-multitool:3.22.2

  nodes:
    router1:
      group: routers
      binds:
        - router1/daemons:/etc/frr/daemons
        - router1/frr.conf:/etc/frr/frr.conf
    router2:
      group: routers
      binds:
        - router2/daemons:/etc/frr/daemons
        - router2/frr.conf:/etc/frr/frr.conf
    router3:
      group: routers
      binds:
        - router3/daemons:/etc/frr/daemons
        - router3/frr.conf:/etc/frr/frr.conf
    PC1:
      group: hosts
      exec:
        - ip link set eth1 up
        - ip addr add 203.0.113.2/24 dev eth1
  links:
    - endpoints: ["router1:eth1", "router2:eth1"]
    - endpoints: ["router1:eth2", "router3:eth1"]
    - endpoints: ["router2:eth2", "router3:eth2"]
    - endpoints: ["PC1:eth1", "router1:eth3"]
""",
        4,
    ),
    (
        "docs/manual/topo-def-file.md (srlceos01)",
        """\
name: srlceos01

topology:
  nodes:
    srl:
      kind: nokia_srlinux
      image: ghcr.io/nokia/srlinux
    ceos:
      kind: arista_ceos
      image: ceos:4.32.0F

  links:
    - endpoints: ["srl:e1-1", "ceos:eth1"]
""",
        [":6:13: error: node `srl`: kind `nokia_srlinux`", ":9:13: error: node `ceos`"],
    ),
    (
        "docs/manual/kinds/bridge.md (br01)",
        """\
name: br01

topology:
  kinds:
    nokia_srlinux:
      type: ixr-d2l
      image: ghcr.io/nokia/srlinux
  nodes:
    srl1:
      kind: nokia_srlinux
    srl2:
      kind: nokia_srlinux
    srl3:
      kind: nokia_srlinux
    # note, that the bridge br-clab must be created manually
    br-clab:
      kind: bridge

  links:
    - endpoints: ["srl1:e1-1", "br-clab:eth1"]
    - endpoints: ["srl2:e1-1", "br-clab:eth2"]
    - endpoints: ["srl3:e1-1", "br-clab:eth3"]
""",
        ["node `srl1`", "node `srl2`", "node `srl3`"],
    ),
    (
        # The docs' own example names `apline-clients` and uses `alpine-clients`.
        "docs/manual/topo-def-file.md (groups)",
        """\
topology:
  defaults:
    kind: nokia_srlinux
    image: ghcr.io/nokia/srlinux
  groups:
    spines:
      type: ixrd3l
    apline-clients:
      kind: linux
      image: alpine
    debian-clients:
      kind: linux
      image: debian
  nodes:
    srl1:
      group: spines
    srl2:
      group: spines
    srl3:
    srl4:
    client1:
      group: alpine-clients
    client2:
      group: alpine-clients
    client3:
      group: debian-clients
""",
        [
            ":1:1: error: `name` must be",
            "node `srl1`: kind `nokia_srlinux`",
            "node `srl2`: kind `nokia_srlinux`",
            "node `srl3`: kind `nokia_srlinux`",
            "node `srl4`: kind `nokia_srlinux`",
            "node `client1`: no group `alpine-clients`",
            "node `client2`: no group `alpine-clients`",
        ],
    ),
    (
        "docs/manual/topo-def-file.md (defaults)",
        """\
name: defaults
topology:
  defaults:
    env:
      MYENV: VALUE
  nodes:
    srl1:
    srl2:
""",
        ["node `srl1` has no kind", "node `srl2` has no kind"],
    ),
    (
        "docs/manual/inventory.md (nornir)",
        """\
name: nornir
mgmt:
  network: fixedips
  ipv4-subnet: 172.200.20.0/24
topology:
  nodes:
    node1:
      kind: nokia_srlinux
      image: ghcr.io/nokia/srlinux:latest
      mgmt-ipv4: 172.200.20.2
    node2:
      kind: arista_ceos
      image: ceos:4.33-arm
      mgmt-ipv4: 172.200.20.3
""",
        ["node `node1`: kind `nokia_srlinux`", "node `node2`: kind `arista_ceos`"],
    ),
]


@pytest.mark.parametrize(
    ("source", "text", "expected"), DOC_EXAMPLES, ids=[e[0] for e in DOC_EXAMPLES]
)
def test_containerlab_documentation_examples(
    tmp_path: Path, source: str, text: str, expected: int | list[str]
) -> None:
    files = {**FRR01_FILES, "router1/frr.conf": "router ospf\n"}
    path = _write(tmp_path, text, files)
    if isinstance(expected, int):
        topo = load_topology(path)
        assert len(topo.nodes) == expected
        derive_plan(topo)  # and the backend can plan it
        return
    problems = _diagnostics(path)
    assert len(problems) == len(expected), problems
    for want, got in zip(expected, problems, strict=True):
        assert want in got, (want, got)


# --- the generated nornir inventory ----------------------------------------------------


def test_generated_inventory_agrees_with_two_dcs_committed_one(plan: Any) -> None:
    from drill.lab.inventory import render_inventory

    files = render_inventory(plan, "root", "drill-lab")
    generated = yaml.safe_load(files.hosts)
    committed = yaml.safe_load((LAB_DIR / "inventory" / "hosts.yaml").read_text())
    assert set(generated) == set(committed)
    for name, host in committed.items():
        got = generated[name]
        assert got["hostname"] == host["hostname"]
        for key in ("site", "role"):
            assert got["data"][key] == host["data"][key]
        assert sorted(got["data"]["addresses"]) == sorted(host["data"]["addresses"])
    groups = yaml.safe_load(files.groups)
    committed_groups = yaml.safe_load((LAB_DIR / "inventory" / "groups.yaml").read_text())
    for name, host in committed.items():
        want = committed_groups[host["groups"][0]]["platform"]
        assert groups[generated[name]["groups"][0]]["platform"] == want
    defaults = yaml.safe_load(files.defaults)
    committed_defaults = yaml.safe_load((LAB_DIR / "inventory" / "defaults.yaml").read_text())
    assert defaults == committed_defaults


def test_written_inventory_loads_in_nornir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    from nornir import InitNornir

    from drill.lab.inventory import write_inventory

    monkeypatch.delenv("SUDO_UID", raising=False)
    copy = tmp_path / "ospf-lab"
    shutil.copytree(OSPF_DIR, copy, ignore=shutil.ignore_patterns("clab-*"))
    plan = derive_plan(load_topology(copy))
    directory = write_inventory(plan, "root", "lab-secret")
    assert directory == copy / "clab-drill-ospf" / "inventory"
    assert (directory / "defaults.yaml").stat().st_mode & 0o077 == 0
    nr = InitNornir(
        inventory={
            "plugin": "SimpleInventory",
            "options": {
                "host_file": str(directory / "hosts.yaml"),
                "group_file": str(directory / "groups.yaml"),
                "defaults_file": str(directory / "defaults.yaml"),
            },
        },
        logging={"enabled": False},
    )
    hosts = nr.inventory.hosts
    assert {h: hosts[h].platform for h in hosts} == {
        "r1": "frr", "r2": "frr", "r3": "frr", "h1": "linux", "h2": "linux",
    }  # fmt: skip
    assert {h: hosts[h].hostname for h in hosts} == {
        n: str(p.mgmt.ip) for n, p in plan.nodes.items() if p.mgmt is not None
    }
    r2 = hosts["r2"]
    assert (r2["site"], r2["role"], r2["rack"]) == ("north", "router", "r42")
    assert "ospf-routers" in [g.name for g in r2.groups]
    assert r2.username == "root" and r2.password == "lab-secret"
    optional = r2.get_connection_parameters("napalm").extras["optional_args"]
    assert optional["known_hosts_file"] == "/run/drill/lab/drill-ospf/known_hosts"
    assert sorted(hosts["h1"]["addresses"]) == ["203.0.113.2"]


def _mutations(doc: Any, rng: Any) -> Any:
    """``doc`` with 1-3 values replaced by ill-typed ones, or keys removed."""
    import copy

    values: list[Any] = [None, 1, "x", [], {}, ["a"], {"a": 1}, True, "198.18.4.300", "a:b",
                         {"frr": {"daemons": "ospfd"}}, [1, 2], "-"]  # fmt: skip

    def paths(obj: Any, prefix: tuple[Any, ...] = ()) -> Any:
        yield prefix
        items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(
            obj, list) else ()  # fmt: skip
        for key, value in items:
            yield from paths(value, (*prefix, key))

    doc = copy.deepcopy(doc)
    every = [p for p in paths(doc) if p]
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(every)
        parent = doc
        try:
            for key in path[:-1]:
                parent = parent[key]
            if isinstance(parent, dict) and rng.random() < 0.2:
                del parent[path[-1]]
            else:
                parent[path[-1]] = copy.deepcopy(rng.choice(values))
        except (KeyError, IndexError, TypeError):
            continue
    return doc


def test_mutated_topologies_give_located_errors_never_a_traceback(tmp_path: Path) -> None:
    import random
    import shutil

    shutil.copytree(OSPF_DIR / "configs", tmp_path / "configs")
    base = yaml.safe_load((OSPF_DIR / "ospf.clab.yml").read_text())
    rng = random.Random(16)
    errors = 0
    for _ in range(120):
        path = _write(tmp_path, yaml.safe_dump(_mutations(base, rng)))
        try:
            derive_plan(load_topology(path))
        except InputError as exc:
            errors += 1
            assert all(d.line >= 1 and d.message for d in exc.diagnostics), str(exc)
    assert errors > 20  # the mutations do break files: the check above is exercised
