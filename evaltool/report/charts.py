"""Figures the report draws itself from the (disclosure-controlled) report rows.

Built with the matplotlib object API (no pyplot state, no rcParams changes),
greyscale-safe, labelled in words.  Every label comes from rows that have
already passed :mod:`evaltool.report.disclosure`, so no small count can reach a
plot.
"""

from __future__ import annotations

import io
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def forest_figure(rows: list[dict], *, xlabel: str, title: str) -> Figure | None:
    """Horizontal forest plot: one line per row (``label``, ``estimate``, ``ci_lower``, ``ci_upper``).

    Rows whose estimate is withheld or missing are listed with "withheld" and no
    marker.  Returns ``None`` when there are no rows.
    """
    if not rows:
        return None
    height = 1.2 + 0.42 * len(rows)
    fig = Figure(figsize=(7.5, height), dpi=100)
    ax = fig.add_subplot()
    positions = list(range(len(rows)))[::-1]
    labels = []
    for y, row in zip(positions, rows, strict=True):
        est, low, high = (_number(row.get(k)) for k in ("estimate", "ci_lower", "ci_upper"))
        labels.append(row["label"])
        if est is None:
            ax.text(0, y, "withheld", va="center", ha="center", fontsize=9, color="#444444")
            continue
        if low is not None and high is not None:
            ax.hlines(y, low, high, color="#000000", linewidth=1.5)
        ax.plot([est], [y], marker="s", color="#000000", markersize=6)
    ax.axvline(0, color="#777777", linestyle="--", linewidth=1)
    ax.set_yticks(positions, labels)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def event_study_figure(rows: list[dict], *, ylabel: str) -> Figure | None:
    """Effects by years since joining (``event_time``, ``estimate``, ``ci_lower``, ``ci_upper``) with 95% CIs.

    Years before joining (event time < 0) are drawn with open markers: they
    should be near zero if the groups followed parallel trends.
    """
    points = [r for r in rows if _number(r.get("event_time")) is not None]
    if not points:
        return None
    fig = Figure(figsize=(7.5, 4), dpi=100)
    ax = fig.add_subplot()
    for row in points:
        t, est, low, high = (_number(row.get(k)) for k in ("event_time", "estimate", "ci_lower", "ci_upper"))
        if est is None:
            ax.text(t, 0, "withheld", rotation=90, ha="center", va="bottom", fontsize=8, color="#444444")
            continue
        if low is not None and high is not None:
            ax.vlines(t, low, high, color="#000000", linewidth=1.5)
        before = t < 0
        ax.plot([t], [est], marker="o", markersize=6, color="#000000", markerfacecolor="white" if before else "#000000")
    ax.axhline(0, color="#777777", linestyle="--", linewidth=1)
    ax.axvline(-0.5, color="#999999", linestyle=":", linewidth=1)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("Years since joining (open circles: before joining)")
    ax.set_ylabel(ylabel)
    ax.set_title("Effect by years since joining, with 95% confidence intervals")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    return fig


def figure_texts(fig: Figure) -> list[str]:
    """Every piece of text drawn on a figure (titles, tick labels, annotations) — for checks."""
    return [t.get_text() for t in fig.findobj(match=lambda a: hasattr(a, "get_text")) if t.get_text()]


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes (no metadata, so the bytes are reproducible)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()
