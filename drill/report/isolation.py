"""report.json's ``isolation`` section: the isolation rehearsal's cut and every generated flow
probe's verdict (docs/report.md, "isolation")."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from drill.engine.records import FlowOutcome, IsolationResult
from drill.report.facts import iso_utc


def isolation_fields(result: IsolationResult | None) -> dict[str, Any] | None:
    """None when the runbook has no ``isolate:`` phase or it never started."""
    if result is None:
        return None
    broken = [f for f in result.flows if f.fails_drill]
    return {
        "site": result.site,
        "means": result.means,
        "lab": result.lab or None,
        "catalog": result.catalog,
        "catalog_sha256": result.catalog_sha256 or None,
        "for_s": result.for_s,
        "cut_at": iso_utc(result.cut_at),
        "lifted_at": iso_utc(result.lifted_at),
        "lifted_by": result.lifted_by or None,
        "verdict": "fail" if result.failed else "ok",
        "hidden_dependencies": [f.flow for f in broken],
        "flows_probed": len(result.flows),
        "flows": [_flow(f) for f in result.flows],
        "unprobed": list(result.unprobed),
        "gone_with_site": result.gone_with_site,
        "probe_cpu_s": round(result.probe_cpu_s, 3),
        "problems": list(result.problems),
    }


def _flow(flow: FlowOutcome) -> dict[str, Any]:
    return {
        "flow": flow.flow,
        "tier": flow.tier,
        "status": flow.status,
        "fails_drill": flow.fails_drill,
        "headline": flow.headline,
        "probe": {
            "method": flow.method,
            "host": flow.host,
            "vantage": flow.vantage,
            "source": flow.source,
            "target": flow.target,
            "port": flow.port,
            "target_note": flow.target_note or None,
        },
        "before": asdict(flow.before),
        "during": {
            **asdict(flow.during),
            "failed_pct": _pct(flow.during.failed, flow.during.attempts),
        },
        "after": asdict(flow.after),
        "recovered_s": flow.recovered_s,
        "evidence": dict(flow.evidence),
    }


def _pct(failed: int, attempts: int) -> float:
    return round(100.0 * failed / attempts, 1) if attempts else 0.0
