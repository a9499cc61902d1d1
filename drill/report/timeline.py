"""The report's timeline chart: what users felt, step by step, as one inline SVG.

Time runs along x in seconds since the run started. Every step is one shaded band across
the whole chart (one SVG group ``step-band-N`` per step, N its number in the steps table),
coloured by phase, with its number and name in the lane on top; rollback and verify phases
are also named over their span. Each probe gets two rows: the share of packets/requests lost
per bin and the round-trip time per bin (mean, and the bin's maximum as a thin line).

matplotlib draws it (Agg, no display); text becomes glyph outlines (``svg.fonttype: path``),
so the chart needs no font where it is opened, and untrusted names never become SVG text.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from typing import Any, cast

log = logging.getLogger(__name__)

PHASE_COLOURS = {
    "precheck": "#9aa5b1",
    "step": "#4c8bd6",
    "postcheck": "#3fa36b",
    "rollback": "#e08a2c",
    "verify": "#8e5cc4",
    "isolate": "#555555",
}
MARKED_PHASES = ("isolate", "rollback", "verify")  # also named over their span in the lane
LOSS_COLOUR = "#d62728"
RTT_COLOUR = "#1f4e79"
LABEL_CHARS = 32
LABEL_SPACING = 0.02  # of the chart's width between two step labels: rotated, they never touch
WIDTH_IN = 11.0
MAX_COLUMNS = 1200  # round-trip columns across the chart: about one per pixel
STRIP = 0.16  # height of the phase strip at the foot of the label lane (lane units)


@dataclass(frozen=True)
class Band:
    number: int
    name: str
    phase: str
    status: str
    start_s: float  # seconds since the run started
    end_s: float


@dataclass
class Series:
    """One probe's bins, times in seconds since the run started."""

    name: str
    kind: str
    bin_s: float
    t: list[float] = field(default_factory=list)
    loss_pct: list[float] = field(default_factory=list)
    rtt_avg_ms: list[float] = field(default_factory=list)  # NaN where nothing was answered
    rtt_max_ms: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Timeline:
    duration_s: float
    bands: list[Band]
    series: list[Series]


def render_svg(timeline: Timeline) -> str:
    """The chart as an SVG element ready to be inlined in HTML (no prolog, no comments)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    with matplotlib.rc_context(cast(Any, _RC)):
        rows = max(1, 2 * len(timeline.series))
        height = 1.5 + 1.25 * rows
        fig = Figure(figsize=(WIDTH_IN, height))
        lane_h = 1.2 / height
        top, bottom = 1.0 - 0.12 / height, 0.55 / height
        lane = fig.add_axes((0.07, top - lane_h, 0.86, lane_h))
        grid = fig.add_gridspec(rows, 1, left=0.07, right=0.93, top=top - lane_h - 0.02,
                                bottom=bottom, hspace=0.35)  # fmt: skip
        axes = [fig.add_subplot(grid[i, 0], sharex=lane) for i in range(rows)]
        for ax in axes:
            ax.set_facecolor("none")  # the step bands are drawn beneath
        _draw_lane(lane, timeline)
        if timeline.series:
            for index, series in enumerate(timeline.series):
                _draw_loss(axes[2 * index], series)
                _draw_rtt(axes[2 * index + 1], series)
        else:
            axes[0].text(0.5, 0.5, "no probe data recorded for this run", ha="center",
                         va="center", transform=axes[0].transAxes, color="#555")  # fmt: skip
            axes[0].set_yticks([])
        for ax in axes[:-1]:
            ax.tick_params(labelbottom=False)
        axes[-1].set_xlabel("seconds since the run started")
        lane.set_xlim(0.0, max(timeline.duration_s, 1e-3))
        _draw_bands(fig, lane, axes[-1], timeline.bands)
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata=_NO_METADATA)
    return _inline(buffer.getvalue())


_RC: dict[str, Any] = {
    "svg.fonttype": "path",
    "svg.hashsalt": "drill-report",  # stable ids: the same run gives the same file
    "font.family": "DejaVu Sans",  # shipped inside matplotlib
    "font.size": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "path.simplify": True,
}
# No metadata block: it would carry links (rdf:resource) and a creation date.
_NO_METADATA: dict[str, str | None] = {"Creator": None, "Date": None, "Format": None, "Type": None}


def _draw_lane(lane: object, timeline: Timeline) -> None:
    from matplotlib.axes import Axes
    from matplotlib.patches import Rectangle

    assert isinstance(lane, Axes)
    lane.set_facecolor("none")
    lane.set_ylim(0.0, 1.0)
    lane.set_yticks([])
    lane.tick_params(labelbottom=False, bottom=False)
    for spine in ("left", "bottom"):
        lane.spines[spine].set_visible(False)
    for band in _labelled(timeline.bands, timeline.duration_s * LABEL_SPACING):
        middle = (band.start_s + band.end_s) / 2.0
        lane.text(middle, STRIP + 0.03, _label(band), rotation=55, ha="left", va="bottom",
                  fontsize=6.5, color="#222", rotation_mode="anchor", clip_on=False)  # fmt: skip
    for phase in MARKED_PHASES:
        spans = [b for b in timeline.bands if b.phase == phase]
        if not spans:
            continue
        start, end = min(b.start_s for b in spans), max(b.end_s for b in spans)
        colour = PHASE_COLOURS[phase]
        lane.add_patch(Rectangle((start, 0.0), end - start, STRIP, facecolor=colour, lw=0))
        lane.text((start + end) / 2.0, STRIP / 2.0, phase.upper(), color="white", fontsize=6,
                  fontweight="bold", ha="center", va="center", clip_on=True)  # fmt: skip


def _labelled(bands: list[Band], spacing: float) -> list[Band]:
    """The bands whose label fits: one at least ``spacing`` after the last label drawn, and
    always a failed step's. Steps too short to label are still drawn, and numbered in the
    steps table.

    >>> b = [Band(n, "s", "step", "ok", t, t + 0.1) for n, t in ((1, 0.0), (2, 0.1), (3, 5.0))]
    >>> [x.number for x in _labelled(b, 1.0)]
    [1, 3]
    """
    kept: list[Band] = []
    last = -float("inf")
    for band in bands:
        middle = (band.start_s + band.end_s) / 2.0
        if middle - last >= spacing or band.status in ("failed", "interrupted"):
            kept.append(band)
            last = middle
    return kept


def _label(band: Band) -> str:
    name = band.name if len(band.name) <= LABEL_CHARS else band.name[: LABEL_CHARS - 1] + "…"
    flag = "" if band.status == "ok" else f" [{band.status}]"
    return f"{band.number}. {name}{flag}"


def _draw_bands(fig: object, lane: object, last: object, bands: list[Band]) -> None:
    """One rectangle per step from the lane's foot to the last axes' foot: x in data
    coordinates, y in figure coordinates, so a step is one element however many rows."""
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle
    from matplotlib.transforms import blended_transform_factory

    assert isinstance(fig, Figure) and isinstance(lane, Axes) and isinstance(last, Axes)
    transform = blended_transform_factory(lane.transData, fig.transFigure)
    y0 = last.get_position().y0
    y1 = lane.get_position().y0
    for band in bands:
        colour = PHASE_COLOURS.get(band.phase, "#999999")
        failed = band.status not in ("ok", "skipped")
        rect = Rectangle(
            (band.start_s, y0),
            max(band.end_s - band.start_s, 0.0),
            y1 - y0,
            transform=transform,
            facecolor=colour,
            alpha=0.18,
            edgecolor=LOSS_COLOUR if failed else colour,
            linewidth=1.2 if failed else 0.4,
            hatch="//" if failed else None,
            zorder=-1,  # under the axes, whose faces are transparent
        )
        rect.set_gid(f"step-band-{band.number}")
        fig.add_artist(rect)


def _draw_loss(ax: object, series: Series) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    if series.t:
        t, loss = _runs(series.t, series.loss_pct, series.bin_s)
        ax.fill_between(t, loss, step="post", color=LOSS_COLOUR, lw=0.6, alpha=0.85)
    ax.set_ylim(0.0, 105.0)
    ax.set_yticks([0, 50, 100])
    unit = "packets" if series.kind == "packet" else "requests"
    ax.set_ylabel("loss %", fontsize=7)
    _title(ax, f"{series.name}: {unit} lost per {series.bin_s * 1000:g} ms bin")


def _draw_rtt(ax: object, series: Series) -> None:
    from matplotlib.axes import Axes

    assert isinstance(ax, Axes)
    if series.t:
        t, avg, top = _columns(series)
        ax.plot(t, top, drawstyle="steps-post", color=RTT_COLOUR, lw=0.4, alpha=0.45,
                label="max")  # fmt: skip
        ax.plot(t, avg, drawstyle="steps-post", color=RTT_COLOUR, lw=0.9, label="mean")
        ax.legend(loc="upper right", fontsize=6, frameon=False, ncols=2)
    ax.set_ylim(bottom=0.0)
    ax.set_ylabel("RTT ms", fontsize=7)
    _title(ax, f"{series.name}: round-trip time per bin")


def _title(ax: Any, text: str) -> None:
    # A plain text, not set_title: matplotlib would measure every tick label to place it.
    ax.text(0.0, 1.02, text, transform=ax.transAxes, fontsize=8, ha="left", va="bottom")


def _runs(t: list[float], y: list[float], width: float) -> tuple[list[float], list[float]]:
    """Keep a step only where the value changes: lossless for a step plot, and a drill is
    mostly bins without loss. A last point closes the final bin.

    >>> _runs([0.0, 0.01, 0.02, 0.03], [0.0, 0.0, 100.0, 0.0], 0.01)
    ([0.0, 0.02, 0.03, 0.04], [0.0, 100.0, 0.0, 0.0])
    """
    keep_t, keep_y = [t[0]], [y[0]]
    for when, value in zip(t[1:], y[1:], strict=True):
        if value != keep_y[-1]:
            keep_t.append(when)
            keep_y.append(value)
    keep_t.append(t[-1] + width)
    keep_y.append(y[-1])
    return keep_t, keep_y


def _columns(series: Series) -> tuple[Any, Any, Any]:
    """Round-trip times folded into at most MAX_COLUMNS columns (about one per pixel):
    the mean of the bins' means and the maximum of their maxima, so no spike is lost."""
    import numpy as np

    t = np.asarray(series.t, dtype=float)
    avg = np.asarray(series.rtt_avg_ms, dtype=float)
    top = np.asarray(series.rtt_max_ms, dtype=float)
    span = float(t[-1] - t[0]) + series.bin_s
    width = max(series.bin_s, span / MAX_COLUMNS)
    if width <= series.bin_s:
        return t, avg, top
    index = np.floor((t - t[0]) / width).astype(np.int64)
    starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
    answered = ~np.isnan(avg)
    sums = np.add.reduceat(np.where(answered, avg, 0.0), starts)
    seen = np.add.reduceat(answered.astype(np.int64), starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(seen > 0, sums / np.maximum(seen, 1), np.nan)
    maxima = np.maximum.reduceat(np.where(np.isnan(top), -np.inf, top), starts)
    maxima = np.where(np.isinf(maxima), np.nan, maxima)
    return t[0] + index[starts] * width, means, maxima


_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_SIZE = re.compile(r'\s(width|height)="[^"]*"')


def _inline(svg: str) -> str:
    """Drop the XML prolog and DOCTYPE (a DTD link) and comments (matplotlib escapes them,
    but nobody needs them), and let CSS size the chart from its viewBox."""
    svg = _PROLOG.sub("", svg, count=1)
    svg = _COMMENT.sub("", svg)
    head, sep, rest = svg.partition(">")
    head = _SIZE.sub("", head)
    return f'{head} class="timeline" role="img" aria-label="timeline of the drill"{sep}{rest}'
