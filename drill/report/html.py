"""report.html: one self-contained page an auditor or a change board opens.

Built from report.json's data plus the probes' per-bin files (drill.probes.bins): the top
says what an auditor needs (runbook and its hash, mode, who, change, approvals, times,
outcome, RTO, a one-sentence verdict), then the timeline chart (drill.report.timeline), the
steps with per-host results and diffs, the restore proof, the probes and the notes.

Self-contained means no request when opened: styles are inline, the chart is inline SVG with
text as outlines, there is no script, and no ``src``/``href`` points anywhere (URLs stay text).
Jinja2 autoescapes every value; only the chart is inserted as markup.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from drill.probes.bins import ProbeBins
from drill.report import timeline
from drill.report.html_view import ReportView, from_report
from drill.secrets import mask_secrets

log = logging.getLogger(__name__)

HTML_NAME = "report.html"

_OUTCOME_WORDS = {
    "succeeded": "SUCCEEDED",
    "dry_run": "DRY-RUN OK",
    "rolled_back": "FAILED, ROLLED BACK",
    "dry_run_failed": "DRY-RUN FAILED",
    "rollback_failed": "ROLLBACK INCOMPLETE",
    "stopped": "STOPPED",
    "precheck_failed": "PRECHECKS FAILED",
}


def render_html(
    report: Mapping[str, Any],
    bins: Mapping[str, ProbeBins] | None = None,
    *,
    source: str = "report.json",
    secrets: Iterable[str] = (),
) -> str:
    """The page for ``report`` (report.json's data), with ``bins`` by probe name."""
    view = from_report(dict(report), source=source)
    chart = timeline.render_svg(build_timeline(view, bins or {}, tuple(secrets)))
    template = _environment().get_template("report.html.j2")
    return template.render(
        view=view,
        verdict=verdict(view),
        outcome_words=_OUTCOME_WORDS.get(view.outcome or "", "NEVER FINISHED"),
        chart=Markup(chart),  # matplotlib's output: text as outlines, comments stripped
        phase_colours=timeline.PHASE_COLOURS,
        fmt_s=fmt_seconds,
        fmt_ms=fmt_ms,
    )


@functools.cache
def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("drill.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def build_timeline(
    view: ReportView, bins: Mapping[str, ProbeBins], secrets: tuple[str, ...] = ()
) -> timeline.Timeline:
    """Steps and probe bins in seconds since the run started."""
    origin = view.started_at
    if origin is None:
        return timeline.Timeline(0.0, [], [])
    series = [_series(data, origin, secrets) for _, data in sorted(bins.items())]
    end = view.duration_s
    if end is None:  # a run that never finished: as far as anything was recorded
        ends = [_since(origin, s.ended or s.started) for s in view.steps]
        ends += [s.t[-1] + s.bin_s for s in series if s.t]
        end = max((e for e in ends if e is not None), default=0.0)
    bands = []
    for step in view.steps:
        start = _since(origin, step.started)
        if start is None:
            continue  # never started: nothing to shade
        stop = _since(origin, step.ended)
        bands.append(timeline.Band(step.number, step.name, step.phase, step.status, start,
                                   stop if stop is not None else end))  # fmt: skip
    return timeline.Timeline(end, bands, series)


def _series(data: ProbeBins, origin: datetime, secrets: tuple[str, ...]) -> timeline.Series:
    head = data.header
    out = timeline.Series(mask_secrets(head.probe, secrets), head.kind, head.bin_s)
    base = origin.timestamp()
    for b in data.bins:
        out.t.append(round(b.t - base, 6))
        out.loss_pct.append(100.0 * b.lost / b.sent if b.sent else 0.0)
        out.rtt_avg_ms.append(b.rtt_avg_ms if b.rtt_avg_ms is not None else math.nan)
        out.rtt_max_ms.append(b.rtt_max_ms if b.rtt_max_ms is not None else math.nan)
    return out


def _since(origin: datetime, stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - origin).total_seconds()


def verdict(view: ReportView) -> str:
    """The run in one sentence, for the top of the page."""
    failed = next(
        (s for s in view.steps if s.status in ("failed", "interrupted") and s.phase != "verify"),
        None,
    )
    where = f" at {failed.phase} {failed.number} '{failed.name}'" if failed else ""
    if view.isolation is not None and view.isolation.hidden:
        where += f" (hidden dependency: {', '.join(view.isolation.hidden)})"
    not_exact = [r.host for r in view.restore if not r.exact]
    sentences = {
        "succeeded": "The drill succeeded: every step and postcheck passed",
        "dry_run": "Dry-run clean: every change would have applied and every check passed; "
        "nothing was committed",
        "rolled_back": f"The drill failed{where} and was rolled back; every changed device "
        "was restored exactly",
        "dry_run_failed": f"The dry-run found a problem{where}; nothing was changed",
        "rollback_failed": f"The drill failed{where} and the rollback did NOT restore "
        f"every device ({', '.join(not_exact) or 'see notes'}): operator action needed",
        "stopped": f"The drill stopped on purpose{where}; devices may be left changed (see notes)",
        "precheck_failed": f"Prechecks failed{where}; nothing was changed",
    }
    text = sentences.get(
        view.outcome or "",
        f"The run never finished (its process died{where}); devices may be left changed: "
        f"see notes, then 'drill resume {view.run_id}' or 'drill abort {view.run_id}'",
    )
    return text + _felt(view) + "."


def _felt(view: ReportView) -> str:
    if not view.probes:
        return ""
    worst = max(view.probes, key=lambda p: p.max_gap_ms or 0.0)
    if not (worst.max_gap_ms or worst.lost):
        clause = "; probes saw no loss"
    else:
        clause = f"; the longest interruption was {fmt_ms(worst.max_gap_ms)} ({worst.name})"
    if view.rto_met is True:
        clause += f", within the RTO of {fmt_seconds(view.rto_target_s)}"
    elif view.rto_met is False:
        clause += f", over the RTO of {fmt_seconds(view.rto_target_s)}"
    return clause


def fmt_seconds(value: float | None) -> str:
    """
    >>> fmt_seconds(41.877), fmt_seconds(0.5), fmt_seconds(None)
    ('41.877 s', '0.5 s', 'unknown')
    """
    return "unknown" if value is None else f"{value:g} s"


def fmt_ms(value: float | None) -> str:
    """
    >>> fmt_ms(409.0), fmt_ms(None)
    ('409 ms', 'unknown')
    """
    return "unknown" if value is None else f"{value:,.0f} ms"
