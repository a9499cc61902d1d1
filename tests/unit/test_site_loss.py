"""Unplanned site loss without a lab: the fault step's model, validation, plan and rollback,
the derivation of the physical bound and the measured RTO inside the failure window."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError

from drill.engine.events import StepKey
from drill.engine.plan import build_plan
from drill.engine.records import Outage, Phase, ProbeResult, RunRecord, StepRecord, StepStatus
from drill.engine.rollback import Executed, actions_for
from drill.errors import InputError
from drill.report.report import build_report
from drill.runbook.loader import load_runbook
from drill.runbook.model import FaultStep, RtoBound, Runbook
from drill.runbook.rto import bound_s, bound_terms, rto_plan, vrrp_master_down_s
from drill.steps import fault, run_step

REPO = Path(__file__).resolve().parents[2]
KEY = StepKey(phase=Phase.STEP, index=1, name="k")
LAB = REPO / "labs" / "two-dc"

# --- the bound ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bound", "terms", "total"),
    [
        (
            {"bfd": {"interval": "100ms", "multiplier": 3}, "vrrp": {"advert": "100ms"},
             "plus": "200ms"},
            {"bfd_detect_s": 0.3, "vrrp_master_down_s": 0.360938, "plus_s": 0.2},
            0.560938,
        ),
        # BFD slower than VRRP: BFD decides
        (
            {"bfd": {"interval": "300ms", "multiplier": 3}, "vrrp": {"advert": "100ms"}},
            {"bfd_detect_s": 0.9, "vrrp_master_down_s": 0.360938, "plus_s": 0.0},
            0.9,
        ),
        # VRRP defaults (1 s adverts) at priority 200: skew (256-200)/256 s
        ({"vrrp": {"advert": "1s", "priority": 200}}, {"vrrp_master_down_s": 3.21875,
                                                       "plus_s": 0.0}, 3.21875),
        ({"bgp_hold": "9s", "plus": "1s"}, {"bgp_hold_s": 9.0, "plus_s": 1.0}, 10.0),
    ],
)  # fmt: skip
def test_bound_is_the_slowest_detection_plus_what_follows(
    bound: dict[str, Any], terms: dict[str, float], total: float
) -> None:
    derived = bound_terms(RtoBound.model_validate(bound))
    assert derived == terms
    assert bound_s(derived) == pytest.approx(total)


def test_vrrp_master_down_follows_rfc_5798() -> None:
    assert vrrp_master_down_s(1.0, 100) == pytest.approx(3 + 156 / 256)
    assert vrrp_master_down_s(0.1, 254) == pytest.approx(0.3 + 0.2 / 256)


def test_a_bound_needs_a_detection_and_rto_stays_a_duration_too() -> None:
    with pytest.raises(ValidationError, match="at least one of bfd, vrrp, bgp_hold"):
        RtoBound.model_validate({"plus": "200ms"})
    plain = Runbook.model_validate({"apiVersion": "drill/v1", "name": "x", "rto": "30s"})
    assert rto_plan(plain).target_s == 30.0 and rto_plan(plain).bound_s is None
    fixed = Runbook.model_validate(
        {"apiVersion": "drill/v1", "name": "x", "rto": {"bound": "800ms", "after": "cut"}}
    )
    plan = rto_plan(fixed)
    assert (plan.bound_s, plan.after, plan.target_s, plan.bound_terms) == (0.8, "cut", None, {})


# --- measured inside the failure window ---------------------------------------------------

T0 = 1_800_000_000.0


def _step(name: str, start: float, end: float) -> StepRecord:
    started = datetime.fromtimestamp(T0 + start, UTC)
    return StepRecord(name, "fault", Phase.STEP, StepStatus.OK, started,
                      datetime.fromtimestamp(T0 + end, UTC))  # fmt: skip


def _record(outages: list[Outage], rto: dict[str, Any], steps: list[StepRecord]) -> RunRecord:
    model = Runbook.model_validate({"apiVersion": "drill/v1", "name": "x", "rto": rto})
    plan = rto_plan(model)
    icmp = ProbeResult("icmp", "packet", 1000.0, 100000, 0, 0.0, outages=outages)
    web = ProbeResult("web", "service", 50.0, 500, 0, 2000.0)
    now = datetime.fromtimestamp(T0, UTC)
    return RunRecord("r", "x", "x.yml", "0" * 64, "unplanned", False, "op", None, now, now,
                     steps=steps, probes=[icmp, web], rto_target_s=plan.target_s,
                     rto=plan)  # fmt: skip


def _gap(start: float, ms: float) -> Outage:
    """An outage whose gap is ``ms`` at 1,000/s, starting ``start`` s after T0."""
    return Outage(T0 + start, T0 + start + ms / 1000 + 0.001, int(ms))


RTO = {
    "target": "5s",
    "probe": "icmp",
    "after": "cut",
    "before": "failback",
    "bound": {"bfd": {"interval": "100ms"}, "vrrp": {"advert": "100ms"}, "plus": "200ms"},
}
STEPS = [_step("warm-up", 0, 10), _step("cut", 10, 10.3), _step("wait", 10.3, 20),
         _step("failback", 20, 30)]  # fmt: skip


def test_measured_rto_is_the_longest_interruption_in_the_failure_window() -> None:
    outages = [
        _gap(5.0, 900.0),  # before the fault: not the drill's doing
        _gap(10.0, 380.0),  # the site loss (starts with the last packet before the cut)
        _gap(12.0, 15.0),
        _gap(21.0, 700.0),  # during the failback: not the failover
    ]
    report = build_report(_record(outages, RTO, STEPS))
    rto = report["rto"]
    assert rto["measured_s"] == pytest.approx(0.38)
    assert rto["bound_s"] == pytest.approx(0.560938)
    assert rto["ratio_to_bound"] == pytest.approx(0.38 / 0.560938, abs=0.001)
    assert rto["met"] is True
    assert (rto["probe"], rto["after_step"], rto["before_step"]) == ("icmp", "cut", "failback")
    assert rto["bound_terms"]["vrrp_master_down_s"] == pytest.approx(0.360938)


def test_no_loss_in_the_window_measures_zero_and_a_missing_fault_step_measures_nothing() -> None:
    assert build_report(_record([_gap(5.0, 900.0)], RTO, STEPS))["rto"]["measured_s"] == 0.0
    never_cut = [s for s in STEPS if s.name != "cut"]
    rto = build_report(_record([_gap(10.0, 380.0)], RTO, never_cut))["rto"]
    assert (rto["measured_s"], rto["ratio_to_bound"], rto["met"]) == (None, None, None)


def test_without_a_probe_name_the_window_reads_the_service_probes() -> None:
    record = _record([_gap(10.0, 900.0)], {"after": "cut", "bound": "1s"}, STEPS)
    web = record.probes[1]
    web.outages = [Outage(T0 + 10.0, T0 + 10.52, 25)]  # 20 ms interval: a 500 ms gap
    rto = build_report(record)["rto"]
    assert rto["measured_s"] == pytest.approx(0.5)  # the ICMP probe's 900 ms is not read
    assert rto["ratio_to_bound"] == pytest.approx(0.5)


# --- the fault step ------------------------------------------------------------------------


def test_fault_step_model() -> None:
    raw = {"name": "cut", "kind": "fault", "lab": "l", "action": "blackhole",
           "nodes": ["dc1-edge", "app1"]}  # fmt: skip
    step = FaultStep.model_validate(raw)
    assert fault.targets(step) == [("node", "dc1-edge"), ("node", "app1")]
    assert step.rollback == "auto"
    with pytest.raises(ValidationError, match="needs 'nodes' or 'links'"):
        FaultStep.model_validate({"name": "c", "kind": "fault", "lab": "l", "action": "down"})
    FaultStep.model_validate({"name": "c", "kind": "fault", "lab": "l", "action": "clear"})


def _runbook(tmp_path: Path, step: str) -> Path:
    path = tmp_path / "site.yml"
    path.write_text(
        "apiVersion: drill/v1\nname: site\nmode: unplanned\nsteps:\n"
        f"  - {{name: cut, kind: fault, lab: {LAB}, action: blackhole, {step}}}\n"
    )
    return path


def test_validation_names_an_unknown_node_or_link_where_it_is(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_runbook(_runbook(tmp_path, "nodes: [dc1-edge, dc1-egde], links: ['wan:app1']"))
    lines = [str(d) for d in caught.value.diagnostics]
    assert any(
        ":5:" in line and "no node 'dc1-egde' in lab two-dc (did you mean 'dc1-edge'?)" in line
        for line in lines
    ), lines
    assert any("no link `wan:app1` in lab two-dc" in line for line in lines), lines
    loaded = load_runbook(_runbook(tmp_path, "nodes: [dc1-edge, app1]"))
    assert loaded.model.steps[0].kind == "fault"  # type: ignore[union-attr]


def test_validation_refuses_a_missing_lab(tmp_path: Path) -> None:
    path = tmp_path / "site.yml"
    path.write_text(
        "apiVersion: drill/v1\nname: site\nsteps:\n"
        "  - {name: cut, kind: fault, lab: no-such-lab, action: blackhole, nodes: [a]}\n"
    )
    with pytest.raises(InputError) as caught:
        load_runbook(path)
    assert "lab 'no-such-lab'" in str(caught.value.diagnostics[0])


def test_plan_and_rollback_of_a_fault_step() -> None:
    loaded = load_runbook(REPO / "runbooks" / "dc1-site-loss.yml")
    plan = build_plan(loaded)
    cut = next(s for s in plan.steps if s.name == "dc1-dies")
    assert cut.detail == "lab ../labs/two-dc: blackhole node dc1-edge, node app1"
    assert "dc1-dies: clear the faults it injected (lab ../labs/two-dc)" in plan.rollback
    assert not any(line.startswith("dc1-returns:") for line in plan.rollback)

    steps = {s.name: s for s in loaded.model.steps}
    ran = Executed(
        StepKey(phase=Phase.STEP, index=1, name="dc1-dies"),
        steps["dc1-dies"],
        StepRecord("dc1-dies", "fault", Phase.STEP),
    )
    actions = actions_for(ran, [], loaded.hosts_for, run_step)
    assert [a.name for a in actions] == ["clear faults of 'dc1-dies'"]
    skipped = StepRecord("dc1-dies", "fault", Phase.STEP, StepStatus.SKIPPED)
    assert actions_for(Executed(KEY, steps["dc1-dies"], skipped), [], loaded.hosts_for,
                       run_step) == []  # fmt: skip
    clear = Executed(KEY, steps["dc1-returns"], StepRecord("dc1-returns", "fault", Phase.STEP))
    assert actions_for(clear, [], loaded.hosts_for, run_step) == []


def test_fault_step_failure_is_a_failed_step_not_a_crash(tmp_path: Path) -> None:
    step = FaultStep.model_validate({"name": "cut", "kind": "fault", "lab": "missing",
                                     "action": "blackhole", "nodes": ["x"]})  # fmt: skip
    ctx: Any = SimpleNamespace(runbook=SimpleNamespace(path=tmp_path / "r.yml"))
    outcome = fault.run(step, ctx, [])
    assert not outcome.ok
    assert outcome.message is not None and outcome.message.startswith("lab missing: ")


def test_console_summary_shows_the_bound_and_lost_sessions() -> None:
    import io

    from rich.console import Console

    from drill.engine.records import SessionLoss, SessionStats
    from drill.report.console import ConsoleObserver

    record = _record([_gap(10.0, 380.0)], RTO, STEPS)
    loss = SessionLoss(4, at=T0 + 10.05, detected=T0 + 13.05, reason="stalled")
    stats = SessionStats(requested=50, opened=50, losses=[loss])
    record.probes.append(ProbeResult("sess", "session", 500.0, 9000, 1, 20.0, sessions=stats))
    buffer = io.StringIO()
    ConsoleObserver(Console(file=buffer, width=200, color_system=None)).summary(record)
    text = buffer.getvalue()
    assert "measured 0.380 s, bound 0.561 s (x0.68)" in text
    assert "1/50 sessions" in text


@pytest.mark.parametrize(
    ("rto", "expected"),
    [
        ("{bound: {plus: 1s}}", "3:14: error: 'rto.bound': a bound needs at least one of bfd"),
        ("{bound: {vrrp: {advert: 1s, priority: 300}}}",
         "3:44: error: 'rto.bound.vrrp.priority': must be less than or equal to 254"),
        ("{target: 5s, bound: 1x}", "3:26: error: 'rto.bound': bad duration '1x'"),
        ("fast", "3:6: error: 'rto': bad duration 'fast'"),
    ],
)  # fmt: skip
def test_a_bad_rto_is_one_located_line(tmp_path: Path, rto: str, expected: str) -> None:
    path = tmp_path / "r.yml"
    path.write_text(f"apiVersion: drill/v1\nname: x\nrto: {rto}\n")
    with pytest.raises(InputError) as caught:
        load_runbook(path)
    lines = [str(d) for d in caught.value.diagnostics]
    assert len(lines) == 1 and expected in lines[0], lines
