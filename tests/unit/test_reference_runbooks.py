"""The runbooks shipped in runbooks/ validate, and their plans show what will really run."""

from __future__ import annotations

from pathlib import Path

import pytest

from drill.engine.plan import build_plan
from drill.runbook.loader import load_runbook

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"


@pytest.mark.parametrize("name", ["dc1-to-dc2", "dc2-to-dc1", "dc1-to-dc2-broken"])
def test_reference_runbook_validates(name: str) -> None:
    loaded = load_runbook(RUNBOOKS / f"{name}.yml")
    assert loaded.model.name == name
    assert loaded.model.probes, "the reference drills measure what users feel"


def test_plan_names_vantage_points_and_rendered_targets() -> None:
    plan = build_plan(load_runbook(RUNBOOKS / "dc1-to-dc2.yml"))
    by_name = {step.name: step for step in plan.steps}
    http = by_name["service-answers-from-app1"]
    assert http.hosts == ["netns:two-dc-client"]
    assert http.detail == "http http://192.0.2.10/"
    trace = by_name["service-to-client-avoids-dc1"]
    assert (trace.hosts, trace.detail) == (["netns:two-dc-app2"], "traceroute 203.0.113.10")


def test_broken_variant_injects_its_mistake_first_and_rolls_it_back_last() -> None:
    plan = build_plan(load_runbook(RUNBOOKS / "dc1-to-dc2-broken.yml"))
    steps = [s for s in plan.steps if s.phase.value == "step"]
    assert steps[0].name == "inject-stale-filter-on-dc2-edge"
    assert plan.rollback[-2].startswith("inject-stale-filter-on-dc2-edge:")
