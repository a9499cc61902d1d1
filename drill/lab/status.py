"""``drill lab status``: one JSON-able report of a lab, and its text rendering."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from drill.lab import health
from drill.lab.isolation import isolation_remaining
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
        "faults": [_fault(lab, asdict(f)) for f in (state.faults if state else [])],
        "problems": problems,
    }


def _fault(lab: Lab, fault: dict[str, Any]) -> dict[str, Any]:
    """A fault as recorded; a site cut also with the seconds its lab timer has left, read
    from the namespaces (0.0: lifted by itself)."""
    if fault["kind"] == "site":
        fault["remaining"] = isolation_remaining(lab, fault["target"])
    return fault


def render_fault(fault: dict[str, Any]) -> str:
    """One fault for the status line; a site cut says whether its timer has lifted it.

    >>> render_fault({"kind": "site", "target": "dc1", "mode": "blackhole", "remaining": 0.0})
    'site dc1 blackhole expired (lifted by the lab timer)'
    >>> render_fault({"kind": "site", "target": "dc1", "mode": "blackhole", "remaining": 3.46})
    'site dc1 blackhole (lifts in 3.5 s)'
    """
    text = f"{fault['kind']} {fault['target']} {fault['mode']}"
    remaining = fault.get("remaining")
    if fault["kind"] != "site" or remaining is None:
        return text
    if remaining <= 0:
        return f"{text} expired (lifted by the lab timer)"
    return f"{text} (lifts in {remaining:.1f} s)"


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
    lines.append("faults: " + (", ".join(render_fault(f) for f in faults) if faults else "none"))
    lines += [f"problem: {p}" for p in report["problems"]]
    return "\n".join(lines)
