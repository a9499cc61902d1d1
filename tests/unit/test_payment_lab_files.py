"""labs/payment-dr and runbooks/payment agree with each other, without a running lab: the
topology loads, every node is labelled, the inventory matches the plan, both runbooks
validate against the lab's inventory, and the addresses stay in the allowed prefixes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from drill.engine.plan import build_plan
from drill.lab.plan import derive_plan
from drill.lab.topology import load_topology
from drill.runbook.loader import load_runbook
from drill.runbook.rto import rto_plan

REPO = Path(__file__).resolve().parents[2]
LAB_DIR = REPO / "labs" / "payment-dr"
RUNBOOKS = REPO / "runbooks" / "payment"
MGMT = ipaddress.ip_network("198.18.2.0/24")  # payment-dr's exporters, on its management
ALLOWED = [
    ipaddress.ip_network(n)
    for n in ("198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
]


def test_topology_is_its_own_lab_with_labels_everywhere() -> None:
    topology = load_topology(LAB_DIR)
    assert topology.name == "payment-dr"
    assert topology.mgmt_subnet == ipaddress.IPv4Network("198.18.2.0/24")
    assert topology.mgmt_network == "payment-dr-mgmt"
    for node in topology.nodes.values():
        assert {"drill.site", "drill.role", "drill.service"} <= set(node.labels), node.name
    sites = {n.labels["drill.site"] for n in topology.nodes.values()}
    assert sites == {"wan", "dc1", "dc2"}
    # settlement is not in DR: only dc1's server runs it.
    runs = {n.name: n.labels["drill.service"].split(",") for n in topology.nodes.values()}
    assert "settlement" in runs["dc1-srv"] and "settlement" not in runs["dc2-srv"]


def test_inventory_agrees_with_the_plan() -> None:
    plan = derive_plan(load_topology(LAB_DIR))
    hosts = yaml.safe_load((LAB_DIR / "inventory" / "hosts.yaml").read_text())
    assert set(hosts) == {n for n, p in plan.nodes.items() if not p.is_bridge}
    for name, host in hosts.items():
        node = plan.nodes[name]
        assert node.mgmt is not None
        assert host["hostname"] == str(node.mgmt.ip)
        assert host["data"]["site"] == node.labels["drill.site"]
        assert host["data"]["role"] == node.labels["drill.role"]
        own = {str(a.address.ip) for a in node.addresses if not a.iface.startswith("vrrp")}
        assert set(host["data"]["addresses"]) == own, name
        for address in own:
            assert any(ipaddress.ip_address(address) in net for net in ALLOWED), address


def test_vrrp_masters_start_in_dc1() -> None:
    from drill.lab.health import intended_vrrp_masters

    masters = intended_vrrp_masters(derive_plan(load_topology(LAB_DIR)))
    assert masters == {(1, ("192.0.2.1",)): "dc1-edge", (10, ("192.0.2.10",)): "dc1-srv"}


@pytest.mark.parametrize("name", ["dc1-to-dc2", "dc2-to-dc1"])
def test_payment_runbooks_validate_and_probe(name: str) -> None:
    loaded = load_runbook(RUNBOOKS / f"{name}.yml")
    kinds = {p.kind for p in loaded.model.probes}
    assert kinds == {"packet", "service", "session"}
    packet = next(p for p in loaded.model.probes if p.kind == "packet")
    assert packet.rate == 1000
    session = next(p for p in loaded.model.probes if p.kind == "session")
    # 50 sessions at 100 ms to the session service of a site that stays up, through the edge
    # firewall that moves, and not one may be lost.
    assert (session.sessions, session.interval, session.port) == (50, 0.1, 7007)
    assert session.target in ("192.0.2.26", "192.0.2.36")
    assert session.max_lost_sessions == 0
    plan = build_plan(loaded)
    assert plan.steps


def test_switchover_header_admits_the_trap() -> None:
    header = (RUNBOOKS / "dc1-to-dc2.yml").read_text().split("apiVersion:")[0]
    assert "SUCCEEDS" in header and "settlement" in header


def test_site_loss_runbook_kills_all_of_dc1_and_fails_back_as_written() -> None:
    loaded = load_runbook(RUNBOOKS / "site-loss.yml")
    model = loaded.model
    assert model.mode == "unplanned"
    plan = rto_plan(model)
    # BFD 3 x 100 ms, VRRPv3 100 ms adverts at backup priority 100, plus 200 ms
    assert plan.bound_s == pytest.approx(0.3609375 + 0.2)
    faults = [s for s in model.steps if s.kind == "fault"]
    dc1 = set(yaml.safe_load((LAB_DIR / "payment-dr.clab.yml").read_text())["topology"]["nodes"])
    dc1 = {n for n in dc1 if "dc1" in n}
    assert [(f.action, set(f.nodes)) for f in faults] == [("blackhole", dc1), ("clear", dc1)]
    # the failback is dc2-to-dc1.yml's steps, in order, after DC1 is back
    failback = [s.name for s in load_runbook(RUNBOOKS / "dc2-to-dc1.yml").model.steps]
    names = [s.name for s in model.steps]
    assert names[-len(failback) :] == failback
    assert build_plan(loaded).steps


def test_the_shipped_catalog_names_auth_calling_settlement_from_dc2() -> None:
    """runbooks/payment/catalog.json was recorded on the lab (docs/flows.md, "The catalog the
    payment runbooks use"). The services bind their calls to their own addresses, so the
    client of the planted dependency is auth, not its host, and `flows check` names it."""
    import json
    import subprocess
    import sys

    catalog = json.loads((RUNBOOKS / "catalog.json").read_text())
    exporters = {e for f in catalog["flows"] for e in f["exporters"]}
    assert exporters and all(ipaddress.ip_address(e) in MGMT for e in exporters), exporters
    calls = {
        (f["client"]["service"], tuple(f["client"]["sites"]), f["server"]["service"], f["port"])
        for f in catalog["flows"]
    }
    assert ("auth", ("dc2",), "settlement", 8300) in calls, calls
    assert catalog["unknown_endpoints"] == []
    done = subprocess.run(
        [sys.executable, "-m", "drill", "flows", "check", str(RUNBOOKS / "dc1-to-dc2.yml"),
         "--catalog", str(RUNBOOKS / "catalog.json"), "--evacuate", "dc1"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "[required] auth@dc2 -> settlement@dc1 tcp/8300: settlement has no instance outside dc1"
        in done.stdout
    ), done.stdout
