"""``drill lab status``: one JSON-able report of a lab, and its text rendering."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from drill.lab import health
from drill.lab.lab import Lab
from drill.lab.netns import existing_netns
from drill.lab.privileges import require_root
from drill.lab.state import load_state

log = logging.getLogger(__name__)


def lab_status(lab: Lab) -> dict[str, Any]:
    require_root("drill lab status")
    state = load_state(lab.plan)
    present = existing_netns()
    up = state is not None and all(n.netns in present for n in lab.plan.nodes.values())
    nodes: dict[str, Any] = {}
    problems: list[str] = []
    if up:
        readings = health.read_lab(lab.plan)
        problems = health.problems(lab.plan, readings)
        for name, reading in readings.items():
            plan = lab.plan.nodes[name]
            nodes[name] = {
                "kind": plan.kind,
                "netns": plan.netns,
                "mgmt": str(plan.mgmt.ip) if plan.mgmt else None,
                **{k: v for k, v in asdict(reading).items() if k != "node"},
            }
    return {
        "lab": lab.name,
        "topology": str(lab.plan.topology_path),
        "up": up,
        "converged": up and not problems,
        "nodes": nodes,
        "faults": [asdict(f) for f in (state.faults if state else [])],
        "problems": problems,
    }


def _cell_bgp(node: dict[str, Any]) -> str:
    peers = node["bgp"]
    if not peers:
        return "-"
    up = sum(1 for s in peers.values() if s == "Established")
    return f"{up}/{len(peers)} Established"


def _cell_bfd(node: dict[str, Any]) -> str:
    peers = node["bfd"]
    return f"{sum(1 for s in peers.values() if s == 'up')}/{len(peers)} up" if peers else "-"


def _cell_vrrp(node: dict[str, Any]) -> str:
    groups = node["vrrp"]
    return " ".join(f"{g['vrid']}:{g['state']}" for g in groups) if groups else "-"


def render_status(report: dict[str, Any]) -> str:
    if not report["up"]:
        return f"lab {report['lab']}: down"
    state = "converged" if report["converged"] else "up, NOT converged"
    lines = [f"lab {report['lab']}: {state}"]
    header = ("NODE", "MGMT", "DAEMONS", "BGP", "BFD", "VRRP")
    rows = [header]
    for name, node in report["nodes"].items():
        if node["kind"] == "bridge":
            rows.append((name, "-", "(bridge)", "-", "-", "-"))
            continue
        daemons = " ".join(d if ok else f"{d}(DEAD)" for d, ok in node["daemons"].items()) or "-"
        mgmt = (node["mgmt"] or "-") + ("" if node["sshd"] else " (no ssh)")
        rows.append((name, mgmt, daemons, _cell_bgp(node), _cell_bfd(node), _cell_vrrp(node)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    faults = report["faults"]
    lines.append(
        "faults: "
        + (
            ", ".join(f"{f['kind']} {f['target']} {f['mode']}" for f in faults)
            if faults
            else "none"
        )
    )
    lines += [f"problem: {p}" for p in report["problems"]]
    return "\n".join(lines)
