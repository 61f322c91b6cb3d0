"""The digest's charts as PNG images (matplotlib, without pyplot: no global state, so
charts can be drawn in worker threads). Each is 640 px wide in the message, drawn at 1.5×
for sharp screens."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

from service.digest import formatting as fmt
from service.digest.model import ServiceWeek, TrendPoint

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTH_PX = 640
DPI = 150
PALETTE = 64
GREEN, RED, GREY, BLUE, ORANGE, INK = (
    "#2e7d32",
    "#c62828",
    "#9e9e9e",
    "#1f4e9c",
    "#e07b00",
    "#333333",
)


def _figure(height_in: float) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_PX / 100, height_in), dpi=DPI)
    fig.patch.set_facecolor("white")
    return fig


def _png(fig: Figure) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    FigureCanvasAgg(fig)
    drawn = io.BytesIO()
    fig.savefig(drawn, format="png", dpi=DPI, facecolor="white")
    # A palette of 64 colours keeps the anti-aliased text and a few flat colours: a chart of
    # fifty services weighs some 60 KB instead of 200 (mail gateways cap message sizes).
    drawn.seek(0)
    with Image.open(drawn) as image:
        palette = image.convert("RGB").quantize(colors=PALETTE, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    palette.save(out, format="PNG", optimize=True)
    return out.getvalue()


def _percent_axis(axis: object) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(  # type: ignore[attr-defined]
        FuncFormatter(lambda v, _pos: fmt.pct(v).replace(",0", ""))
    )


def rates_png(services: Sequence[ServiceWeek]) -> bytes:
    """Each service's answer rate this week (green: commitment kept, red: not, grey: no
    call offered), its service level (◆) and its answer-rate target (|)."""
    rows = [s for s in services if s.slug is not None]
    n = max(len(rows), 1)
    fig = _figure(0.9 + 0.3 * n)
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]  # the first service on top
    rates = [s.figures["answer_rate"] or 0.0 for s in rows]
    colours = [GREY if s.met is None else GREEN if s.met else RED for s in rows]
    ax.barh(ys, rates, color=colours, height=0.62, zorder=2)
    levels = [(y, s.figures["service_level"]) for y, s in zip(ys, rows, strict=True)]
    ax.scatter(
        [v for _, v in levels if v is not None],
        [y for y, v in levels if v is not None],
        marker="D",
        s=22,
        color=INK,
        zorder=3,
        label="niveau de service",
    )
    for y, s in zip(ys, rows, strict=True):
        if s.targets:
            ax.plot([s.targets[0]] * 2, [y - 0.42, y + 0.42], color=INK, lw=1.4, zorder=4)
        label = fmt.pct(s.figures["answer_rate"]) if s.figures["offered"] else "aucun appel"
        ax.text(
            1.01,
            y,
            label,
            va="center",
            ha="left",
            fontsize=8,
            color=INK,
            transform=ax.get_yaxis_transform(),
        )
    ax.set_yticks(ys, [s.name for s in rows], fontsize=8)
    ax.set_xlim(0, 1)
    _percent_axis(ax.xaxis)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", color="#e0e0e0", zorder=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.set_title(
        "Taux de décroché (barre), niveau de service (◆), cible (|)",
        fontsize=9,
        loc="left",
        color=INK,
    )
    fig.subplots_adjust(
        left=0.3, right=0.86, top=1 - 0.45 / (0.9 + 0.3 * n), bottom=0.35 / (0.9 + 0.3 * n)
    )
    return _png(fig)


def trend_png(points: Sequence[TrendPoint], targets: tuple[float, float] | None) -> bytes:
    """Four weeks: answer rate and service level (lines), their targets (dashed), lost
    calls (grey bars, right axis)."""
    fig = _figure(2.3)
    ax = fig.add_subplot()
    xs = list(range(len(points)))
    labels = [f"S{p.week.week}" for p in points]
    lost_ax = ax.twinx()
    lost_ax.bar(xs, [p.lost for p in points], color="#e6e6e6", width=0.5, zorder=1)
    lost_ax.set_ylabel("appels perdus", fontsize=8, color="#777777")
    lost_ax.tick_params(labelsize=7, colors="#777777")
    lost_ax.set_ylim(0, max([p.lost for p in points] + [1]) * 1.6)
    ax.set_zorder(lost_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    for values, colour, name in (
        ([p.answer_rate for p in points], BLUE, "taux de décroché"),
        ([p.service_level for p in points], ORANGE, "niveau de service"),
    ):
        known = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        ax.plot(
            [x for x, _ in known], [v for _, v in known], marker="o", color=colour, lw=2, label=name
        )
    if targets:
        ax.axhline(targets[0], color=BLUE, ls="--", lw=1, alpha=0.7)
        ax.axhline(targets[1], color=ORANGE, ls="--", lw=1, alpha=0.7)
    seen = [v for p in points for v in (p.answer_rate, p.service_level) if v is not None]
    low = min([*seen, *(targets or ())] or [0.5])
    ax.set_ylim(max(0.0, low - 0.1), 1.0)
    ax.set_xticks(xs, labels, fontsize=8)
    ax.set_xlim(-0.5, len(points) - 0.5)
    _percent_axis(ax.yaxis)
    ax.tick_params(axis="y", labelsize=8)
    ax.grid(axis="y", color="#eeeeee")
    ax.legend(fontsize=7, loc="lower left", frameon=False, ncols=2)
    for a in (ax, lost_ax):
        a.spines["top"].set_visible(False)
    fig.subplots_adjust(left=0.1, right=0.9, top=0.95, bottom=0.13)
    return _png(fig)
