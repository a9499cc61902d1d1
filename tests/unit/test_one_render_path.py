"""What validation rendered is what runs: for every shipped runbook, every config step and
every host, the text validation rendered (captured at drill.runbook.templates.render_in, the
one entry point) equals what the config step renders at run time from the nornir host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drill.cli.run_commands import nornir_for
from drill.runbook import templates
from drill.runbook.loader import load_runbook
from drill.runbook.model import ConfigStep
from drill.runbook.walk import iter_steps
from drill.steps.render import render_config

REPO = Path(__file__).resolve().parents[2]
INVENTORY = REPO / "labs" / "two-dc" / "inventory"
BOOKS = sorted((REPO / "runbooks").glob("*.yml"))


@pytest.mark.parametrize("book", BOOKS, ids=lambda p: p.name)
def test_validation_and_execution_render_the_same_text(
    book: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DRILL_LAB_PASSWORD", "not-used")
    validated: dict[tuple[str, str], str] = {}
    real = templates.render_in

    def spy(text: str, origin: Any, runbook: Any, vars_: Any, host: Any) -> str:
        out = real(text, origin, runbook, vars_, host)
        if host is not None:
            validated[(text, host["name"])] = out
        return out

    monkeypatch.setattr(templates, "render_in", spy)
    loaded = load_runbook(book, inventory_override=INVENTORY)
    monkeypatch.setattr(templates, "render_in", real)
    nr = nornir_for(loaded, 1)
    compared = 0
    for ref in iter_steps(loaded.model):
        step = ref.step
        if not isinstance(step, ConfigStep):
            continue
        text, _ = loaded.config_source(step)
        for host in loaded.hosts_for(step):
            executed = render_config(step, loaded, nr.inventory.hosts[host])
            assert executed == validated[(text, host)], (step.name, host)
            assert executed == loaded.render_config(step, host)
            compared += 1
    assert compared > 0
