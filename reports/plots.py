"""Matplotlib figures of a report, each rendered to SVG (text kept as text, so files stay small and
selectable). No pyplot: figures are plain `Figure` objects, so nothing touches a GUI backend or global state.

Layout is set by hand in inches rather than by tight/constrained layout, which measured 3x slower and the
report has a 10-second budget.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from probes import SeriesPoint
from reports import sparkgrid
from reports.model import CalibrationRound, Histogram, MeasurementRow, TransitionMatrix

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

_RC: dict[RcKeyType, Any] = {"svg.fonttype": "none", "svg.hashsalt": "loopprobe", "font.size": 8,
                             "axes.titlesize": 8, "axes.spines.top": False, "axes.spines.right": False,
                             "font.family": ["DejaVu Sans", "sans-serif"]}
RED, GREY = "#c0392b", "#888888"
RUN_COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf", "#7f7f7f"]
SHORT_STATES = {"right_unsure": "right\nunsure", "right_confident": "right\nconfident", "wrong_unsure": "wrong\nunsure",
                "wrong_confident": "wrong\nconfident"}


def to_svg(fig: Figure) -> str:
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "loopprobe"}):
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # drop the XML prolog and doctype


def _grid(n: int, ncols: int, panel_w: float, panel_h: float, margins=(0.55, 0.15, 0.45, 0.35)):
    """A figure of n panels in rows of ncols, with fixed margins in inches (left, right, bottom, top)."""
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    left, right, bottom, top = margins
    w, h = ncols * panel_w + left + right, nrows * panel_h + bottom + top
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(w, h))
        axes = fig.subplots(nrows, ncols, squeeze=False)
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=0.42, hspace=0.62)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _series_xy(series: Sequence[SeriesPoint]):
    r = np.array([p.round for p in series], dtype=float)
    nan = float("nan")
    v = np.array([nan if p.value is None else p.value for p in series], dtype=float)
    lo = np.array([nan if p.ci_low is None else p.ci_low for p in series], dtype=float)
    hi = np.array([nan if p.ci_high is None else p.ci_high for p in series], dtype=float)
    return r, v, lo, hi


def _band(ax, series: Sequence[SeriesPoint], colour: str, label: str | None = None) -> None:
    r, v, lo, hi = _series_xy(series)
    ok = np.isfinite(lo) & np.isfinite(hi)
    if ok.any():
        ax.fill_between(r, np.where(ok, lo, np.nan), np.where(ok, hi, np.nan), color=colour, alpha=0.18, lw=0)
    ax.plot(r, v, marker="o", ms=3, lw=1.3, color=colour, label=label)


def _title(ax, text: str, colour: str = "black", size: float = 8) -> None:
    # Plain text rather than set_title: set_title re-measures the tick labels to dodge them (a third of the
    # drawing time of a small-multiples figure).
    ax.text(0, 1.06, text, transform=ax.transAxes, fontsize=size, color=colour, ha="left", va="bottom")


def _round_ticks(ax, rounds: Sequence[int], label: bool = False) -> None:
    ax.set_xticks(list(rounds))
    if label:  # axis labels also cost a re-measure: small multiples say "round" in their caption instead
        ax.set_xlabel("round", labelpad=1)


def plottable(m: MeasurementRow) -> bool:
    """Worth a trajectory panel: it has a per-round series with a value (round-to-round deltas are left out:
    the delta against round 0 already traces the change, and they would double the panels)."""
    return not m.name.endswith("delta_vs_previous") and any(p.value is not None for p in m.series)


def trajectories(measurements: Sequence[MeasurementRow], rounds: Sequence[int]) -> str | None:
    """Small multiples: each measurement's per-round value with its 95% CI band; the null line where the
    measurement is tested against one; a firing measurement in red. Drawn by reports.sparkgrid (fast)."""
    shown = [m for m in measurements if plottable(m)]
    if not shown:
        return None
    return sparkgrid.grid([sparkgrid.panel(m.series, rounds, m.name, RED if m.fires else RUN_COLOURS[0],
                                           None if m.concern == "none" else m.null, RED if m.fires else "black")
                           for m in shown])


def overlaid(panels: Sequence[tuple[str, Mapping[str, Sequence[SeriesPoint]]]], rounds: Sequence[int],
             null: float | None = None) -> str | None:
    """For comparisons: one panel per quantity, one line (with CI band) per run."""
    panels = [(t, s) for t, s in panels if any(p.value is not None for ser in s.values() for p in ser)]
    if not panels:
        return None
    fig, axes = _grid(len(panels), 3, 2.9, 1.9, margins=(0.55, 0.15, 0.45, 0.55))
    for ax, (title, by_run) in zip(axes, panels):
        for i, (label, ser) in enumerate(by_run.items()):
            _band(ax, ser, RUN_COLOURS[i % len(RUN_COLOURS)], label)
        if null is not None:
            ax.axhline(null, color=GREY, lw=0.8, ls="--")
        _title(ax, title)
        _round_ticks(ax, rounds, label=True)
    axes[0].legend(loc="lower left", bbox_to_anchor=(0, 1.16), ncol=4, frameon=False, fontsize=7)
    return to_svg(fig)


def reliability(rounds: Sequence[CalibrationRound]) -> str | None:
    """One reliability diagram per round: accuracy of the pool majority per vote-share bin (bar width: the
    bin; shade: how many questions fall in it) against the diagonal of perfect calibration."""
    if not rounds:
        return None
    fig, axes = _grid(len(rounds), 5, 1.9, 1.9)
    for ax, cal in zip(axes, rounds):
        most = max((b.count for b in cal.bins), default=1) or 1
        for b in cal.bins:
            if b.count:
                ax.bar(b.low, b.accuracy, width=b.high - b.low, align="edge", color=RUN_COLOURS[0],
                       alpha=0.25 + 0.75 * b.count / most, edgecolor="white", lw=0.5)
        ax.plot([0, 1], [0, 1], color=GREY, lw=0.8, ls="--")
        ax.set(xlim=(0, 1), ylim=(0, 1))
        _title(ax, f"round {cal.round}  ECE {cal.ece:.3f}" if cal.ece is not None else f"round {cal.round}")
        ax.set_xlabel("vote share", labelpad=1)
    axes[0].set_ylabel("majority right")
    return to_svg(fig)


def transition_heatmaps(matrices: Sequence[TransitionMatrix]) -> str | None:
    """Row-normalised state transitions of pool questions between consecutive rounds, counts annotated."""
    if not matrices:
        return None
    fig, axes = _grid(len(matrices), 3, 2.6, 2.4, margins=(0.85, 0.15, 0.75, 0.35))
    for ax, t in zip(axes, matrices):
        counts = np.array(t.counts, dtype=float)
        share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(share, cmap="Reds", vmin=0, vmax=1)
        for i in range(counts.shape[0]):
            for j in range(counts.shape[1]):
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 0.6 else "black")
        labels = [SHORT_STATES.get(s, s) for s in t.states]
        ax.set_xticks(range(len(labels)), labels, fontsize=6)
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
        ax.set_xlabel(f"state at round {t.to_round}", labelpad=1)
        ax.set_ylabel(f"state at round {t.from_round}")
        _title(ax, f"round {t.from_round} → {t.to_round}")
        ax.spines[:].set_visible(False)
    return to_svg(fig)


def histograms(hist: Histogram | None) -> str | None:
    """The distribution of a per-item quantity in every round, overlaid as step histograms."""
    if hist is None:
        return None
    fig, (ax,) = _grid(1, 1, 5.2, 2.2, margins=(0.55, 1.6, 0.45, 0.2))
    edges = np.array(hist.edges)
    colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, max(len(hist.rounds), 1)))
    for colour, h in zip(colours, hist.rounds):
        ax.stairs(h.counts, edges, color=colour, lw=1.4,
                  label=f"round {h.round}" + (f" (mean {h.mean:.3g})" if h.mean is not None else ""))
    ax.set_xlabel(f"{hist.quantity} ({hist.unit})", labelpad=1)
    ax.set_ylabel("items")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), frameon=False, fontsize=7)
    return to_svg(fig)


def differences(rows: Sequence[tuple[str, float | None, float | None, float | None, bool]]) -> str | None:
    """A forest plot: each row's difference (B - A) with its 95% CI; rows whose CI excludes 0 in red."""
    rows = [r for r in rows if r[1] is not None]
    if not rows:
        return None
    fig, (ax,) = _grid(1, 1, 4.5, 0.24 * len(rows) + 0.3, margins=(2.6, 0.2, 0.45, 0.1))
    y = np.arange(len(rows))[::-1]
    for yi, (_, d, lo, hi, sig) in zip(y, rows):
        colour = RED if sig else RUN_COLOURS[0]
        if lo is not None and hi is not None:
            ax.plot([lo, hi], [yi, yi], color=colour, lw=1.5)
        ax.plot([d], [yi], marker="o", ms=3.5, color=colour)
    ax.axvline(0, color=GREY, lw=0.8, ls="--")
    ax.set_yticks(y, [r[0] for r in rows], fontsize=7)
    ax.set_xlabel("difference B − A (95% CI)", labelpad=1)
    return to_svg(fig)
