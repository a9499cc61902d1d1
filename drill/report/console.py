"""What the operator sees: a line per step and per host while the drill runs, then a
summary that says plainly what happened and what is left for a human to do.

Everything goes to the rich Console given (stderr, a file, or a recording console in
``--json`` mode); nothing is printed to stdout behind the caller's back. Every string from
devices and runbooks is written as plain text (never as rich markup: device output is full of
``[...]``) and passes through :func:`mask_secrets` first.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from drill.engine.events import (
    Event,
    HostDone,
    Note,
    RestoreChecked,
    SnapshotTaken,
    StateChanged,
    StepEnded,
    StepStarted,
)
from drill.engine.records import (
    HostResult,
    Outcome,
    RestoreResult,
    RunRecord,
    StepRecord,
    StepStatus,
)
from drill.names import printable, printable_lines
from drill.report.facts import (
    exit_code_for,
    measured_rto_s,
    restore_incomplete,
    rto_met,
    seconds_between,
    step_duration_s,
)
from drill.report.report import build_report
from drill.secrets import mask_secrets

log = logging.getLogger(__name__)

CONFIG_KIND = "config"
ISOLATE_KIND = "isolate"
_UNBOUNDED = 100_000  # columns: measure a table's natural width, as if the page had no edge

_OUTCOME_STYLE: dict[Outcome | None, str] = {
    Outcome.SUCCEEDED: "bold green",
    Outcome.DRY_RUN: "bold green",
    Outcome.ROLLED_BACK: "bold yellow",
    Outcome.DRY_RUN_FAILED: "bold yellow",
    Outcome.PRECHECK_FAILED: "bold yellow",
    Outcome.ROLLBACK_FAILED: "bold white on red",
    Outcome.STOPPED: "bold white on red",
    None: "bold white on red",
}
_OUTCOME_TEXT: dict[Outcome | None, str] = {
    Outcome.SUCCEEDED: "SUCCEEDED",
    Outcome.DRY_RUN: "DRY-RUN OK (nothing was changed)",
    Outcome.ROLLED_BACK: "FAILED, ROLLED BACK",
    Outcome.DRY_RUN_FAILED: "DRY-RUN FAILED (nothing was changed)",
    Outcome.PRECHECK_FAILED: "PRECHECKS FAILED (nothing was changed)",
    Outcome.ROLLBACK_FAILED: "ROLLBACK INCOMPLETE: OPERATOR ACTION NEEDED",
    Outcome.STOPPED: "STOPPED: OPERATOR ACTION NEEDED",
    None: "UNFINISHED: OPERATOR ACTION NEEDED",
}
_STATUS_STYLE = {
    StepStatus.OK: "green",
    StepStatus.FAILED: "bold red",
    StepStatus.SKIPPED: "dim",
    StepStatus.INTERRUPTED: "bold red",
}


def _clock(moment: datetime | None) -> str:
    return (moment or datetime.now(UTC)).astimezone(UTC).strftime("%H:%M:%S")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f} s"


class ConsoleObserver:
    """The engine's console observer. Safe to call from nornir worker threads: each event's
    lines are printed together under one lock, so hosts never interleave mid-message."""

    def __init__(
        self,
        console: Console | None = None,
        *,
        secrets: Iterable[str] = (),
        show_diffs: bool = True,
    ) -> None:
        self.console = console if console is not None else Console(stderr=True)
        self._secrets = tuple(secrets)
        self._show_diffs = show_diffs
        self._lock = threading.Lock()

    # --- live events ------------------------------------------------------------------

    def notify(self, event: Event) -> None:
        """The engine's Observer protocol (drill.engine.events.EventBus): routes each event
        to the method below. The summary is not printed here: the CLI calls
        :meth:`summary` once it has written the report, so it can name the files."""
        match event:
            case StepStarted(record=step):
                self.step_started(step)
            case HostDone(step=step, host=host, result=result):
                self.host_result(step, host, result)
            case StepEnded(record=step):
                self.step_ended(step)
            case StateChanged(source=old, dest=new):
                self.state_changed(old, new)
            case Note(text=text):
                self.note(text)
            case RestoreChecked(host=host, result=restore):
                self.restore_checked(host, restore)
            case SnapshotTaken(host=host, error=error) if error:
                self.note(f"{host}: no snapshot before the drill: {error}")
            case _:
                log.debug("console ignores %s", event.kind)

    def step_started(self, step: StepRecord) -> None:
        line = Text(f"{_clock(step.started)} ", style="dim")
        line.append(f"{step.phase.value:<9} ", style="cyan")
        line.append(self._mask(step.name), style="bold")
        line.append(f" ({step.kind})", style="dim")
        self._print(line)

    def host_result(self, step: StepRecord, host: str, result: HostResult) -> None:
        lines: list[Text] = []
        head = Text("           ")
        head.append(self._mask(host), style="bold")
        if result.failed:
            head.append("  FAILED", style="bold red")
            error = self._mask_lines(result.error or step.message or "no error message")
            lines.append(head)
            # in full: a truncated device error is what costs an hour at 3 a.m.
            lines.extend(Text(f"             {row}", style="red") for row in error.splitlines())
        elif step.kind == ISOLATE_KIND:
            # a flow that broke without failing the drill (dr: deferred): said, in full
            head.append("  reported", style="yellow")
            lines.append(head)
            rows = self._mask_lines(result.diff).splitlines()
            lines.extend(Text(f"             {row}", style="yellow") for row in rows)
        else:
            head.append("  changed" if result.changed else "  ok", style="green")
            lines.append(head)
        if self._show_diffs and step.kind == CONFIG_KIND and result.diff:
            lines.extend(self._diff_lines(result.diff))
        self._print(*lines)

    def step_ended(self, step: StepRecord) -> None:
        line = Text(f"{_clock(step.ended)} ", style="dim")
        line.append(f"{step.phase.value:<9} ", style="cyan")
        line.append(self._mask(step.name), style="bold")
        line.append(f" {step.status.value.upper()}", style=_STATUS_STYLE[step.status])
        duration = step_duration_s(step)
        if duration is not None:
            line.append(f" ({duration:.3f} s)", style="dim")
        if step.message:
            line.append(f": {self._mask(step.message)}")
        self._print(line)

    def state_changed(self, old: str, new: str) -> None:
        self._print(Text(f"{_clock(None)} state {old} -> {new}", style="dim"))

    def note(self, message: str) -> None:
        self._print(Text(f"NOTE: {self._mask(message)}", style="bold yellow"))

    def restore_checked(self, host: str, result: RestoreResult) -> None:
        line = Text(f"{_clock(None)} restore   ", style="dim")
        line.append(self._mask(host), style="bold")
        if result.exact:
            line.append("  exact", style="green")
            self._print(line)
            return
        line.append("  NOT EXACT: running config differs from the snapshot", style="bold red")
        self._print(line, *self._diff_lines(result.diff))

    # --- the end ----------------------------------------------------------------------

    def summary(self, record: RunRecord) -> None:
        """The human summary printed once the run is over."""
        c = self.console
        with self._lock:
            c.print()
            c.print(Rule(Text(f"drill {self._mask(record.runbook_name)}  run {record.run_id}")))
            c.print(self._outcome_line(record))
            c.print(self._facts_table(record))
            if record.probes:
                self._print_table(self._probe_table(record))
            if record.steps:
                self._print_table(self._step_table(record))
            if record.restore:
                for line in self._restore_lines(record):
                    c.print(line)
            for note in record.notes:
                c.print(Text(f"!!! {self._mask(note)}", style="bold white on red"))
            c.print(Rule())

    def _outcome_line(self, record: RunRecord) -> Text:
        line = Text("Outcome: ")
        line.append(_OUTCOME_TEXT[record.outcome], style=_OUTCOME_STYLE[record.outcome])
        line.append(f"  (exit code {int(exit_code_for(record.outcome))})", style="dim")
        return line

    def _facts_table(self, record: RunRecord) -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim")
        table.add_column()
        rows = [
            ("Runbook", f"{record.runbook_path} (sha256 {record.runbook_sha256[:12]})"),
            ("Mode", f"{record.mode}{'  DRY-RUN' if record.dry_run else ''}"),
            ("Change", record.change_id or "-"),
            ("Operator", record.operator),
            ("Duration", _seconds(seconds_between(record.started, record.ended))),
        ]
        for name, value in rows:
            table.add_row(Text(name), Text(self._mask(value)))
        table.add_row(Text("RTO"), self._rto_text(record))
        return table

    def _rto_text(self, record: RunRecord) -> Text:
        measured = measured_rto_s(record)
        target = record.rto_target_s
        text = Text(f"target {_seconds(target)}, measured ")
        if measured is None:
            why = "no measurement in the failure window" if record.rto.after else "no service probe"
            text.append(f"- ({why})", style="dim")
            return text
        text.append(_seconds(measured))
        if record.rto.bound_s:
            ratio = measured / record.rto.bound_s
            text.append(f", bound {_seconds(record.rto.bound_s)} (x{ratio:.2f})")
        met = rto_met(record)
        if met is True:
            text.append("  met", style="bold green")
        elif met is False:
            text.append("  MISSED", style="bold red")
        elif target is not None:
            text.append("  unknown: a service probe failed", style="bold yellow")
        return text

    def _probe_table(self, record: RunRecord) -> Table:
        table = Table(title="Probes", title_justify="left", show_edge=False)
        for column in ("probe", "kind", "rate/s", "sent", "lost", "longest interruption"):
            table.add_column(
                column,
                justify="left" if column in ("probe", "kind") else "right",
                overflow="fold",
            )
        table.add_column("worst step", overflow="fold")
        for probe in record.probes:
            worst = max(
                probe.by_step.items(),
                key=lambda item: item[1].get("max_gap_ms", 0.0),
                default=None,
            )
            worst_text = Text("-")
            if worst is not None and worst[1].get("max_gap_ms", 0.0) > 0:
                worst_text = Text(f"{self._mask(worst[0])} ({worst[1]['max_gap_ms']:.0f} ms)")
            gap = Text(f"{probe.max_gap_ms:.0f} ms")
            lost = Text(str(probe.lost), style="red" if probe.lost else "green")
            if probe.sessions is not None:
                st = probe.sessions
                lost = Text(f"{st.lost}/{st.opened} sessions", style="red" if st.lost else "green")
            if probe.error:
                gap.append(f"  ERROR: {self._mask(probe.error)}", style="bold red")
            table.add_row(
                Text(self._mask(probe.name)),
                Text(probe.kind),
                Text(f"{probe.rate:g}"),
                Text(str(probe.sent)),
                lost,
                gap,
                worst_text,
            )
        return table

    def _step_table(self, record: RunRecord) -> Table:
        table = Table(title="Steps", title_justify="left", show_edge=False)
        for column in ("phase", "step", "status", "time", "hosts", "message"):
            table.add_column(
                column, justify="right" if column == "time" else "left", overflow="fold"
            )
        for step in record.steps:
            failed = sorted(h for h, r in step.hosts.items() if r.failed)
            hosts = f"{len(step.hosts)}" + (f" ({len(failed)} failed)" if failed else "")
            table.add_row(
                Text(step.phase.value),
                Text(self._mask(step.name)),
                Text(step.status.value, style=_STATUS_STYLE[step.status]),
                Text(_seconds(step_duration_s(step))),
                Text(hosts if step.hosts else "local"),
                Text(self._mask(step.message or "")),
            )
        return table

    def _restore_lines(self, record: RunRecord) -> list[Text]:
        lines = [Text("Restore after rollback:", style="bold")]
        for host, result in sorted(record.restore.items()):
            line = Text(f"  {self._mask(host)}  ")
            if result.exact:
                line.append("exact (running config equals the snapshot)", style="green")
                lines.append(line)
                continue
            line.append("NOT EXACT: running config differs from the snapshot", style="bold red")
            lines.append(line)
            lines.extend(self._diff_lines(result.diff, indent="    "))
        incomplete = restore_incomplete(record)
        if incomplete:
            lines.append(
                Text(
                    f"!!! {len(incomplete)} host(s) not restored exactly: {', '.join(incomplete)}"
                    " - check them before closing the change",
                    style="bold white on red",
                )
            )
        return lines

    # --- helpers ----------------------------------------------------------------------

    def _mask(self, text: str) -> str:
        # Everything from inputs or devices: secrets out, control characters escaped.
        return printable(mask_secrets(text, self._secrets))

    def _mask_lines(self, text: str) -> str:
        return printable_lines(mask_secrets(text, self._secrets))

    def _diff_lines(self, diff: str, indent: str = "             ") -> list[Text]:
        styles = {"+": "green", "-": "red", "@": "cyan"}
        return [
            Text(f"{indent}{row}", style=styles.get(row[:1], ""))
            for row in self._mask_lines(diff).splitlines()
        ]

    def _print_table(self, table: Table) -> None:
        """A terminal gets the table fitted to its width (long names fold, never cut with
        an ellipsis). Anything else (a CI log, ``make demo > file``) has no width to fit:
        there the table is as wide as its content, so every name stays whole on one line
        and can be searched for."""
        console = self.console
        if console.is_terminal:
            console.print(table)
            return
        natural = console.measure(table, options=console.options.update_width(_UNBOUNDED))
        options = console.options.update_width(max(natural.maximum, console.width))
        for segments in console.render_lines(table, options, new_lines=False):
            line = Text()
            for seg in segments:
                line.append(seg.text, seg.style)
            line.rstrip()
            console.print(line, soft_wrap=True)

    def _print(self, *lines: Text) -> None:
        with self._lock:
            for line in lines:
                self.console.print(line, soft_wrap=True)


def json_summary(record: RunRecord, *, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """The short machine-readable summary ``drill run --json`` prints on stdout: the facts a
    pipeline branches on. The full evidence stays in report.json."""
    report = build_report(record, secrets=secrets)
    return {
        "run_id": report["run_id"],
        "runbook": report["runbook"]["name"],
        "outcome": report["outcome"],
        "exit_code": report["exit_code"],
        "dry_run": report["dry_run"],
        "started": report["started"],
        "ended": report["ended"],
        "duration_s": report["duration_s"],
        "rto": report["rto"],
        "probes": [
            {k: probe[k] for k in ("name", "kind", "sent", "lost", "max_gap_ms", "error")}
            for probe in report["probes"]
        ],
        "failed_steps": [
            {"phase": step["phase"], "name": step["name"], "message": step["message"]}
            for step in report["steps"]
            if step["status"] in ("failed", "interrupted")
        ],
        "restore": {host: result["exact"] for host, result in report["restore"].items()},
        "notes": report["notes"],
    }
