"""Small-multiple trajectory panels written as SVG directly.

A report of a real run draws ~50 of these (one per measurement); matplotlib measured 35-80 ms per panel
(tick and text layout), most of the 10-second budget of `loopprobe report`. These panels have only a line,
a CI band, a null line and a few ticks, so they are written by hand in well under a millisecond each, in the
same colours and font as the matplotlib figures (reports.plots).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape
from typing import TypeGuard, cast

from matplotlib.ticker import MaxNLocator

from probes import SeriesPoint

PANEL_W, PANEL_H = 260, 128
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 22, 22
COLUMNS = 4
FONT = 'font-family="DejaVu Sans, sans-serif"'


def _finite(x: float | None) -> TypeGuard[float]:
    return x is not None and math.isfinite(x)


def _fmt(v: float) -> str:
    return f"{v:.3g}".replace("-", "−")


def _runs(mask: list[bool]) -> list[list[int]]:
    """Indices grouped into maximal runs where mask holds (a line or band breaks where data is missing)."""
    out, cur = [], []
    for i, ok in enumerate(mask):
        if ok:
            cur.append(i)
        elif cur:
            out.append(cur)
            cur = []
    return out + ([cur] if cur else [])


def panel(series: Sequence[SeriesPoint], rounds: Sequence[int], title: str, colour: str,
          null: float | None, title_colour: str = "black") -> str:
    """One panel as an SVG <g> in its own coordinates (0..PANEL_W x 0..PANEL_H)."""
    values = [v for p in series for v in (p.value, p.ci_low, p.ci_high) if _finite(v)]
    if null is not None:
        values.append(null)
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5 * (abs(lo) or 1), hi + 0.5 * (abs(hi) or 1)
    pad = 0.06 * (hi - lo)
    lo, hi = lo - pad, hi + pad
    x0, x1, y0, y1 = LEFT, PANEL_W - RIGHT, PANEL_H - BOTTOM, TOP
    r0, r1 = min(rounds), max(rounds)

    def X(r: float) -> float:
        return x0 + (x1 - x0) * (0.5 if r1 == r0 else (r - r0) / (r1 - r0))

    def Y(v: float) -> float:
        return y0 + (y1 - y0) * (v - lo) / (hi - lo)

    parts = [f'<text x="2" y="13" font-size="11" fill="{title_colour}">{escape(title)}</text>',
             f'<path d="M{x0},{y1 - 4}V{y0}H{x1}" stroke="#333" fill="none" stroke-width="0.8"/>']
    for t in MaxNLocator(nbins=3).tick_values(lo, hi):
        if lo <= t <= hi:
            y = Y(t)
            parts.append(f'<path d="M{x0 - 3},{y:.1f}H{x0}" stroke="#333" stroke-width="0.8"/>'
                         f'<text x="{x0 - 5}" y="{y + 3.5:.1f}" font-size="9.5" text-anchor="end">{_fmt(t)}</text>')
    for r in rounds:
        parts.append(f'<path d="M{X(r):.1f},{y0}v3" stroke="#333" stroke-width="0.8"/>'
                     f'<text x="{X(r):.1f}" y="{y0 + 14}" font-size="9.5" text-anchor="middle">{r}</text>')
    if null is not None:
        parts.append(f'<path d="M{x0},{Y(null):.1f}H{x1}" stroke="#888" stroke-dasharray="4 3" stroke-width="0.8"/>')
    band = [_finite(p.ci_low) and _finite(p.ci_high) for p in series]
    for run in _runs(band):  # runs of finite points: the casts only tell the type checker
        upper = " ".join(f"{X(series[i].round):.1f},{Y(cast(float, series[i].ci_high)):.1f}" for i in run)
        lower = " ".join(f"{X(series[i].round):.1f},{Y(cast(float, series[i].ci_low)):.1f}" for i in reversed(run))
        parts.append(f'<polygon points="{upper} {lower}" fill="{colour}" fill-opacity="0.18"/>')
    for run in _runs([_finite(p.value) for p in series]):
        pts = " ".join(f"{X(series[i].round):.1f},{Y(cast(float, series[i].value)):.1f}" for i in run)
        parts.append(f'<polyline points="{pts}" stroke="{colour}" stroke-width="1.5" fill="none"/>')
        parts += [f'<circle cx="{X(series[i].round):.1f}" cy="{Y(cast(float, series[i].value)):.1f}" r="2.4" '
                  f'fill="{colour}"/>' for i in run]
    return "".join(parts)


def grid(panels: Sequence[str]) -> str:
    """Panels (from `panel`) laid out COLUMNS to a row, as one standalone SVG document."""
    cols = min(COLUMNS, len(panels))
    rows = math.ceil(len(panels) / cols)
    w, h = cols * PANEL_W, rows * PANEL_H
    body = "".join(f'<g transform="translate({(i % cols) * PANEL_W},{(i // cols) * PANEL_H})">{p}</g>'
                   for i, p in enumerate(panels))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" {FONT}>'
            f'<rect width="{w}" height="{h}" fill="white"/>{body}</svg>')
