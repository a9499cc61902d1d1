"""The console summary keeps whole names: in a log (no terminal) and in a narrow terminal.

Before, a table fitted to 80 columns cut names to ``client-to-ser…`` in CI logs.
"""

from __future__ import annotations

import io
from dataclasses import replace

from rich.console import Console

from drill.engine.records import RunRecord
from drill.report.console import ConsoleObserver
from drill.report.example import example_record

LONG_STEP = "drain-dc1-edge-with-the-graceful-shutdown-community-on-every-session"
LONG_PROBE = "client-to-server-icmp-through-the-whole-switchover"


def long_named_record() -> RunRecord:
    record = example_record()
    steps = [replace(record.steps[0], name=LONG_STEP), *record.steps[1:]]
    probes = [replace(record.probes[0], name=LONG_PROBE), *record.probes[1:]]
    return replace(record, steps=steps, probes=probes)


def summary(console: Console, buffer: io.StringIO) -> list[str]:
    ConsoleObserver(console).summary(long_named_record())
    return buffer.getvalue().splitlines()


def test_without_a_terminal_every_name_is_whole_on_one_line() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, color_system=None)  # what a CI log gets
    assert not console.is_terminal
    lines = summary(console, buffer)
    text = "\n".join(lines)
    assert "…" not in text
    assert [ln for ln in lines if LONG_STEP in ln and "ok" in ln]
    assert [ln for ln in lines if LONG_PROBE in ln and "icmp" in ln]
    for name in ("traffic-via-dc2", "restore-matches-snapshot", "web"):
        assert name in text
    assert not [ln for ln in lines if LONG_STEP in ln and ln != ln.rstrip()]


def test_in_a_narrow_terminal_names_fold_but_are_never_cut() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=True, color_system=None)
    lines = summary(console, buffer)
    assert "…" not in "\n".join(lines)
    assert max(len(ln) for ln in lines) <= 80
    assert LONG_STEP[:10] in "\n".join(lines)
