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
