"""Forest plot of subgroup effects (the heterogeneity table of any analysis)."""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure

from evaltool.labels import label
from evaltool.results import AnalysisResult


def _table(value) -> pd.DataFrame:
    if isinstance(value, pd.DataFrame):
        return value
    return pd.DataFrame(value["data"], columns=value["columns"])


def forest_figure(result: AnalysisResult) -> Figure:
    """Subgroup effects with confidence intervals, the overall effect as a reference line.

    Rows are grouped by breakdown; gaps (differences between subgroups) are drawn with open
    markers; skipped subgroups, and subgroups whose estimate is withheld (draw from
    :func:`~evaltool.report.disclosure.withhold_small_groups`), are listed with their reason instead of a point.
    """
    table = _table(result.diagnostics["subgroups"])
    overall = result.estimates[0] if result.estimates else None
    n = len(table)
    fig = Figure(figsize=(8, 1.2 + 0.38 * max(n, 1)), dpi=100)
    ax = fig.add_subplot()
    ys = list(range(n, 0, -1))
    for y, row in zip(ys, table.itertuples(index=False), strict=True):
        if row.status != "ok" or pd.isna(row.estimate) or pd.isna(row.ci_lower):
            # A labelled gap: withheld (a small group of pupils) or skipped, never a point.
            note = str(row.reason) if row.status == "withheld" else f"skipped: {row.reason}"
            ax.text(0.01, y, note[:90], transform=ax.get_yaxis_transform(), va="center", fontsize=7, color="#555555")
            continue
        filled = row.kind != "gap"
        ax.plot([row.ci_lower, row.ci_upper], [y, y], color="#000000", linewidth=1.2)
        ax.plot([row.estimate], [y], marker="s" if filled else "D", color="#000000",
                markerfacecolor="#000000" if filled else "#ffffff", markersize=6)
    ax.axvline(0.0, color="#777777", linewidth=0.8, linestyle=":")
    if overall is not None and math.isfinite(overall.estimate):  # NaN: the overall effect is withheld
        ax.axvline(overall.estimate, color="#777777", linewidth=0.8, linestyle="--", label="overall effect")
        ax.legend(frameon=False, loc="lower right", fontsize=8)
    ax.set_yticks(ys)
    ax.set_yticklabels([f"{s}" for s in table["subgroup"]], fontsize=8)
    ax.set_ylim(0.3, n + 0.7)
    level = int(round(100 * overall.ci_level)) if overall is not None else 95
    ax.set_xlabel(f"Effect on {label(result.outcome)} ({level}% CI)")
    ax.set_title("Effects by pupil subgroup")
    fig.tight_layout()
    return fig
